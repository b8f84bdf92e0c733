package pop3

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func TestReadMulti(t *testing.T) {
	in := "line one\r\n..dotted\r\n\r\nlast\r\n.\r\n+OK next\r\n"
	r := bufio.NewReader(strings.NewReader(in))
	var got bytes.Buffer
	if err := readMulti(r, 1<<20, func(l []byte) error { got.Write(l); got.WriteString("\r\n"); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := "line one\r\n.dotted\r\n\r\nlast\r\n"; got.String() != want {
		t.Fatalf("got %q, want %q", got.String(), want)
	}
	if rest, _ := r.ReadString('\n'); rest != "+OK next\r\n" {
		t.Fatalf("read past the end: %q", rest)
	}
	if err := readMulti(bufio.NewReader(strings.NewReader("abc\r\n")), 1<<20, func([]byte) error { return nil }); err == nil {
		t.Fatal("no error on a response cut short")
	}
	if err := readMulti(bufio.NewReader(strings.NewReader(strings.Repeat("x\r\n", 100)+".\r\n")), 50, func([]byte) error { return nil }); err == nil {
		t.Fatal("no error beyond the limit")
	}
}

// FuzzReadMulti: any bytes from a server end in a result or an error,
// never a panic, and never more than the limit.
func FuzzReadMulti(f *testing.F) {
	f.Add([]byte("a\r\n..b\r\n.\r\n"))
	f.Add([]byte(".\n"))
	f.Add([]byte("\r\r\n.\r"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		readMulti(bufio.NewReaderSize(bytes.NewReader(b), 16), 1000, func(l []byte) error {
			n += len(l) + 2
			return nil
		})
		if n > 1000 {
			t.Fatalf("%d bytes passed a limit of 1000", n)
		}
	})
}

func TestLongLine(t *testing.T) {
	long := strings.Repeat("x", 100)
	r := bufio.NewReaderSize(strings.NewReader(long+"\r\n.\r\n"), 16)
	var got []byte
	if err := readMulti(r, 1000, func(l []byte) error { got = append(got, l...); return nil }); err != nil || string(got) != long {
		t.Fatalf("long line: %v %q", err, got)
	}
}
