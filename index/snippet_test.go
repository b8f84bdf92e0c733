package index

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSnippetEscaping(t *testing.T) {
	body := "Dear team,\n\n  the <b>quarterly</b> report & budget for Q3 are attached.\n"
	docs := []Doc{{MID: 1, Members: []Member{{1, 1}}, Subject: "Quarterly <report> & budget", Body: body}}
	ix := openTestIndex(t, docs)
	ctx := context.Background()
	for _, tc := range []struct {
		q             Query
		subject, body string
	}{
		{Text(FieldSubject, "report"), "Quarterly &lt;<mark>report</mark>&gt; &amp; budget", ""},
		{Text(FieldBody, "budget"), "", "Dear team, the &lt;b&gt;quarterly&lt;/b&gt; report &amp; <mark>budget</mark> for Q3 are attached."},
		{Text(FieldText, "quarterly rep"),
			"<mark>Quarterly &lt;report</mark>&gt; &amp; budget",
			"Dear team, the &lt;b&gt;<mark>quarterly</mark>&lt;/b&gt; <mark>report</mark> &amp; budget for Q3 are attached."},
		{And(Text(FieldBody, "attach"), Not(Text(FieldSubject, "budget"))), "", "Dear team, the &lt;b&gt;quarterly&lt;/b&gt; report &amp; budget for Q3 are <mark>attached</mark>."},
		{Or(Header("Subject", "&"), Text(FieldFrom, "budget")), "", ""},
		{Text(FieldBody, "lunch"), "", ""},
		{Text(FieldBody, "budget lunch"), "", ""}, // not all words: no match
	} {
		subject, preview, err := ix.Snippet(ctx, 1, tc.q, body)
		if err != nil || subject != tc.subject || preview != tc.body {
			t.Errorf("%+v:\n got %q %q %v\nwant %q %q", tc.q, subject, preview, err, tc.subject, tc.body)
		}
	}
	if _, _, err := ix.Snippet(ctx, 2, Text(FieldText, "x"), ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown message: %v", err)
	}
}

// TestSnippetProperties checks every test message against text conditions:
// snippets are escaped, bounded, taken from the text and mark what the
// search matched.
func TestSnippetProperties(t *testing.T) {
	docs := testDocs()
	long := docs[3]
	long.MID = 100
	long.Body = strings.Repeat("filler words & <tags> ", 300) + "the needle is here " + strings.Repeat("more filler ", 300)
	docs = append(docs, long)
	ix := openTestIndex(t, docs)
	ctx := context.Background()
	var conds []cond
	for _, s := range []string{"budget", "report", "quarterly rep", "résumé", "straße", "friday lunch", "needle", "filler words",
		"the", "invoice 4711", "xyzzy"} {
		conds = append(conds, cText(FieldBody, s), cText(FieldSubject, s), cText(FieldText, s), cNot(cText(FieldText, s)))
	}
	marked := 0
	for i := range docs {
		d := &docs[i]
		for _, c := range conds {
			subject, preview, err := ix.Snippet(ctx, d.MID, c.q, d.Body)
			if err != nil {
				t.Fatal(err)
			}
			checkMarkup(t, c.name+" subject", subject, d.Subject, -1)
			checkMarkup(t, c.name+" preview", preview, d.Body, maxPreview)
			if strings.HasPrefix(c.name, "NOT ") && subject+preview != "" {
				t.Errorf("%s: highlights %q %q", c.name, subject, preview)
			}
			// A positive text condition on the body highlights exactly when
			// the body matches it.
			if q := c.q; q.kind == kindText && (q.field == FieldBody || q.field == FieldText) {
				if (preview != "") != refText(d, FieldBody, q.text) {
					marked = -1 << 30
				}
			}
			if q := c.q; q.kind == kindText && (q.field == FieldSubject || q.field == FieldText) {
				if (subject != "") != refText(d, FieldSubject, q.text) {
					marked = -1 << 30
				}
			}
			marked += strings.Count(subject+preview, "<mark>")
		}
	}
	if marked < 100 {
		t.Errorf("highlighting disagrees with matching, or too few marks (%d)", marked)
	}
	_, preview, err := ix.Snippet(ctx, 100, Text(FieldBody, "needle"), long.Body)
	if err != nil || !strings.Contains(preview, "<mark>needle</mark>") || len(preview) > maxPreview {
		t.Errorf("long body preview %q %v", preview, err)
	}
}

// checkMarkup verifies that s is text, escaped, with balanced marks, within
// limit bytes.
func checkMarkup(t *testing.T, what, s, text string, limit int) {
	t.Helper()
	if s == "" {
		return
	}
	if !utf8.ValidString(s) || limit >= 0 && len(s) > limit {
		t.Errorf("%s: invalid or too long (%d): %q", what, len(s), s)
	}
	if strings.Count(s, "<mark>") != strings.Count(s, "</mark>") || strings.Count(s, "<mark>") == 0 {
		t.Errorf("%s: unbalanced or missing marks: %q", what, s)
	}
	plain := strings.NewReplacer("<mark>", "", "</mark>", "").Replace(s)
	if strings.ContainsAny(plain, "<>") {
		t.Errorf("%s: unescaped markup: %q", what, s)
	}
	plain = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(plain)
	if !strings.Contains(strings.Join(strings.Fields(text), " "), plain) {
		t.Errorf("%s: %q is not from %q", what, plain, text)
	}
}
