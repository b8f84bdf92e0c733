package mailparse

import (
	"bytes"
	"mime/quotedprintable"
	"strings"
	"testing"
)

// TestQPTrailingBlanks: RFC 2045 6.7 rule 3, whitespace at the end of an
// encoded line is transport padding and goes; encoded whitespace stays.
func TestQPTrailingBlanks(t *testing.T) {
	for in, want := range map[string]string{
		"one  \r\ntwo\t \r\n":     "one\r\ntwo\r\n",
		"one \nlast \t":           "one\nlast",
		"keep=20\r\nsoft= \t\r\n": "keep \r\nsoft",
		"a=3D=  \nb":              "a=b",
		"bad=ZZ  \n":              "bad=ZZ\n",
		"lone\rcr \r\n":           "lone\rcr\r\n",
	} {
		if got := string(appendQP(nil, []byte(in))); got != want {
			t.Errorf("appendQP(%q) = %q, want %q", in, got, want)
		}
	}
	sum := Parse([]byte("Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nword   \r\nnext\r\n"), Options{})
	if strings.Contains(sum.Text, "word ") {
		t.Errorf("indexed text %q keeps the blanks", sum.Text)
	}
}

// FuzzQP: the decoded length is computed without decoding, and valid
// quoted-printable decodes as the standard library decodes it.
func FuzzQP(f *testing.F) {
	f.Add([]byte("caf=C3=A9  \r\nsoft=\r\nend"))
	f.Add([]byte("= \n=\r\n==41\t"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := appendQP(nil, b)
		if n := qpDecodedLen(b); n != len(got) {
			t.Fatalf("qpDecodedLen(%q) = %d, decoded %d bytes", b, n, len(got))
		}
		if bytes.Count(b, []byte("\r")) != bytes.Count(b, []byte("\r\n")) {
			return // a lone CR is text here, a line end to the standard library
		}
		std, err := readAllQP(b)
		if err == nil && !bytes.Equal(bytes.ReplaceAll(got, []byte("\r\n"), []byte("\n")), bytes.ReplaceAll(std, []byte("\r\n"), []byte("\n"))) {
			t.Fatalf("appendQP(%q) = %q, mime/quotedprintable %q", b, got, std)
		}
	})
}

func readAllQP(b []byte) ([]byte, error) {
	var out bytes.Buffer
	_, err := out.ReadFrom(quotedprintable.NewReader(bytes.NewReader(b)))
	return out.Bytes(), err
}
