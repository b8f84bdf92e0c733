package index

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blugelabs/bluge/analysis"
)

func checkTokens(t *testing.T, input []byte, ts analysis.TokenStream, maxLen int) map[string]bool {
	t.Helper()
	terms := map[string]bool{}
	for _, tok := range ts {
		if len(tok.Term) == 0 || len(tok.Term) > maxLen {
			t.Fatalf("term %q of %q: bad length", tok.Term, input)
		}
		if tok.Start < 0 || tok.Start > tok.End || tok.End > len(input) {
			t.Fatalf("term %q of %q: offsets %d..%d", tok.Term, input, tok.Start, tok.End)
		}
		terms[string(tok.Term)] = true
	}
	return terms
}

// FuzzAddressAnalyzer: the analyzer never panics, never changes its input,
// and a search for the address or for a word of the name finds its terms.
func FuzzAddressAnalyzer(f *testing.F) {
	for _, s := range [][2]string{
		{"alice.smith+tag@mail.acme.example", "Alice Smith"},
		{"<HP.Mueller@Acme-Corp.Example>", "Hans-Peter Müller"},
		{"bob@", ""},
		{"@example", "\"Smith, Bob\" (work)"},
		{"a..b@c..d.", "O'Neil"},
		{"\xff\xfe@\x00x", "\u0130stanbul \u212a"},
		{"user@[192.0.2.1]", "=?utf-8?q?J=C3=BCrgen?="},
		{strings.Repeat("x", 300) + "@example.com", strings.Repeat("名前", 100)},
	} {
		f.Add(s[0], s[1])
	}
	a := newAddressAnalyzer()
	f.Fuzz(func(t *testing.T, email, name string) {
		value := joinAddresses([]Address{{Name: name, Email: email}})
		input := bytes.Clone(value)
		ts := a.Analyze(input)
		if !bytes.Equal(input, value) {
			t.Fatalf("input changed: %q -> %q", value, input)
		}
		terms := checkTokens(t, input, ts, maxTermBytes)
		// The query side splits and normalizes like the index side.
		matches := func(w string) bool {
			if strings.Contains(w, "@") {
				return terms[w]
			}
			for term := range terms {
				if strings.HasPrefix(term, w) {
					return true
				}
			}
			return false
		}
		if simpleAddress.MatchString(email) && len(email) < maxTermBytes {
			lower := strings.ToLower(email)
			at := strings.LastIndexByte(lower, '@')
			for _, w := range []string{lower, lower[:at], lower[at:], lower[at+1:]} {
				if !matches(w) {
					t.Errorf("address %q: %q does not match terms %q", email, w, slices.Sorted(mapsKeys(terms)))
				}
			}
		}
		if !strings.ContainsAny(name, "\x00\x01") {
			for _, w := range addressWords(name) {
				if !strings.Contains(w, "@") && !matches(w) {
					t.Errorf("name %q: word %q does not match terms %q", name, w, slices.Sorted(mapsKeys(terms)))
				}
			}
		}
	})
}

var simpleAddress = regexp.MustCompile(`^[a-zA-Z0-9_+-]+(\.[a-zA-Z0-9_+-]+)*@[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*$`)

func unixTime(sec int64) time.Time { return time.Unix(sec, 0) }

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// FuzzHeaderAnalyzer: never panics, offsets stay in the input, and every
// message id and word of a value is found by a search for it.
func FuzzHeaderAnalyzer(f *testing.F) {
	f.Add("Message-ID", "<abc.123@Mail.Example>")
	f.Add("References", "<a@b> <c@d>\t<e@f>")
	f.Add("In-Reply-To", "no brackets@host")
	f.Add("X-Mailer", "Microsoft Outlook 16.0")
	f.Add("Received", "from a (b [192.0.2.1]) by c; Tue, 1 Jan 2024 00:00:00 +0000")
	f.Add("X-\x00", "<<>> <\xff>")
	a := newHeaderAnalyzer()
	words := newWordAnalyzer()
	f.Fuzz(func(t *testing.T, name, value string) {
		d := Doc{Headers: []HeaderField{{name, value}}}
		_, values := joinHeaders(&d)
		input := bytes.Clone(values)
		ts := a.Analyze(input)
		if !bytes.Equal(input, values) {
			t.Fatalf("input changed")
		}
		terms := checkTokens(t, input, ts, maxTermBytes+maxMsgIDBytes+len(input))
		lname := strings.ToLower(strings.TrimSpace(name))
		if len(values) == 0 || strings.ContainsAny(name+value, "\x00\x01") {
			return
		}
		if isMsgIDHeader(lname) {
			for _, id := range msgIDs(value) {
				if !terms[string(headerTerm(lname, id))] {
					t.Errorf("%s %q: id %q not indexed", name, value, id)
				}
			}
		}
		for _, w := range words.Analyze([]byte(value)) {
			if !terms[string(w.Term)] || !terms[string(headerTerm(lname, string(w.Term)))] {
				t.Errorf("%s %q: word %q not indexed", name, value, w.Term)
			}
		}
	})
}

// FuzzMeta: the packed doc value round-trips, never holds the bytes bluge
// reserves, and decoding garbage does not panic.
func FuzzMeta(f *testing.F) {
	f.Add(uint64(1), int64(0), int64(1700000000), int64(1234), []byte{1, 0, 0, 0, 5}, []byte{0x80})
	f.Add(^uint64(0), int64(-1<<62), int64(1<<62), int64(-5), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []byte{0x7f, 0x7f, 0xc0})
	f.Fuzz(func(t *testing.T, mid uint64, recv, sent, size int64, members, garbage []byte) {
		d := Doc{MID: mid, Received: unixTime(recv), Sent: unixTime(sent), Size: size}
		for len(members) >= 12 {
			d.Members = append(d.Members, Member{
				Folder: uint64(members[0]) | uint64(members[1])<<8 | uint64(members[2])<<56 | uint64(members[3])<<32,
				UID:    uint32(members[4]) | uint32(members[5])<<24,
			})
			members = members[12:]
		}
		b := encodeMeta(&d)
		if bytes.IndexByte(b, 0xfe) >= 0 || bytes.IndexByte(b, 0xff) >= 0 {
			t.Fatalf("meta holds a reserved byte: %x", b)
		}
		m, ok := decodeMeta(b)
		if !ok || m.mid != mid || int64(m.received) != clampTime(d.Received).Unix()-minTime.Unix() || m.size != uint64(max(size, 0)) {
			t.Fatalf("round trip: %+v from %+v", m, d)
		}
		for _, mb := range d.Members {
			if !slices.Contains(appendUIDs(nil, m.members, mb.Folder), mb.UID) {
				t.Fatalf("member %+v lost", mb)
			}
		}
		if m, ok := decodeMeta(garbage); ok {
			appendUIDs(nil, m.members, 1)
		}
		if v, n := readVar(garbage); n > 0 && n <= len(garbage) {
			if again := appendVar(nil, v); len(again) > n {
				t.Fatalf("var %x decodes to %d, which encodes longer: %x", garbage[:n], v, again)
			}
		}
	})
}

// FuzzSearch runs arbitrary search strings on every field of a small index:
// no errors, no panics, and results within the folder.
func FuzzSearch(f *testing.F) {
	for _, s := range []string{"quarterly rep", "@acme.example", "\xff\xfe", "a", "ß*?[", strings.Repeat("ab ", 200), "<>&\"'", "\x00\x01"} {
		f.Add(s, uint8(0))
	}
	docs := testDocs()
	ix, err := Open(f.TempDir(), nil)
	if err != nil {
		f.Fatal(err)
	}
	defer ix.Close()
	if err := ix.Put(context.Background(), docs, 1); err != nil {
		f.Fatal(err)
	}
	all, err := ix.SearchFolder(context.Background(), 1, All())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string, field uint8) {
		q := Text(Field(1+int(field)%int(FieldAttachment)), s)
		if field >= 128 {
			q = Header(s, s)
		}
		uids, err := ix.SearchFolder(context.Background(), 1, Or(q, Not(And(q, HasAttachment(true)))))
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		for _, u := range uids {
			if !slices.Contains(all, u) {
				t.Fatalf("%q: uid %d not in folder", s, u)
			}
		}
		if _, _, err := ix.Snippet(context.Background(), 1, q, s); err != nil {
			t.Fatalf("snippet %q: %v", s, err)
		}
	})
}
