package index

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blugelabs/bluge/search"
)

// substringDocs are testDocs with German compounds and phrases in the
// bodies and dates written in several time zones.
func substringDocs() []Doc {
	docs := testDocs()
	extra := []string{
		"Anbei die Rechnungsnummer 2024-17 und der Prüfbericht vom Montag.",
		"Das Übergabeprotokoll liegt bei. Let me know if you need anything.",
		"let me\nknow by Friday, the Prüfberichte are late",
		"Bericht: Rechnung bezahlt. Please let me know.",
		"know me let: reversed words only",
	}
	zones := []*time.Location{time.UTC, time.FixedZone("CEST", 2*3600), time.FixedZone("PST", -8*3600), time.FixedZone("NZDT", 13*3600)}
	for i := range docs {
		if i%3 == 0 {
			docs[i].Body += " " + extra[i%len(extra)]
		}
		docs[i].Sent = docs[i].Sent.In(zones[i%len(zones)])
	}
	docs[7].Sent = time.Time{}
	return docs
}

// refSubstring is IMAP's substring match on the text of d's field, with
// runs of white space as one space.
func refSubstring(d *Doc, field Field, s string) bool {
	norm := func(x string) string { return strings.Join(strings.Fields(strings.ToLower(x)), " ") }
	var texts []string
	switch field {
	case FieldBody:
		texts = []string{d.Body}
	case FieldSubject:
		texts = []string{d.Subject}
	case FieldFrom:
		for _, a := range d.From {
			texts = append(texts, a.Name, a.Email)
		}
	case FieldText:
		texts = []string{d.Body, d.Subject}
		for _, a := range slices.Concat(d.From, d.To, d.Cc, d.Bcc) {
			texts = append(texts, a.Name, a.Email)
		}
		texts = append(texts, d.Attachments...)
	}
	for _, t := range texts {
		if strings.Contains(norm(t), norm(s)) {
			return true
		}
	}
	return false
}

func TestSubstring(t *testing.T) {
	docs := substringDocs()
	ix := openTestIndex(t, docs)
	ctx := context.Background()
	cases := []struct {
		field Field
		s     string
	}{
		{FieldBody, "echnung"}, {FieldBody, "Bericht"}, {FieldBody, "prüfbericht"}, {FieldBody, "ÜBERGABE"},
		{FieldBody, "bergabeprotokol"}, {FieldBody, "let me know"}, {FieldBody, "et me kno"},
		{FieldBody, "me let"}, {FieldBody, "ummer 2024"}, {FieldBody, "4711"}, {FieldBody, "71"},
		{FieldBody, "nothing to see"}, {FieldBody, "ürich"}, {FieldBody, "x"},
		{FieldSubject, "uarterly"}, {FieldSubject, "ort dra"}, {FieldSubject, "rger mit"},
		{FieldFrom, "mueller"}, {FieldFrom, "ller@acme"}, {FieldFrom, "ngstr"}, {FieldFrom, "eter"},
		{FieldText, "ngström"}, {FieldText, "ocoll"}, {FieldText, "ice-2024.pd"}, {FieldText, "udget pl"},
	}
	selective := 0
	for _, c := range cases {
		for folder := uint64(1); folder <= 3; folder++ {
			got, err := ix.SearchFolder(ctx, folder, Substring(c.field, c.s))
			if err != nil {
				t.Fatalf("%s %q: %v", c.field, c.s, err)
			}
			want := refFolder(docs, folder, func(d *Doc) bool { return refSubstring(d, c.field, c.s) })
			if !slices.Equal(got, want) {
				t.Errorf("%s %q in folder %d:\n got %v\nwant %v", c.field, c.s, folder, got, want)
			}
			if len(want) > 0 {
				selective++
			}
		}
	}
	if selective < 40 {
		t.Errorf("only %d non-empty results", selective)
	}
}

func TestSentDays(t *testing.T) {
	docs := substringDocs()
	ix := openTestIndex(t, docs)
	ctx := context.Background()
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	ranges := [][2]time.Time{
		{day(2024, 3, 5), time.Time{}}, {time.Time{}, day(2024, 3, 10)}, {day(2024, 3, 7), day(2024, 3, 8)},
		{day(2024, 2, 29), day(2024, 4, 1)}, {day(2023, 1, 1), day(2025, 1, 1)}, {day(2024, 3, 12), day(2024, 3, 11)},
		{time.Time{}, time.Time{}},
	}
	for _, r := range ranges {
		for folder := uint64(1); folder <= 3; folder++ {
			got, err := ix.SearchFolder(ctx, folder, SentDays(r[0], r[1]))
			if err != nil {
				t.Fatal(err)
			}
			want := refFolder(docs, folder, func(d *Doc) bool {
				if d.Sent.IsZero() {
					return false
				}
				y, m, dd := d.Sent.Date()
				written := day(y, m, dd)
				return (r[0].IsZero() || !written.Before(r[0])) && (r[1].IsZero() || written.Before(r[1]))
			})
			if !slices.Equal(got, want) {
				t.Errorf("sent days %v..%v in folder %d:\n got %v\nwant %v", r[0], r[1], folder, got, want)
			}
		}
	}
}

func TestCountWithoutVocabulary(t *testing.T) {
	docs := substringDocs()
	ix := openTestIndex(t, docs)
	n, err := ix.Count()
	if err != nil {
		t.Fatal(err)
	}
	if n != uint64(len(docs)) {
		t.Errorf("count %d, want %d", n, len(docs))
	}
}

// A rebuild (Rewind to 0) drops the vocabulary documents and writes them
// again from what is fed, so that the words of messages deleted before go
// with the next merges, as the messages' own terms do.
func TestRewindDropsVocabulary(t *testing.T) {
	ctx := context.Background()
	ix, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	docs := []Doc{
		{MID: 1, Members: []Member{{1, 1}}, Body: "Geheimprojektname Zugspitze"},
		{MID: 2, Members: []Member{{1, 2}}, Body: "Rechnungsnummer"},
	}
	if err := ix.Put(ctx, docs, 2); err != nil {
		t.Fatal(err)
	}
	if err := ix.Put(ctx, docs[1:], 2); err != nil { // fed twice: two vocabulary documents
		t.Fatal(err)
	}
	if err := ix.Delete(ctx, []uint64{1}); err != nil {
		t.Fatal(err)
	}
	vocabDocs := func() int {
		n := 0
		err = ix.withSnapshot(ctx, func(r search.Reader) error {
			s, err := termsSearcher(r, fieldKind, []string{vocabKind}, unscored())
			if err != nil {
				return err
			}
			defer s.Close()
			sctx := search.NewSearchContext(s.DocumentMatchPoolSize(), 0)
			for {
				dm, err := s.Next(sctx)
				if err != nil || dm == nil {
					return err
				}
				n++
				sctx.DocumentMatchPool.Put(dm)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := vocabDocs(); n != 2 {
		t.Fatalf("%d vocabulary documents before the rebuild, want 2", n)
	}
	if err := ix.Rewind(0); err != nil {
		t.Fatal(err)
	}
	if n := vocabDocs(); n != 0 {
		t.Errorf("%d vocabulary documents after the rewind, want 0", n)
	}
	if err := ix.Put(ctx, docs[1:], 2); err != nil {
		t.Fatal(err)
	}
	if n := vocabDocs(); n != 1 {
		t.Errorf("%d vocabulary documents after the rebuild, want 1", n)
	}
	if got, err := ix.SearchFolder(ctx, 1, Substring(FieldBody, "echnungsnum")); err != nil || !slices.Equal(got, []uint32{2}) {
		t.Errorf("after the rebuild: %v %v", got, err)
	}
	if n, err := ix.Count(); err != nil || n != 1 {
		t.Errorf("count %d %v", n, err)
	}
}
