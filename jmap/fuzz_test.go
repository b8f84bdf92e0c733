package jmap

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mailvault/mailvault/backend"
)

// seedMessages adds the testdata messages and some corpus messages.
func seedMessages(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	corpus, _ := filepath.Glob(filepath.Join("..", "..", "shared", "corpus", "messages", "*.eml"))
	if len(corpus) > 40 {
		corpus = corpus[:40]
	}
	for _, file := range append(files, corpus...) {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("To: a: b@c, d@e;, f@g\r\nDate: 1 Jan 2020 00:00 +0000\r\nX: =?utf-8?q?=C3=BC?=\r\n\r\n"))
	f.Add([]byte(": x\r\n\tcontinued\r\nno colon\r\n\r\n"))
}

// FuzzHeaderForms parses header blocks and every RFC 8621 header form:
// never a panic, always JSON-encodable, Raw keeps the bytes.
func FuzzHeaderForms(f *testing.F) {
	seedMessages(f)
	forms := []string{"Raw", "Text", "Addresses", "GroupedAddresses", "MessageIds", "Date", "URLs"}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fields := parseFields(raw)
		for _, fd := range fields {
			if fd.name == "" || strings.ContainsAny(fd.name, " \t\r\n:") {
				t.Fatalf("bad field name %q", fd.name)
			}
			if !bytes.Contains(raw, []byte(fd.name)) {
				t.Fatalf("field name %q not in input", fd.name)
			}
			for _, form := range forms {
				v := parseForm(form, fd.value)
				b, err := json.Marshal(v)
				if err != nil || !utf8.Valid(b) {
					t.Fatalf("%s of %q: %v", form, fd.value, err)
				}
				if form == "Text" && v.(string) != strings.TrimSpace(v.(string)) {
					t.Fatalf("Text not trimmed: %q", v)
				}
			}
		}
		if len(raw) < 200 {
			if hp, ok := parseHeaderProp("header:" + string(raw)); ok && hp.key != "header:"+string(raw) {
				t.Fatalf("key %q", hp.key)
			}
		}
	})
}

// FuzzRequest decodes API requests, their filters and references: never a
// panic, and what decodes re-encodes.
func FuzzRequest(f *testing.F) {
	f.Add([]byte(`{"using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{"a":1},"c"]]}`))
	f.Add([]byte(`{"using":[],"methodCalls":[["Email/query",{"filter":{"operator":"OR","conditions":[{"text":"x"},{"operator":"NOT","conditions":[{"inMailbox":"F1"}]}]}},"q"]]}`))
	f.Add([]byte(`{"using":[],"methodCalls":[["Email/get",{"#ids":{"resultOf":"q","name":"Email/query","path":"/list/*/ids/0"}},"g"]],"createdIds":{}}`))
	f.Add([]byte(`{"using":[],"methodCalls":[["Email/query",{"filter":{"before":"2020-01-01T00:00:00Z","header":["a","b"],"minSize":-1}},"q"]]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, detail := decodeRequest(body)
		if detail != "" {
			return
		}
		for _, c := range req.Calls {
			if _, err := json.Marshal(c); err != nil {
				t.Fatalf("re-encode %v: %v", c, err)
			}
			var args struct {
				Filter json.RawMessage `json:"filter"`
				Ref    *struct {
					Path string `json:"path"`
				} `json:"#ids"`
			}
			if json.Unmarshal(c.args, &args) != nil {
				continue
			}
			if n, err := decodeFilter(args.Filter); err == nil {
				sc := &backend.FilterScope{Folders: []uint64{1, 2, 3}, All: []uint64{1, 2, 3}}
				mids := func(uint64) ([]uint64, error) { return []uint64{1}, nil }
				compileFilter(n, sc, mids, func(id string) (uint64, bool) { return parseID('F', id) })
			}
			if args.Ref != nil {
				var v any
				json.Unmarshal(c.args, &v)
				evalPointer(v, args.Ref.Path)
			}
		}
	})
}

// FuzzIDs parses ids, blob ids and states: what parses formats back to
// the same string.
func FuzzIDs(f *testing.F) {
	for _, s := range []string{"M1", "B12-2-1", "e1-2-3", "F0", "T18446744073709551615", "B1--2", "q1-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, ok := parseID('M', s); ok && emailID(n) != s {
			t.Fatalf("%q -> %d", s, n)
		}
		if mid, path, ok := parseBlobID(s); ok {
			id := blobID(mid)
			if path != nil {
				var parts []string
				for _, p := range path {
					parts = append(parts, fmtInt(p))
				}
				id = partBlobID(mid, strings.Join(parts, "."))
			}
			if id != s {
				t.Fatalf("%q -> %d %v -> %q", s, mid, path, id)
			}
		}
		if nums, ok := parseState('e', s, 3); ok && joinState('e', nums...) != s {
			t.Fatalf("state %q -> %v", s, nums)
		}
	})
}

func fmtInt(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// FuzzBodyDecode decodes bodies in every transfer encoding and charset:
// always valid UTF-8, truncation on a character boundary within the limit.
func FuzzBodyDecode(f *testing.F) {
	f.Add([]byte("Gr=FC=DFe=\r\nx=3"), "QUOTED-PRINTABLE", "iso-8859-1", 5)
	f.Add([]byte("R3LDvMOfZQ==\r\n"), "BASE64", "utf-8", 3)
	f.Add([]byte("\x1b$B$3$s$K$A$O\x1b(B"), "7BIT", "iso-2022-jp", 0)
	f.Add([]byte("\xff\xfe"), "8BIT", "x-unknown", 1)
	f.Fuzz(func(t *testing.T, body []byte, enc, charset string, limit int) {
		decoded, _ := transferDecode(body, enc)
		s, _ := toUTF8(decoded, charset)
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 from %q %s %s", body, enc, charset)
		}
		cut, truncated := truncateUTF8(s, limit)
		if !utf8.ValidString(cut) || truncated && len(cut) > limit || !truncated && cut != s || !strings.HasPrefix(s, cut) {
			t.Fatalf("truncate %q to %d: %q %v", s, limit, cut, truncated)
		}
	})
}
