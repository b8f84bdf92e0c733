package imapd

import (
	"bytes"
	"encoding/base64"
	"math"
	"mime/quotedprintable"
	"os"
	"strings"
	"testing"

	"github.com/mailvault/mailvault/mailparse"
)

func TestHeaderFields(t *testing.T) {
	header := "Received: from a\r\n\tby b\r\nSubject: Hello\r\n  world\r\nFROM: x@y\r\nbroken line\r\nX-Empty:\r\nTo : z@y\r\n\r\n"
	for _, tc := range []struct {
		names []string
		not   bool
		want  string
	}{
		{[]string{"subject", "to"}, false, "Subject: Hello\r\n  world\r\nTo : z@y\r\n\r\n"},
		{[]string{"From"}, false, "FROM: x@y\r\n\r\n"},
		{[]string{"Received", "Subject", "To"}, true, "FROM: x@y\r\nX-Empty:\r\n\r\n"},
		{[]string{"Nope"}, false, "\r\n"},
	} {
		if got := string(appendHeaderFields(nil, []byte(header), tc.names, tc.not)); got != tc.want {
			t.Errorf("%v not=%v:\n got %q\nwant %q", tc.names, tc.not, got, tc.want)
		}
	}
}

// FuzzHeaderFields: HEADER.FIELDS and HEADER.FIELDS.NOT with the same names
// split the fields between them, and every output line is an input line.
func FuzzHeaderFields(f *testing.F) {
	f.Add([]byte("Subject: a\r\n b\r\nFrom: c\r\n\r\nbody"), "subject")
	f.Add([]byte("A:1\nB:2\n\n"), "b")
	f.Add([]byte(" folded first\r\nX: y"), "x")
	f.Add([]byte("no colon\r\n:empty name\r\nZ : 1\r\n"), "z")
	for _, fn := range corpusSample(f, 20) {
		raw, _ := os.ReadFile(fn)
		f.Add(raw, "received")
	}
	f.Fuzz(func(t *testing.T, header []byte, name string) {
		names := strings.Split(name, ",")
		in := appendHeaderFields(nil, header, names, false)
		out := appendHeaderFields(nil, header, names, true)
		all := appendHeaderFields(nil, header, nil, true)
		if !bytes.HasSuffix(in, []byte("\r\n")) || !bytes.HasSuffix(out, []byte("\r\n")) {
			t.Fatalf("missing final blank line: %q %q", in, out)
		}
		if len(in)+len(out) != len(all)+2 {
			t.Fatalf("FIELDS %q + FIELDS.NOT %q do not make up all fields %q", in, out, all)
		}
		for _, l := range bytes.SplitAfter(all[:len(all)-2], []byte("\n")) {
			if len(l) > 0 && !bytes.Contains(header, bytes.TrimRight(l, "\r\n")) {
				t.Fatalf("output line %q not in input", l)
			}
		}
	})
}

// FuzzDecode: BINARY decoding round-trips what the standard encoders
// produce and never fails on garbage.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("hello world"), []byte("aGVsbG8=\r\n"))
	f.Add([]byte{0, 1, 2, 255}, []byte("=3D=\r\n=ZZ=4"))
	f.Add([]byte(strings.Repeat("Grüße ", 40)), []byte("A===B\r\n"))
	f.Fuzz(func(t *testing.T, data, garbage []byte) {
		b64 := base64.StdEncoding.EncodeToString(data)
		var wrapped strings.Builder
		for len(b64) > 76 {
			wrapped.WriteString(b64[:76] + "\r\n")
			b64 = b64[76:]
		}
		wrapped.WriteString(b64 + "\r\n")
		if got, ok := appendDecoded(nil, []byte(wrapped.String()), "BASE64"); !ok || !bytes.Equal(got, data) {
			t.Fatalf("base64 round trip of %q: %q", data, got)
		}
		var qp bytes.Buffer
		w := quotedprintable.NewWriter(&qp)
		w.Write(data)
		w.Close()
		if got, ok := appendDecoded(nil, qp.Bytes(), "QUOTED-PRINTABLE"); !ok || !bytes.Equal(got, normalizeQPInput(data)) {
			t.Fatalf("quoted-printable round trip of %q via %q: %q", data, qp.Bytes(), got)
		}
		for _, enc := range []string{"BASE64", "QUOTED-PRINTABLE", "7BIT"} {
			if got, ok := appendDecoded(nil, garbage, enc); !ok || len(got) > len(garbage) {
				t.Fatalf("%s of %q: %q", enc, garbage, got)
			}
		}
		if _, ok := appendDecoded(nil, garbage, "X-UUENCODE"); ok {
			t.Fatal("unknown encoding accepted")
		}
	})
}

// normalizeQPInput is what quoted-printable preserves of data: Go's writer
// turns line breaks into CRLF in text mode.
func normalizeQPInput(data []byte) []byte {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	w.Write(data)
	w.Close()
	r := quotedprintable.NewReader(&b)
	var out bytes.Buffer
	out.ReadFrom(r)
	return out.Bytes()
}

// FuzzSection: body sections and BINARY of any message, as mailparse
// summarises it, stay inside the message and never panic.
func FuzzSection(f *testing.F) {
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n--b--\r\n"), 1, 1)
	f.Add([]byte("Subject: x\r\n\r\nbody"), 1, 0)
	for _, fn := range corpusSample(f, 30) {
		raw, _ := os.ReadFile(fn)
		f.Add(raw, 2, 1)
	}
	f.Fuzz(func(t *testing.T, raw []byte, a, b int) {
		sum := mailparse.Parse(raw, mailparse.Options{MaxText: -1})
		for _, path := range [][]int{nil, {a}, {a, b}, {1, a, b}} {
			for _, spec := range []string{"", "HEADER", "TEXT", "MIME"} {
				start, end, ok := sum.Section(path, spec)
				if ok && (start < 0 || start > end || end > int64(len(raw))) {
					t.Fatalf("section %v %s: [%d,%d) of %d bytes", path, spec, start, end, len(raw))
				}
			}
			if p := findPart(sum.Structure, path); p != nil && len(path) > 0 {
				if s, e, ok := sum.Section(path, ""); !ok || s != p.BodyStart || e != p.End {
					t.Fatalf("findPart %v disagrees with Section: [%d,%d) vs [%d,%d)", path, p.BodyStart, p.End, s, e)
				}
			}
			if _, _, err := binarySection(sum, raw, path, mailparse.BareLFs(raw) > 0); err != nil && !strings.Contains(err.Error(), "UNKNOWN-CTE") {
				t.Fatal(err)
			}
		}
	})
}

// FuzzPartial: <offset.size> is the slice of the section the client asked
// for, cut at its end, for any offset and size a client may send (up to
// 2^63-1 each, which once overflowed into a panic).
func FuzzPartial(f *testing.F) {
	f.Add([]byte("hello world"), int64(6), int64(5))
	f.Add([]byte("hello"), int64(1), int64(math.MaxInt64))
	f.Add([]byte(""), int64(math.MaxInt64), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, b []byte, offset, size int64) {
		if offset < 0 || size < 0 {
			return // the parser takes digits only
		}
		got := partial(b, offset, size)
		var want []byte
		if offset < int64(len(b)) {
			want = b[offset:]
			if size < int64(len(want)) {
				want = want[:size]
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("partial(%q, %d, %d) = %q, want %q", b, offset, size, got, want)
		}
	})
}

// corpusSample returns up to n corpus files for seeds, none when absent.
func corpusSample(tb testing.TB, n int) []string {
	files := corpusDir()
	if len(files) > n {
		step := len(files) / n
		var out []string
		for i := 0; i < len(files); i += step {
			out = append(out, files[i])
		}
		return out
	}
	return files
}
