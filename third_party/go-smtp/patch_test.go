package smtp

// Checks of the mailvault patch (see third_party/README.md): the chunked
// dataReader and lineLimitReader behave exactly as the byte loops they
// replace.

import (
	"bufio"
	"bytes"
	"io"
	"math/rand"
	"testing"
)

// byteDataReader is the upstream v0.25.1 dataReader.Read loop.
func byteDataReader(r *bufio.Reader) ([]byte, error) {
	const (
		stateBeginLine = iota
		stateDot
		stateDotCR
		stateCR
		stateData
		stateEOF
	)
	var out []byte
	state := stateBeginLine
	for state != stateEOF {
		c, err := r.ReadByte()
		if err != nil {
			return out, io.ErrUnexpectedEOF
		}
		switch state {
		case stateBeginLine:
			if c == '.' {
				state = stateDot
				continue
			}
			if c == '\r' {
				state = stateCR
				break
			}
			state = stateData
		case stateDot:
			if c == '\r' {
				state = stateDotCR
				continue
			}
			state = stateData
		case stateDotCR:
			if c == '\n' {
				state = stateEOF
				continue
			}
			state = stateData
		case stateCR:
			if c == '\n' {
				state = stateBeginLine
				break
			}
			state = stateData
		case stateData:
			if c == '\r' {
				state = stateCR
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func TestPatchedDataReader(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	alphabet := []byte("ab.\r\n")
	for i := 0; i < 20000; i++ {
		in := make([]byte, rnd.Intn(200))
		for j := range in {
			in[j] = alphabet[rnd.Intn(len(alphabet))]
		}
		if rnd.Intn(2) == 0 {
			in = append(in, "\r\n.\r\nNEXT"...)
		}
		ref := bufio.NewReaderSize(bytes.NewReader(in), 16)
		want, wantErr := byteDataReader(ref)
		wantRest, _ := io.ReadAll(ref)
		br := bufio.NewReaderSize(bytes.NewReader(in), 16)
		dr := &dataReader{r: br}
		var have []byte
		buf := make([]byte, 1+rnd.Intn(40))
		var err error
		for {
			var n int
			n, err = dr.Read(buf)
			have = append(have, buf[:n]...)
			if err != nil {
				break
			}
		}
		if err == io.EOF {
			err = nil
		}
		if !bytes.Equal(have, want) || (err == nil) != (wantErr == nil) {
			t.Fatalf("input %q: have %q %v, want %q %v", in, have, err, want, wantErr)
		}
		if wantErr == nil {
			rest, _ := io.ReadAll(br)
			if !bytes.Equal(rest, wantRest) {
				t.Fatalf("input %q: left %q after the end marker, want %q", in, rest, wantRest)
			}
		}
	}
}

func TestPatchedLineLimitReader(t *testing.T) {
	rnd := rand.New(rand.NewSource(2))
	for i := 0; i < 20000; i++ {
		limit := 1 + rnd.Intn(12)
		in := make([]byte, rnd.Intn(100))
		for j := range in {
			in[j] = "ab\n"[rnd.Intn(3)]
		}
		// Upstream: count per byte, fail at the first byte past the limit.
		wantOK, cur := len(in), 0
		for j, c := range in {
			if c == '\n' {
				cur = 0
			}
			cur++
			if cur > limit {
				wantOK = j
				break
			}
		}
		r := &lineLimitReader{R: bytes.NewReader(in), LineLimit: limit}
		buf := make([]byte, 1+rnd.Intn(20))
		got, failed := 0, false
		for {
			n, err := r.Read(buf)
			if err == ErrTooLongLine {
				failed = true
				if _, err := r.Read(buf); err != ErrTooLongLine {
					t.Fatalf("input %q limit %d: error not sticky", in, limit)
				}
				break
			}
			got += n
			if err != nil {
				break
			}
		}
		if failed != (wantOK < len(in)) || got > wantOK {
			t.Fatalf("input %q limit %d: read %d failed %v, want failure at %d", in, limit, got, failed, wantOK)
		}
	}
}
