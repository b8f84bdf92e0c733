package mailparse

import (
	"bytes"
	"math"
	"testing"
)

// naiveCRLF is the CRLF form byte by byte.
func naiveCRLF(b []byte) []byte {
	var out []byte
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// FuzzCRLF: the streamed, counted and windowed CRLF forms agree with the
// byte-by-byte conversion, for any window a client may ask for.
func FuzzCRLF(f *testing.F) {
	f.Add([]byte("a\nb\r\nc\n\n"), int64(1), int64(3))
	f.Add([]byte("\n"), int64(0), int64(1))
	f.Add([]byte("\r\n\n\r"), int64(2), int64(math.MaxInt64))
	f.Add([]byte("x"), int64(math.MaxInt64), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, b []byte, off, n int64) {
		want := naiveCRLF(b)
		if got := CRLFLen(b); got != int64(len(want)) {
			t.Fatalf("CRLFLen(%q) = %d, want %d", b, got, len(want))
		}
		if got := AppendCRLF([]byte("p"), b); !bytes.Equal(got, append([]byte("p"), want...)) {
			t.Fatalf("AppendCRLF(%q) = %q, want %q", b, got[1:], want)
		}
		var w bytes.Buffer
		if err := WriteCRLF(&w, b); err != nil || !bytes.Equal(w.Bytes(), want) {
			t.Fatalf("WriteCRLF(%q) = %q, %v; want %q", b, w.Bytes(), err, want)
		}
		if off < 0 || n < 0 {
			return
		}
		var win []byte
		if off < int64(len(want)) {
			win = want[off:]
			if n < int64(len(win)) {
				win = win[:n]
			}
		}
		if got := AppendCRLFRange(nil, b, off, n); !bytes.Equal(got, win) {
			t.Fatalf("AppendCRLFRange(%q, %d, %d) = %q, want %q", b, off, n, got, win)
		}
	})
}

// TestPartBareLFs: each part counts the bare LFs of its body.
func TestPartBareLFs(t *testing.T) {
	raw := []byte("Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\ntwo\r\n--b\nContent-Type: text/plain\r\n\r\nthree\nfour\nfive\n--b--\n")
	sum := Parse(raw, Options{})
	for i, want := range []int64{1, 2} {
		if got := sum.Structure.Children[i].BareLFs; got != want {
			t.Errorf("part %d: %d bare LFs, want %d", i+1, got, want)
		}
	}
}

// BenchmarkCRLF: what serving a 100 KiB message of 72-byte LF lines costs
// over IMAP, against writing it as it is:
//
//	go test -run '^$' -bench BenchmarkCRLF ./mailparse/
func BenchmarkCRLF(b *testing.B) {
	line := append(bytes.Repeat([]byte("x"), 71), '\n')
	msg := bytes.Repeat(line, 100<<10/len(line))
	var w bytes.Buffer
	w.Grow(2 * len(msg))
	b.Run("write-as-is", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			w.Reset()
			w.Write(msg)
		}
	})
	b.Run("count", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			BareLFs(msg)
		}
	})
	b.Run("write-crlf", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			w.Reset()
			WriteCRLF(&w, msg)
		}
	})
	b.Run("partial-4k", func(b *testing.B) {
		b.SetBytes(4 << 10)
		buf := make([]byte, 0, 4<<10)
		for b.Loop() {
			AppendCRLFRange(buf[:0], msg, 50<<10, 4<<10)
		}
	})
}
