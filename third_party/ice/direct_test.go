package ice

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	segment "github.com/blugelabs/bluge_segment_api"
)

// mailvault: processDocumentDirect must write byte for byte the segment the
// roll-up of processDocument writes, for documents with unique field names
// and, mixed in, documents with repeated ones (which take the roll-up).
func TestDirectSameSegmentAsRollUp(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	words := func(n int) string {
		w := make([]string, n)
		for i := range w {
			w[i] = fmt.Sprintf("w%d", rnd.Intn(50))
		}
		return strings.Join(w, " ")
	}
	var docs []segment.Document
	for i := 0; i < 300; i++ {
		doc := &FakeDocument{
			NewFakeField("_id", fmt.Sprintf("doc%d", i), true, false, false),
			NewFakeField("subject", words(1+rnd.Intn(6)), true, true, false),
			NewFakeField("body", words(1+rnd.Intn(80)), false, false, false),
			NewFakeField("from", words(2), false, true, true),
		}
		if i%7 == 0 {
			*doc = append(*doc, NewFakeField("body", words(5), false, false, false))
		}
		if i%5 == 0 {
			doc.FakeComposite("_all", []string{"_id"})
		}
		docs = append(docs, doc)
	}
	build := func(direct bool) []byte {
		seg, _, err := newSegment(docs, encodeNorm, defaultChunkMode, direct)
		if err != nil {
			t.Fatal(err)
		}
		d := seg.(*Segment).data
		b, err := d.Read(0, d.Len())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if a, b := build(false), build(false); !bytes.Equal(a, b) {
		t.Fatalf("roll-up not deterministic: %d, %d bytes", len(a), len(b))
	}
	direct, rollUp := build(true), build(false)
	if !bytes.Equal(direct, rollUp) {
		t.Fatalf("segments differ: direct %d bytes, roll-up %d bytes", len(direct), len(rollUp))
	}
}
