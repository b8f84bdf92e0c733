package index

import (
	"fmt"
	"slices"
	"testing"

	"github.com/blugelabs/bluge"
	segment "github.com/blugelabs/bluge_segment_api"
)

// textField must index what bluge's TermField indexes with the same
// analyzer and options (keyword fields: what NewKeywordField indexes): the
// same terms, frequencies, lengths and positions (textField drops byte
// offsets, which nothing reads), and leave a stored value
// as it was.
func TestTextFieldSameAsTermField(t *testing.T) {
	a := newAnalyzers()
	g := newCorpusGen(7)
	docs := []Doc{{
		MID: 1, Subject: "ÄRGER über Ärger: ΣΟΦΟΣ und Σοφός, again again AGAIN",
		Body:        "Straße STRASSE straße\r\nȺȾ upper, x x x y",
		From:        []Address{{Name: "Jörg Müller", Email: "Joerg.Mueller@Example.COM"}},
		To:          []Address{{Email: "a@b.example"}, {Name: "A B", Email: "a@b.example"}},
		Attachments: []string{"Report Q3.PDF", "report q3.pdf"},
		Headers:     []HeaderField{{"X-Mailer", "Outlook 16.0"}, {"Message-ID", "<a.b@c>"}, {"X-Tag", "outlook outlook"}},
		Members:     []Member{{1, 1}, {2, 5}},
	}}
	for i := range 50 {
		docs = append(docs, g.doc(uint64(i+2), 2000))
	}
	fields := map[string]bool{}
	for _, d := range docs {
		doc := a.document(&d)
		for _, bf := range doc {
			f, ok := bf.(*textField)
			if !ok {
				continue
			}
			value := string(f.value)
			ref := bluge.NewKeywordFieldBytes(f.name, []byte(value))
			if f.analyzer != nil {
				ref = bluge.NewTextFieldBytes(f.name, []byte(value)).WithAnalyzer(f.analyzer)
			}
			ref.FieldOptions = f.FieldOptions
			fields[f.name] = true
			f.Analyze(0)
			ref.Analyze(0)
			if f.Store() && string(f.Value()) != value {
				t.Fatalf("doc %d field %s: stored value changed to %q", d.MID, f.name, f.Value())
			}
			if got, want := termsOf(f), termsOf(ref); !slices.Equal(got, want) || f.Length() != ref.Length() {
				t.Fatalf("doc %d field %s (length %d, want %d):\n got %v\nwant %v", d.MID, f.name, f.Length(), ref.Length(), got, want)
			}
		}
	}
	for _, name := range []string{fieldID, fieldMeta, fieldSortSubj, fieldSortFrom, fieldHasAtt, fieldSubject, fieldBody, fieldFrom, fieldAttachment, fieldHeader} {
		if !fields[name] {
			t.Errorf("field %s was not compared", name)
		}
	}
}

// termsOf lists a field's terms with frequency and positions, sorted.
func termsOf(f segment.Field) []string {
	var out []string
	f.EachTerm(func(t segment.FieldTerm) {
		s := fmt.Sprintf("%q x%d", t.Term(), t.Frequency())
		t.EachLocation(func(l segment.Location) {
			s += fmt.Sprintf(" %q@%d", l.Field(), l.Pos())
		})
		out = append(out, s)
	})
	slices.Sort(out)
	return out
}
