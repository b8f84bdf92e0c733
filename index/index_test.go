package index

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// The test corpus: handcrafted people, words and headers, combined into 50
// messages in folders 1..3 (some in two folders with different UIDs).
var (
	testPeople = []Address{
		{"Alice Smith", "alice.smith@mail.acme.example"},
		{"Hans-Peter Müller", "hp.mueller@acme.example"},
		{"", "bob@globex.example"},
		{"Carol O'Neil", "carol_oneil+news@umbrella-corp.example"},
		{"Dave Jones", "dave-jones@sub.globex.example"},
		{"Zoë Ångström", "zoe@initech.example"},
	}
	testSubjects = []string{
		"Quarterly report", "Re: Quarterly report draft", "Invoice 2024 overdue",
		"Fwd: Lunch on Friday", "AW: Termin Straße", "Budget review", "[ops] Re: backup failed",
		"Résumé attached", "Re: Re: budget", "Meeting minutes", "ÄRGER mit der Rechnung", "",
	}
	testBodies = []string{
		"Hello team, the quarterly report is attached. Please review the budget.",
		"die Rechnung für März ist überfällig, bitte zahlen",
		"Lunch on Friday at noon? The café near the office.",
		"backup of server alpha failed at 03:00, see log",
		"Résumé of the meeting: budget approved, report due Friday",
		"Invoice number 4711 for consulting services rendered",
		"nothing to see here",
		"Zürich office meeting about the draft report and the budget review",
	}
	testAttachments = [][]string{nil, {"invoice-2024.pdf"}, {"Protokoll März.docx", "budget plan.xlsx"}, nil}
	testMailers     = []string{"Microsoft Outlook 16.0", "Apple Mail (2.3654)", "Thunderbird 115.3"}
)

func testDocs() []Doc {
	base := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	var docs []Doc
	for i := range 50 {
		mid := uint64(i + 1)
		d := Doc{
			MID:         mid,
			Members:     []Member{{Folder: uint64(1 + i%3), UID: uint32(1000 - 7*i)}},
			From:        []Address{testPeople[i%len(testPeople)]},
			To:          []Address{testPeople[(i+1)%len(testPeople)]},
			Subject:     testSubjects[i%len(testSubjects)],
			Body:        testBodies[i%len(testBodies)],
			Attachments: testAttachments[i%len(testAttachments)],
			// Every third message arrives at the same time as the previous
			// one, for ties.
			Received: base.Add(time.Duration(i-i%3) * 13 * time.Hour),
			Sent:     base.Add(time.Duration(i)*13*time.Hour - time.Hour),
			Size:     int64(1000 + (i%5)*250),
		}
		d.HasAttachment = len(d.Attachments) > 0
		if i%4 == 1 {
			d.Cc = []Address{testPeople[(i+2)%len(testPeople)], testPeople[(i+3)%len(testPeople)]}
		}
		if i%5 == 2 {
			d.Rcpt = []string{testPeople[(i+4)%len(testPeople)].Email}
		}
		if i%6 == 3 {
			d.Bcc = []Address{testPeople[(i+5)%len(testPeople)]}
		}
		if i%4 == 0 {
			d.Members = append(d.Members, Member{Folder: uint64(1 + (i+1)%3), UID: uint32(5 + i)})
		}
		switch i {
		case 7:
			d.Sent = time.Time{}
		case 8:
			d.Sent = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) // hostile
		case 9:
			d.Sent = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
		case 10:
			d.Body = norm.NFD.String("Résumé in NFD, straße") // decomposed accents
		}
		d.MessageID = fmt.Sprintf("<%d.Msg%d@Mail.Example>", i*7919, i)
		d.Headers = []HeaderField{
			{"From", d.From[0].Email},
			{"Subject", d.Subject},
			{"Message-ID", d.MessageID},
			{"X-Mailer", testMailers[i%len(testMailers)]},
			{"Received", fmt.Sprintf("from relay%d.example.net by mx.acme.example", i%4)},
			{"DKIM-Signature", "v=1; a=rsa-sha256; b=secretblob" + fmt.Sprint(i)},
		}
		if i > 0 {
			d.Headers = append(d.Headers, HeaderField{"In-Reply-To", fmt.Sprintf("<%d.Msg%d@Mail.Example>", (i-1)*7919, i-1)})
		}
		if i%7 == 0 {
			d.Headers = append(d.Headers, HeaderField{"List-Id", "Ops Team <ops.lists.acme.example>"})
		}
		docs = append(docs, d)
	}
	return docs
}

// ---- Reference implementation: the matching rules, by hand. ----

func refWords(s string) []string {
	return strings.FieldsFunc(norm.NFC.String(strings.ToLower(s)), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
	})
}

// refWordsMatch: the query words in the text, the last as a prefix; adjacent
// and in order, or anywhere.
func refWordsMatch(text, query string, adjacent bool) bool {
	q, t := refWords(query), refWords(text)
	if len(q) == 0 {
		return true
	}
	is := func(tok, w string, last bool) bool {
		return tok == w || last && strings.HasPrefix(tok, w)
	}
	if !adjacent {
		for k, w := range q {
			if !slices.ContainsFunc(t, func(tok string) bool { return is(tok, w, k == len(q)-1) }) {
				return false
			}
		}
		return true
	}
	for i := 0; i+len(q) <= len(t); i++ {
		ok := true
		for k, w := range q {
			ok = ok && is(t[i+k], w, k == len(q)-1)
		}
		if ok {
			return true
		}
	}
	return false
}

func refAddressTokens(as []Address) map[string]bool {
	toks := map[string]bool{}
	for _, a := range as {
		e := strings.ToLower(a.Email)
		toks[e] = true
		at := strings.LastIndex(e, "@")
		local, domain := e[:at], e[at+1:]
		toks[local] = true
		for _, p := range strings.FieldsFunc(local, func(r rune) bool { return strings.ContainsRune("._-+", r) }) {
			toks[p] = true
		}
		labels := strings.Split(domain, ".")
		for i := range labels {
			suffix := strings.Join(labels[i:], ".")
			toks[suffix], toks["@"+suffix] = true, true
		}
		for _, w := range strings.Fields(strings.ToLower(a.Name)) {
			toks[norm.NFC.String(w)] = true
			for _, p := range strings.Split(w, "-") {
				toks[norm.NFC.String(p)] = true
			}
		}
	}
	return toks
}

func refAddressMatch(query string, fields ...[]Address) bool {
	var words []string
	for _, w := range strings.FieldsFunc(norm.NFC.String(strings.ToLower(query)), func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(`,;<>"()[]{}`, r)
	}) {
		if w = strings.Trim(w, ".:'!?"); w != "" && w != "@" {
			words = append(words, w)
		}
	}
	if len(words) == 0 {
		return true
	}
	for _, f := range fields {
		toks := refAddressTokens(f)
		all := true
		for _, w := range words {
			if strings.Contains(w, "@") {
				all = all && toks[w]
			} else {
				all = all && slices.ContainsFunc(slices.Collect(maps.Keys(toks)), func(t string) bool { return strings.HasPrefix(t, w) })
			}
		}
		if all {
			return true
		}
	}
	return false
}

func rcptAddresses(d *Doc) []Address {
	var as []Address
	for _, r := range d.Rcpt {
		as = append(as, Address{Email: r})
	}
	return as
}

// refHeaders are the headers whose values are searchable.
func refHeaders(d *Doc) []HeaderField {
	var hs []HeaderField
	for _, h := range d.Headers {
		switch n := strings.ToLower(h.Name); n {
		case "from", "to", "cc", "bcc", "subject", "message-id":
		default:
			if HeaderValueIndexed(n) {
				hs = append(hs, HeaderField{n, h.Value})
			}
		}
	}
	return append(hs, HeaderField{"message-id", d.MessageID})
}

var refMsgIDRE = regexp.MustCompile(`<([^>]*)>`)

func refText(d *Doc, field Field, s string) bool {
	if field != FieldText && len(refWords(s)) == 0 && strings.Trim(s, " ,;<>\"()[]{}.:'!?@") == "" {
		return true // nothing to search for
	}
	switch field {
	case FieldFrom:
		return refAddressMatch(s, d.From)
	case FieldTo:
		return refAddressMatch(s, d.To, rcptAddresses(d))
	case FieldCc:
		return refAddressMatch(s, d.Cc)
	case FieldBcc:
		return refAddressMatch(s, d.Bcc, rcptAddresses(d))
	case FieldSubject:
		return refWordsMatch(d.Subject, s, true)
	case FieldBody:
		return refWordsMatch(d.Body, s, false)
	case FieldAttachment:
		return slices.ContainsFunc(d.Attachments, func(a string) bool { return refWordsMatch(a, s, true) })
	case FieldText:
		if len(refWords(s)) == 0 {
			return true
		}
		return refAddressMatch(s, d.From) || refAddressMatch(s, d.To) || refAddressMatch(s, d.Cc) ||
			refAddressMatch(s, d.Bcc) || refAddressMatch(s, rcptAddresses(d)) ||
			refText(d, FieldSubject, s) || refText(d, FieldBody, s) || refText(d, FieldAttachment, s) ||
			slices.ContainsFunc(refHeaders(d), func(h HeaderField) bool { return refWordsMatch(h.Value, s, true) })
	}
	panic("field")
}

func refHeader(d *Doc, name, value string) bool {
	name = strings.ToLower(name)
	switch name {
	case "from":
		return refText(d, FieldFrom, value)
	case "subject":
		return refText(d, FieldSubject, value)
	}
	var present bool
	for _, h := range d.Headers {
		present = present || strings.EqualFold(h.Name, name)
	}
	if value == "" || !HeaderValueIndexed(name) {
		return present // the caller checks values that are not indexed
	}
	if name == "message-id" || name == "in-reply-to" {
		want := refMsgIDRE.FindAllStringSubmatch(strings.ToLower(value), -1)
		if want == nil {
			want = [][]string{{"", strings.ToLower(value)}}
		}
		var have []string
		for _, h := range refHeaders(d) {
			if h.Name == name {
				for _, m := range refMsgIDRE.FindAllStringSubmatch(strings.ToLower(h.Value), -1) {
					have = append(have, m[1])
				}
			}
		}
		for _, w := range want {
			if !slices.Contains(have, w[1]) {
				return false
			}
		}
		return true
	}
	return slices.ContainsFunc(refHeaders(d), func(h HeaderField) bool { return h.Name == name && refWordsMatch(h.Value, value, true) })
}

func refTime(t time.Time) int64 {
	return min(max(t.Unix(), minTime.Unix()), maxTime.Unix())
}

// cond is a query and its reference predicate.
type cond struct {
	name string
	q    Query
	f    func(d *Doc) bool
}

func cText(field Field, s string) cond {
	return cond{fmt.Sprintf("%v %q", field, s), Text(field, s), func(d *Doc) bool { return refText(d, field, s) }}
}

func cHeader(name, value string) cond {
	return cond{fmt.Sprintf("header %s %q", name, value), Header(name, value), func(d *Doc) bool { return refHeader(d, name, value) }}
}

func cAnd(cs ...cond) cond {
	var names []string
	var qs []Query
	for _, c := range cs {
		names, qs = append(names, c.name), append(qs, c.q)
	}
	return cond{"(" + strings.Join(names, " AND ") + ")", And(qs...), func(d *Doc) bool {
		for _, c := range cs {
			if !c.f(d) {
				return false
			}
		}
		return true
	}}
}

func cOr(cs ...cond) cond {
	var names []string
	var qs []Query
	for _, c := range cs {
		names, qs = append(names, c.name), append(qs, c.q)
	}
	return cond{"(" + strings.Join(names, " OR ") + ")", Or(qs...), func(d *Doc) bool {
		for _, c := range cs {
			if c.f(d) {
				return true
			}
		}
		return false
	}}
}

func cNot(c cond) cond {
	return cond{"NOT " + c.name, Not(c.q), func(d *Doc) bool { return !c.f(d) }}
}

func testConds() []cond {
	day := func(m, d int) time.Time { return time.Date(2024, time.Month(m), d, 0, 0, 0, 0, time.UTC) }
	cs := []cond{
		{"all", All(), func(*Doc) bool { return true }},
		{"empty and", And(), func(*Doc) bool { return true }},
		{"empty or", Or(), func(*Doc) bool { return false }},
		{"no mids", MIDs(), func(*Doc) bool { return false }},
		{"mids", MIDs(3, 4, 17, 49, 999), func(d *Doc) bool { return slices.Contains([]uint64{3, 4, 17, 49}, d.MID) }},
		{"has attachment", HasAttachment(true), func(d *Doc) bool { return d.HasAttachment }},
		{"no attachment", HasAttachment(false), func(d *Doc) bool { return !d.HasAttachment }},
		{"size >= 1250", SizeRange(1250, -1), func(d *Doc) bool { return d.Size >= 1250 }},
		{"size < 1500", SizeRange(-1, 1500), func(d *Doc) bool { return d.Size < 1500 }},
		{"size 1250..1750", SizeRange(1250, 1750), func(d *Doc) bool { return d.Size >= 1250 && d.Size < 1750 }},
		{"size open", SizeRange(-1, -1), func(*Doc) bool { return true }},
		{"size empty", SizeRange(1500, 1500), func(*Doc) bool { return false }},
		{"received march 5..10", ReceivedRange(day(3, 5), day(3, 10)), func(d *Doc) bool {
			return refTime(d.Received) >= day(3, 5).Unix() && refTime(d.Received) < day(3, 10).Unix()
		}},
		{"received before march 4", ReceivedRange(time.Time{}, day(3, 4)), func(d *Doc) bool { return refTime(d.Received) < day(3, 4).Unix() }},
		{"sent since march 20", SentRange(day(3, 20), time.Time{}), func(d *Doc) bool {
			return !d.Sent.IsZero() && refTime(d.Sent) >= day(3, 20).Unix()
		}},
		{"sent before 1950", SentRange(time.Time{}, time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC)), func(d *Doc) bool {
			return !d.Sent.IsZero() && refTime(d.Sent) < time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
		}},
		{"sent in year 9999 (clamped)", SentRange(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)), func(d *Doc) bool {
			return !d.Sent.IsZero() && refTime(d.Sent) >= time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
		}},
		{"sent any", SentRange(time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}), func(d *Doc) bool { return !d.Sent.IsZero() }},
	}
	for _, s := range []string{"alice", "Alice Smith", "smith alice", "acme.example", "@acme.example", "@example", "mail.acme",
		"alice.smith@mail.acme.example", "ALICE.SMITH@MAIL.ACME.EXAMPLE", "alice@acme.example", "hans-peter", "peter", "müller",
		"MÜLLER", "hp.mueller", "mueller", "carol_oneil+news", "news", "oneil", "o'neil", "umbrella-corp.example", "umbrella",
		"dave", "jones@", "zoë", "ångström", "bob", "b", "nobody", "", "  ", "@", "Smith, Alice", "<bob@globex.example>"} {
		for _, f := range []Field{FieldFrom, FieldTo, FieldCc, FieldBcc} {
			cs = append(cs, cText(f, s))
		}
	}
	for _, s := range []string{"quarterly", "QUARTERLY REPORT", "report draft", "quarterly rep", "quart", "report quarterly",
		"invoice", "2024", "lunch friday", "lunch on friday", "straße", "STRASSE", "résumé", "resume", "ärger", "budget", "re",
		"ops", "backup failed", "", "...", "rechnung", "zürich", "café", "reviewed", "rev", "the budget", "budget the"} {
		for _, f := range []Field{FieldSubject, FieldBody, FieldText, FieldAttachment} {
			cs = append(cs, cText(f, s))
		}
	}
	cs = append(cs, cText(FieldAttachment, "pdf"), cText(FieldAttachment, "protokoll märz"), cText(FieldAttachment, "plan"),
		cText(FieldText, "outlook"), cText(FieldText, "relay2"), cText(FieldText, "mx.acme"), cText(FieldText, "secretblob"),
		cText(FieldText, "alice"), cText(FieldText, "globex.example"))
	for _, h := range [][2]string{{"X-Mailer", "outlook"}, {"x-mailer", "Apple Mail"}, {"X-Mailer", "mail apple"}, {"X-Mailer", ""},
		{"List-Id", ""}, {"List-Id", "ops team"}, {"Received", "relay1"}, {"Received", "relay1.example.net by"},
		{"DKIM-Signature", ""}, {"DKIM-Signature", "secretblob"}, {"Message-ID", "<7919.msg1@mail.example>"},
		{"message-id", "7919.MSG1@MAIL.EXAMPLE"}, {"Message-ID", "7919.msg1"}, {"In-Reply-To", "<0.Msg0@Mail.Example>"},
		{"Message-ID", ""}, {"X-Nonexistent", ""}, {"X-Nonexistent", "x"}, {"From", "alice"}, {"Subject", "budget review"},
		{"X-Mailer", "---"}} {
		cs = append(cs, cHeader(h[0], h[1]))
	}
	// Nesting.
	cs = append(cs,
		cAnd(cText(FieldBody, "budget"), cNot(cText(FieldSubject, "budget"))),
		cNot(cText(FieldBody, "budget")),
		cNot(cNot(cText(FieldFrom, "alice"))),
		cNot(cOr(cText(FieldFrom, "alice"), cText(FieldFrom, "bob"))),
		cOr(cNot(cText(FieldFrom, "alice")), HasAttachmentCond(true)),
		cAnd(cOr(cText(FieldSubject, "report"), cText(FieldBody, "invoice")), cNot(HasAttachmentCond(true)), cText(FieldTo, "acme")),
		cOr(cAnd(cText(FieldFrom, "alice"), cText(FieldBody, "budget")), cAnd(cNot(cText(FieldFrom, "alice")), cNot(cText(FieldBody, "budget")))),
		cAnd(cNot(cText(FieldFrom, "dave")), cNot(cText(FieldTo, "dave"))),
		cAnd(cText(FieldBody, ""), cNot(cText(FieldSubject, "meeting"))),
		cNot(cText(FieldBody, "")),
		cOr(cText(FieldBody, "zzzz"), cNot(cText(FieldBody, "..."))),
		cAnd(cOr(), cNot(cText(FieldFrom, "alice"))),
		cOr(cAnd(), cText(FieldFrom, "alice")),
		cAnd(cNot(cOr()), cText(FieldCc, "globex")),
		cNot(cAnd(cText(FieldBody, "report"), cOr(cText(FieldSubject, "quarterly"), cNot(cText(FieldFrom, "zoe"))))),
	)
	return cs
}

// HasAttachmentCond is the cond form of HasAttachment.
func HasAttachmentCond(b bool) cond {
	return cond{fmt.Sprint("has attachment ", b), HasAttachment(b), func(d *Doc) bool { return d.HasAttachment == b }}
}

// refFolder returns the UIDs in folder of the docs matching f.
func refFolder(docs []Doc, folder uint64, f func(*Doc) bool) []uint32 {
	var uids []uint32
	for i := range docs {
		if !f(&docs[i]) {
			continue
		}
		for _, m := range docs[i].Members {
			if m.Folder == folder {
				uids = append(uids, m.UID)
			}
		}
	}
	slices.Sort(uids)
	return uids
}

func openTestIndex(t *testing.T, docs []Doc) *Index {
	t.Helper()
	ix, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	// Two batches: the search runs over more than one segment.
	if err := ix.Put(context.Background(), docs[:len(docs)/2], 1); err != nil {
		t.Fatal(err)
	}
	if err := ix.Put(context.Background(), docs[len(docs)/2:], 2); err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestSearchFolder(t *testing.T) {
	docs := testDocs()
	ix := openTestIndex(t, docs)
	ctx := context.Background()
	nonEmpty := 0
	for _, c := range testConds() {
		for folder := uint64(1); folder <= 4; folder++ {
			got, err := ix.SearchFolder(ctx, folder, c.q)
			if err != nil {
				t.Fatalf("%s in %d: %v", c.name, folder, err)
			}
			want := refFolder(docs, folder, c.f)
			if !slices.Equal(got, want) {
				t.Errorf("%s in folder %d:\n got %v\nwant %v", c.name, folder, got, want)
			}
			if len(want) > 0 && len(want) < len(refFolder(docs, folder, func(*Doc) bool { return true })) {
				nonEmpty++
			}
		}
	}
	// The conditions must discriminate, or the test proves nothing.
	if nonEmpty < 300 {
		t.Errorf("only %d selective results", nonEmpty)
	}
}

func TestFolderScope(t *testing.T) {
	docs := testDocs()
	ix := openTestIndex(t, docs)
	// Message 1 is in folder 1 as UID 1000 and in folder 2 as UID 5.
	d := docs[0]
	if len(d.Members) != 2 || d.Members[0].UID == d.Members[1].UID {
		t.Fatalf("test data: %v", d.Members)
	}
	for _, m := range d.Members {
		got, err := ix.SearchFolder(context.Background(), m.Folder, MIDs(d.MID))
		if err != nil || !slices.Equal(got, []uint32{m.UID}) {
			t.Errorf("folder %d: got %v, %v; want [%d]", m.Folder, got, err, m.UID)
		}
	}
}

// refSortKey computes the sort keys by hand.
func refSortKey(d *Doc, field string) any {
	switch field {
	case SortReceived:
		return refTime(d.Received)
	case SortSent:
		if d.Sent.IsZero() {
			return int64(-1 << 62)
		}
		return refTime(d.Sent)
	case SortSize:
		return d.Size
	case SortFrom:
		if d.From[0].Name != "" {
			return strings.ToLower(d.From[0].Name)
		}
		return strings.ToLower(d.From[0].Email)
	case SortSubject:
		s := d.Subject
		for {
			t := strings.TrimSpace(s)
			if strings.HasPrefix(t, "[") {
				t = t[strings.Index(t, "]")+1:]
			}
			t = strings.TrimSpace(t)
			for _, p := range []string{"re:", "fwd:", "aw:"} {
				if strings.HasPrefix(strings.ToLower(t), p) {
					t = t[len(p):]
				}
			}
			if t == s {
				return strings.ToLower(strings.TrimSpace(s))
			}
			s = t
		}
	}
	panic(field)
}

func compareAny(a, b any) int {
	switch a := a.(type) {
	case int64:
		return int(min(max(a-b.(int64), -1), 1))
	case string:
		return strings.Compare(a, b.(string))
	}
	panic("type")
}

func TestFind(t *testing.T) {
	docs := testDocs()
	ix := openTestIndex(t, docs)
	ctx := context.Background()
	sorts := [][]Sort{
		nil,
		{{Field: SortReceived}},
		{{Field: SortReceived, Desc: true}},
		{{Field: SortSent}},
		{{Field: SortSent, Desc: true}},
		{{Field: SortSize}},
		{{Field: SortSize, Desc: true}, {Field: SortReceived}},
		{{Field: SortFrom}},
		{{Field: SortFrom, Desc: true}, {Field: SortSubject}},
		{{Field: SortSubject}},
		{{Field: SortSubject, Desc: true}},
	}
	conds := []cond{
		{"all", All(), func(*Doc) bool { return true }},
		cText(FieldBody, "budget"),
		cNot(cText(FieldFrom, "alice")),
		cOr(cText(FieldSubject, "report"), HasAttachmentCond(true)),
	}
	for _, folders := range [][]uint64{{1}, {1, 2}, {3, 2, 1}, {2, 2}, {9}} {
		for _, c := range conds {
			var want []*Doc
			for i := range docs {
				if c.f(&docs[i]) && slices.ContainsFunc(docs[i].Members, func(m Member) bool { return slices.Contains(folders, m.Folder) }) {
					want = append(want, &docs[i])
				}
			}
			for _, sort := range sorts {
				spec := sort
				if spec == nil {
					spec = []Sort{{Field: SortReceived, Desc: true}}
				}
				slices.SortStableFunc(want, func(a, b *Doc) int {
					for _, s := range spec {
						c := compareAny(refSortKey(a, s.Field), refSortKey(b, s.Field))
						if s.Desc {
							c = -c
						}
						if c != 0 {
							return c
						}
					}
					return int(min(max(int64(a.MID)-int64(b.MID), -1), 1))
				})
				var wantMIDs []uint64
				for _, d := range want {
					wantMIDs = append(wantMIDs, d.MID)
				}
				for _, page := range [][2]int{{0, -1}, {0, 5}, {5, 5}, {3, 1}, {0, 0}, {len(want) - 2, 10}, {len(want), 5}, {len(want) + 3, 5}} {
					offset, limit := page[0], page[1]
					got, total, err := ix.Find(ctx, folders, c.q, sort, offset, limit)
					if err != nil {
						t.Fatal(err)
					}
					lo := min(max(offset, 0), len(wantMIDs))
					hi := len(wantMIDs)
					if limit >= 0 {
						hi = min(lo+limit, hi)
					}
					if total != len(wantMIDs) || !slices.Equal(got, wantMIDs[lo:hi]) {
						t.Errorf("find %v %s sort %v page %v:\n got %v (%d)\nwant %v (%d)", folders, c.name, sort, page, got, total, wantMIDs[lo:hi], len(wantMIDs))
					}
				}
			}
		}
	}
	if _, _, err := ix.Find(ctx, []uint64{1}, All(), []Sort{{Field: "color"}}, 0, 10); err == nil {
		t.Error("unknown sort field accepted")
	}
	if mids, total, err := ix.Find(ctx, nil, All(), nil, 0, 10); err != nil || mids != nil || total != 0 {
		t.Errorf("no folders: %v %d %v", mids, total, err)
	}
}

func TestReplaceDelete(t *testing.T) {
	docs := testDocs()
	ix := openTestIndex(t, docs)
	ctx := context.Background()
	count := func() uint64 {
		n, err := ix.Count()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != uint64(len(docs)) {
		t.Fatalf("count %d, want %d", n, len(docs))
	}
	// Message 2 gets a membership in folder 3 and a new subject.
	d := docs[1]
	if slices.ContainsFunc(d.Members, func(m Member) bool { return m.Folder == 3 }) {
		t.Fatal("test data: already in folder 3")
	}
	d.Members = append(slices.Clone(d.Members), Member{Folder: 3, UID: 4242})
	d.Subject = "omega zeta"
	// Both versions in one batch: the last one counts.
	old := docs[1]
	old.Subject = "should not be indexed"
	if err := ix.Put(ctx, []Doc{old, d}, 3); err != nil {
		t.Fatal(err)
	}
	docs[1] = d
	if n := count(); n != uint64(len(docs)) {
		t.Errorf("count after replace %d, want %d", n, len(docs))
	}
	for _, c := range []cond{cText(FieldSubject, "omega"), cText(FieldSubject, testSubjects[1]), cText(FieldSubject, "indexed"), {"all", All(), func(*Doc) bool { return true }}} {
		for folder := uint64(1); folder <= 3; folder++ {
			got, err := ix.SearchFolder(ctx, folder, c.q)
			if want := refFolder(docs, folder, c.f); err != nil || !slices.Equal(got, want) {
				t.Errorf("after replace, %s in %d: got %v %v, want %v", c.name, folder, got, err, want)
			}
		}
	}
	if got, _ := ix.SearchFolder(ctx, 3, MIDs(2)); !slices.Equal(got, []uint32{4242}) {
		t.Errorf("new membership: %v", got)
	}

	if err := ix.Delete(ctx, []uint64{2, 5, 12345}); err != nil {
		t.Fatal(err)
	}
	docs = slices.DeleteFunc(docs, func(d Doc) bool { return d.MID == 2 || d.MID == 5 })
	if n := count(); n != uint64(len(docs)) {
		t.Errorf("count after delete %d, want %d", n, len(docs))
	}
	for _, c := range testConds()[:40] {
		for folder := uint64(1); folder <= 3; folder++ {
			got, err := ix.SearchFolder(ctx, folder, c.q)
			if want := refFolder(docs, folder, c.f); err != nil || !slices.Equal(got, want) {
				t.Errorf("after delete, %s in %d: got %v %v, want %v", c.name, folder, got, err, want)
			}
		}
	}
}

func TestWatermarkReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	docs := testDocs()
	ix, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Watermark() != 0 {
		t.Errorf("new index watermark %d", ix.Watermark())
	}
	if err := ix.Put(ctx, docs, 4711); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, nil); err == nil {
		t.Error("second Open of a locked directory succeeded")
	}
	want, err := ix.SearchFolder(ctx, 1, Text(FieldBody, "budget"))
	if err != nil || len(want) == 0 {
		t.Fatal(want, err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.SearchFolder(ctx, 1, All()); err == nil {
		t.Error("search after Close succeeded")
	}

	ix, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Watermark() != 4711 {
		t.Errorf("watermark after reopen %d, want 4711", ix.Watermark())
	}
	if n, err := ix.Count(); err != nil || n != uint64(len(docs)) {
		t.Errorf("count after reopen %d %v", n, err)
	}
	if got, err := ix.SearchFolder(ctx, 1, Text(FieldBody, "budget")); err != nil || !slices.Equal(got, want) {
		t.Errorf("after reopen: %v %v, want %v", got, err, want)
	}
	if err := ix.Put(ctx, nil, 4712); err != nil || ix.Watermark() != 4712 {
		t.Errorf("empty put: %v, watermark %d", err, ix.Watermark())
	}
	ix.Close()

	// A damaged watermark reads as 0: the caller re-feeds everything.
	if err := writeFile(dir+"/"+watermarkFile, "garbage!garbage!"); err != nil {
		t.Fatal(err)
	}
	ix, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if ix.Watermark() != 0 {
		t.Errorf("damaged watermark read as %d", ix.Watermark())
	}
}

func TestContextCanceled(t *testing.T) {
	ix := openTestIndex(t, testDocs())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ix.SearchFolder(ctx, 1, All()); err == nil {
		t.Error("search with canceled context succeeded")
	}
	if err := ix.Put(ctx, testDocs()[:1], 9); err == nil {
		t.Error("put with canceled context succeeded")
	}
}

// TestPrefixCap: a prefix standing for more than maxExpansion terms matches
// whole words only.
func TestPrefixCap(t *testing.T) {
	var many strings.Builder
	for i := range maxExpansion + 10 {
		fmt.Fprintf(&many, "zq%04d ", i)
	}
	docs := []Doc{
		{MID: 1, Members: []Member{{1, 1}}, Body: many.String()},
		{MID: 2, Members: []Member{{1, 2}}, Body: "zq"},
		{MID: 3, Members: []Member{{1, 3}}, Body: "zqx1"},
	}
	ix := openTestIndex(t, docs)
	for _, tc := range []struct {
		s    string
		want []uint32
	}{
		{"zq", []uint32{2}},         // over the cap: whole word
		{"zqx", []uint32{3}},        // prefix
		{"zq000", []uint32{1}},      // 10 terms
		{"zq1", []uint32{1}},        // 34 terms
		{"zq0001 zq0", []uint32{1}}, // 1000 terms
		{"zq zq0", []uint32{}},      // whole word zq and prefix zq0 in one body: none
		{"zq0001 zq", []uint32{}},   // the last word over the cap: whole word
		{"zqx1 zq", []uint32{}},     // same
		{"zqx1 zqx", []uint32{3}},   // prefix
		{"zq0001 zq0002", []uint32{1}},
	} {
		got, err := ix.SearchFolder(context.Background(), 1, Text(FieldBody, tc.s))
		if err != nil || !slices.Equal(got, tc.want) && len(got)+len(tc.want) > 0 {
			t.Errorf("%q: %v %v, want %v", tc.s, got, err, tc.want)
		}
	}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

// TestConcurrent searches while batches go in: every search sees whole
// batches, and the race detector watches.
func TestConcurrent(t *testing.T) {
	docs := testDocs()
	ix, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ctx := context.Background()
	done := make(chan error)
	go func() {
		for i := 0; i < len(docs); i += 10 {
			if err := ix.Put(ctx, docs[i:i+10], uint64(i+10)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var werr error
	for running := true; running; {
		select {
		case werr = <-done:
			running = false
		default:
		}
		mids, total, err := ix.Find(ctx, []uint64{1, 2, 3}, Text(FieldText, "budget"), nil, 0, 5)
		if err != nil || len(mids) > 5 || total < len(mids) {
			t.Fatalf("find while writing: %v %d %v", mids, total, err)
		}
		if n, err := ix.Count(); err != nil || n%10 != 0 {
			t.Fatalf("count %d while writing batches of 10: %v", n, err)
		}
		if _, err := ix.SearchFolder(ctx, 1, Not(Text(FieldBody, "report"))); err != nil {
			t.Fatal(err)
		}
	}
	if werr != nil {
		t.Fatal(werr)
	}
	if ix.Watermark() != uint64(len(docs)) {
		t.Errorf("watermark %d", ix.Watermark())
	}
}

// TestDocValuesManyChunks searches a segment of several doc value chunks
// (1,024 documents each) again and again: the first search fills the chunk
// cache (third_party/ice), the later ones read from it.
func TestDocValuesManyChunks(t *testing.T) {
	const n = 5000
	docs := make([]Doc, n)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range docs {
		mid := uint64(i + 1)
		body := "common"
		if mid%3 == 0 {
			body += " third"
		}
		docs[i] = Doc{MID: mid, Members: []Member{{Folder: 1, UID: uint32(mid)}, {Folder: 2, UID: uint32(n + 1 - mid)}},
			Body: body, Received: base.Add(time.Duration(i) * time.Minute), Size: int64(1000 + i)}
	}
	ix, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ctx := context.Background()
	if err := ix.Put(ctx, docs, 1); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		for _, folder := range []uint64{1, 2} {
			uids, err := ix.SearchFolder(ctx, folder, Text(FieldBody, "third"))
			if err != nil {
				t.Fatal(err)
			}
			var want []uint32
			for _, d := range docs {
				if d.MID%3 == 0 {
					want = append(want, d.Members[folder-1].UID)
				}
			}
			slices.Sort(want)
			if !slices.Equal(uids, want) {
				t.Fatalf("round %d folder %d: %d UIDs, want %d", round, folder, len(uids), len(want))
			}
		}
		mids, total, err := ix.Find(ctx, []uint64{1}, SizeRange(2000, 3000), []Sort{{Field: SortReceived, Desc: true}}, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		if total != 1000 || len(mids) != 1000 || mids[0] != 2000 || mids[999] != 1001 {
			t.Fatalf("round %d: sizes 2000..2999 newest first: total %d, %d mids, first %v", round, total, len(mids), mids[:min(3, len(mids))])
		}
	}
}

// TestPauseResume: a paused index writes nothing (its directory does not
// change) and refuses writes, searches still answer from the files, and
// after Resume writes go on. Rewind sets the watermark back durably.
func TestPauseResume(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	docs := testDocs()
	ix, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	half := len(docs) / 2
	if err := ix.Put(ctx, docs[:half], 1); err != nil {
		t.Fatal(err)
	}
	want, err := ix.SearchFolder(ctx, 1, Text(FieldBody, "budget"))
	if err != nil || len(want) == 0 {
		t.Fatal(want, err)
	}
	if err := ix.Pause(); err != nil || !ix.Paused() {
		t.Fatalf("pause: %v", err)
	}
	listing := func() []string {
		var names []string
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				info, _ := d.Info()
				names = append(names, fmt.Sprintf("%s %d", p, info.Size()))
			}
			return nil
		})
		return names
	}
	files := listing()
	if err := ix.Put(ctx, docs[half:], 2); !errors.Is(err, ErrPaused) {
		t.Fatalf("put while paused: %v, want ErrPaused", err)
	}
	if err := ix.Put(ctx, nil, 3); !errors.Is(err, ErrPaused) || ix.Watermark() != 1 {
		t.Fatalf("empty put while paused: %v, watermark %d", err, ix.Watermark())
	}
	if got, err := ix.SearchFolder(ctx, 1, Text(FieldBody, "budget")); err != nil || !slices.Equal(got, want) {
		t.Fatalf("search while paused: %v %v, want %v", got, err, want)
	}
	if n, err := ix.Count(); err != nil || n != uint64(half) {
		t.Fatalf("count while paused: %d %v", n, err)
	}
	if now := listing(); !slices.Equal(now, files) {
		t.Fatalf("a paused index wrote:\n%v\n%v", files, now)
	}
	if err := ix.Resume(); err != nil || ix.Paused() {
		t.Fatalf("resume: %v", err)
	}
	if err := ix.Put(ctx, docs[half:], 2); err != nil {
		t.Fatal(err)
	}
	if n, err := ix.Count(); err != nil || n != uint64(len(docs)) {
		t.Fatalf("count after resume: %d %v", n, err)
	}
	if err := ix.Rewind(0); err != nil || ix.Watermark() != 0 {
		t.Fatalf("rewind: %v, watermark %d", err, ix.Watermark())
	}
	if wm, err := readWatermark(filepath.Join(dir, watermarkFile)); err != nil || wm != 0 {
		t.Fatalf("rewound watermark on disk: %d %v", wm, err)
	}
}
