package mailparse

import (
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

// base64DecodedLen must give the decoded size of well-formed bodies however
// they are wrapped and padded.
func TestBase64DecodedLen(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		data := make([]byte, rnd.IntN(400))
		for j := range data {
			data[j] = byte(rnd.Uint32())
		}
		enc := base64.StdEncoding.EncodeToString(data)
		width := 4 + rnd.IntN(80)
		eol := []string{"\r\n", "\n", " \r\n", "\t\n"}[rnd.IntN(4)]
		var b strings.Builder
		for len(enc) > width {
			b.WriteString(enc[:width] + eol)
			enc = enc[width:]
		}
		b.WriteString(enc + eol)
		if got := base64DecodedLen([]byte(b.String())); got != len(data) {
			t.Fatalf("%d bytes wrapped at %d with %q: got %d", len(data), width, eol, got)
		}
	}
}
