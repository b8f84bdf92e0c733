package index

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/blugelabs/bluge"
)

// Field names what a Text query searches.
type Field int

// Searchable fields.
const (
	FieldFrom Field = iota + 1
	FieldTo         // also envelope recipients
	FieldCc
	FieldBcc // also envelope recipients
	FieldSubject
	FieldBody
	FieldText // all of the above, attachment names and header values
	FieldAttachment
)

func (f Field) String() string {
	switch f {
	case FieldFrom:
		return "from"
	case FieldTo:
		return "to"
	case FieldCc:
		return "cc"
	case FieldBcc:
		return "bcc"
	case FieldSubject:
		return "subject"
	case FieldBody:
		return "body"
	case FieldText:
		return "text"
	case FieldAttachment:
		return "attachment"
	}
	return "field(" + strconv.Itoa(int(f)) + ")"
}

type queryKind uint8

const (
	kindAll queryKind = iota
	kindAnd
	kindOr
	kindNot
	kindText
	kindHeader
	kindReceived
	kindSent
	kindSize
	kindHasAtt
	kindMIDs
	kindSubstring
	kindSentDay
)

// Query is a protocol-neutral search condition; build it with the
// constructors below. The zero Query matches everything.
type Query struct {
	kind     queryKind
	field    Field
	name     string // header name, lower case
	text     string
	from, to int64 // ranges: seconds or bytes, noBound when open
	flag     bool
	mids     []uint64
	sub      []Query
}

const noBound = math.MinInt64

// All matches every message.
func All() Query { return Query{kind: kindAll} }

// And matches messages matching all of q; And() matches everything.
func And(q ...Query) Query { return Query{kind: kindAnd, sub: q} }

// Or matches messages matching any of q; Or() matches nothing.
func Or(q ...Query) Query { return Query{kind: kindOr, sub: q} }

// Not matches messages not matching q.
func Not(q Query) Query { return Query{kind: kindNot, sub: []Query{q}} }

// Text matches s in field. Address fields: each word of s must match the
// start of an address term (see addressAnalyzer); a word with "@" must be a
// whole address, or, starting with "@", a domain. Subject, attachment names
// and header values: the words of s in this order, the last one possibly the
// start of an indexed word. Body: the same words, anywhere in it. A string
// without words matches everything.
func Text(field Field, s string) Query { return Query{kind: kindText, field: field, text: s} }

// Substring matches s as IMAP SEARCH does (RFC 9051 6.4.4): inside the
// words of field, case-insensitively. One word matches anywhere inside an
// indexed word ("echnung" finds "Rechnungsnummer"); several words match as
// a phrase whose first word may end an indexed word and whose last word may
// start one, other words whole. What lies between the words (white space,
// punctuation) is not compared. In address fields each word must be inside
// one of the field's terms (see addressAnalyzer). A string without words
// matches everything.
func Substring(field Field, s string) Query {
	return Query{kind: kindSubstring, field: field, text: s}
}

// Header matches header name containing value, as Text does on the words
// of the value. From, To, Cc, Bcc and Subject search their fields; Message-ID,
// In-Reply-To, References and Resent-Message-ID compare whole message ids
// (case-insensitive, angle brackets optional). An empty value matches when
// the header is present.
func Header(name, value string) Query {
	return Query{kind: kindHeader, name: strings.ToLower(strings.TrimSpace(name)), text: value}
}

// SentRange matches a Date: header in [from, to); a zero time leaves that end
// open. Messages without a date never match. Resolution is one second.
func SentRange(from, to time.Time) Query {
	f, t := timeBounds(from, to)
	return Query{kind: kindSent, from: f, to: t}
}

// SentDays matches a Date: header whose calendar day, as written in its
// own time zone, is in [since, before) (IMAP's SENTSINCE, SENTBEFORE and
// SENTON); only the dates of since and before count, and a zero time
// leaves that end open. Messages without a date never match.
func SentDays(since, before time.Time) Query {
	q := Query{kind: kindSentDay, from: noBound, to: noBound}
	if !since.IsZero() {
		q.from = civilDay(since).Unix()
	}
	if !before.IsZero() {
		q.to = civilDay(before).Unix()
	}
	return q
}

// ReceivedRange matches an arrival time in [from, to), as SentRange.
func ReceivedRange(from, to time.Time) Query {
	f, t := timeBounds(from, to)
	return Query{kind: kindReceived, from: f, to: t}
}

// timeBounds converts [from, to) to seconds; an end outside the indexed
// range of dates is open, as every indexed date is clamped into it.
func timeBounds(from, to time.Time) (int64, int64) {
	f, t := int64(noBound), int64(noBound)
	if !from.IsZero() && from.After(minTime) {
		f = min(from.Unix(), maxTime.Unix()+1)
	}
	if !to.IsZero() && !to.After(maxTime) {
		t = max(to.Unix(), minTime.Unix())
	}
	return f, t
}

// SizeRange matches min <= size < max; -1 leaves that end open.
func SizeRange(min, max int64) Query {
	q := Query{kind: kindSize, from: noBound, to: noBound}
	if min >= 0 {
		q.from = min
	}
	if max >= 0 {
		q.to = max
	}
	return q
}

// HasAttachment matches messages with (or without) an attachment.
func HasAttachment(b bool) Query { return Query{kind: kindHasAtt, flag: b} }

// MIDs matches the given messages.
func MIDs(mids ...uint64) Query { return Query{kind: kindMIDs, mids: mids} }

// compiled is a query ready for bluge. Negated clauses stay separate so an
// AND can subtract them instead of running "everything minus x".
type compiled struct {
	all, none bool
	q         bluge.Query // when neg, the query to exclude
	neg       bool
}

// compile translates q; it never hands bluge a MatchNone inside a boolean
// query, which bluge would drop and so turn "none AND NOT x" into "NOT x".
func (ix *Index) compile(q Query) compiled {
	switch q.kind {
	case kindAll:
		return compiled{all: true}
	case kindAnd:
		parts := make([]compiled, 0, len(q.sub))
		for _, s := range q.sub {
			c := ix.compile(s)
			if c.none {
				return compiled{none: true}
			}
			if !c.all {
				parts = append(parts, c)
			}
		}
		return and(parts)
	case kindOr:
		parts := make([]compiled, 0, len(q.sub))
		for _, s := range q.sub {
			c := ix.compile(s)
			if c.all {
				return compiled{all: true}
			}
			if !c.none {
				parts = append(parts, c)
			}
		}
		switch len(parts) {
		case 0:
			return compiled{none: true}
		case 1:
			return parts[0]
		}
		b := bluge.NewBooleanQuery().SetMinShould(1)
		for _, p := range parts {
			b.AddShould(p.positive())
		}
		return compiled{q: b}
	case kindNot:
		c := ix.compile(q.sub[0])
		switch {
		case c.all:
			return compiled{none: true}
		case c.none:
			return compiled{all: true}
		}
		return compiled{q: c.q, neg: !c.neg}
	case kindText:
		return ix.compileText(q.field, q.text)
	case kindSubstring:
		return ix.compileSubstring(q.field, q.text)
	case kindSentDay:
		from, to := minTime, maxTime.AddDate(0, 0, 1)
		if q.from != noBound {
			from = maxT(from, time.Unix(q.from, 0).UTC())
		}
		if q.to != noBound {
			to = minT(to, time.Unix(q.to, 0).UTC())
		}
		if !from.Before(to) {
			return compiled{none: true}
		}
		return compiled{q: termsQuery{field: fieldSentDay, terms: dayRangeTerms(civilDay(from), civilDay(to))}}
	case kindHeader:
		return ix.compileHeader(q.name, q.text)
	case kindReceived:
		return numericRange(fieldReceived, q.from, q.to)
	case kindSent:
		// Even unbounded, only messages with a date match.
		from, to := q.from, q.to
		if from == noBound {
			from = minTime.Unix()
		}
		if to == noBound {
			to = maxTime.Unix() + 1
		}
		if from >= to {
			return compiled{none: true}
		}
		// The packed meta holds the sent time +1 in seconds since minTime.
		return compiled{q: metaRangeQuery{sent: true, lo: uint64(from-minTime.Unix()) + 1, hi: uint64(to-minTime.Unix()) + 1}}
	case kindSize:
		lo, hi := uint64(0), uint64(math.MaxUint64)
		if q.from != noBound {
			lo = uint64(max(q.from, 0))
		}
		if q.to != noBound {
			if q.to <= 0 {
				return compiled{none: true}
			}
			hi = uint64(q.to)
		}
		switch {
		case lo >= hi:
			return compiled{none: true}
		case lo == 0 && hi == math.MaxUint64:
			return compiled{all: true}
		}
		return compiled{q: metaRangeQuery{lo: lo, hi: hi}}
	case kindHasAtt:
		v := "0"
		if q.flag {
			v = "1"
		}
		return compiled{q: termsQuery{field: fieldHasAtt, terms: []string{v}}}
	case kindMIDs:
		if len(q.mids) == 0 {
			return compiled{none: true}
		}
		terms := make([]string, len(q.mids))
		for i, m := range q.mids {
			terms[i] = strconv.FormatUint(m, 10)
		}
		return compiled{q: termsQuery{field: fieldID, terms: terms}}
	}
	return compiled{none: true}
}

// and combines parts that are neither all nor none.
func and(parts []compiled) compiled {
	switch len(parts) {
	case 0:
		return compiled{all: true}
	case 1:
		return parts[0]
	}
	b := bluge.NewBooleanQuery()
	var negs []bluge.Query
	for _, p := range parts {
		if p.neg {
			negs = append(negs, p.q)
		} else {
			b.AddMust(p.q)
		}
	}
	if len(negs) == len(parts) {
		// NOT a AND NOT b = NOT (a OR b): stays subtractable.
		return compiled{q: bluge.NewBooleanQuery().SetMinShould(1).AddShould(negs...), neg: true}
	}
	return compiled{q: b.AddMustNot(negs...)}
}

// positive returns a query matching what c matches.
func (c compiled) positive() bluge.Query {
	if c.neg {
		return bluge.NewBooleanQuery().AddMustNot(c.q)
	}
	return c.q
}

// scoped restricts c to the documents of scope.
func scoped(scope bluge.Query, c compiled) bluge.Query {
	switch {
	case c.all:
		return scope
	case c.neg:
		return bluge.NewBooleanQuery().AddMust(scope).AddMustNot(c.q)
	}
	return bluge.NewBooleanQuery().AddMust(scope, c.q)
}

func numericRange(field string, from, to int64) compiled {
	if from == noBound && to == noBound {
		return compiled{all: true}
	}
	lo, hi := bluge.MinNumeric, bluge.MaxNumeric
	if from != noBound {
		lo = float64(from)
	}
	if to != noBound {
		hi = float64(to)
	}
	if lo >= hi {
		return compiled{none: true}
	}
	return compiled{q: bluge.NewNumericRangeQuery(lo, hi).SetField(field)}
}

func (ix *Index) compileText(field Field, s string) compiled {
	switch field {
	case FieldFrom:
		return ix.addressQuery(s, fieldFrom)
	case FieldTo:
		return ix.addressQuery(s, fieldTo, fieldRcpt)
	case FieldCc:
		return ix.addressQuery(s, fieldCc)
	case FieldBcc:
		return ix.addressQuery(s, fieldBcc, fieldRcpt)
	case FieldSubject:
		return ix.wordQuery(s, fieldSubject)
	case FieldBody:
		return ix.wordQuery(s, fieldBody)
	case FieldAttachment:
		return ix.wordQuery(s, fieldAttachment)
	case FieldText:
		addr := ix.addressQuery(s, fieldFrom, fieldTo, fieldCc, fieldBcc, fieldRcpt)
		if addr.all {
			return compiled{all: true}
		}
		text := ix.wordQuery(s, fieldSubject, fieldBody, fieldAttachment, fieldHeader)
		if text.all {
			return compiled{all: true}
		}
		return compiled{q: bluge.NewBooleanQuery().SetMinShould(1).AddShould(addr.q, text.q)}
	}
	return compiled{none: true}
}

// compileSubstring matches s inside the words of field, see Substring.
func (ix *Index) compileSubstring(field Field, s string) compiled {
	var fields []string
	var ws []string
	switch field {
	case FieldFrom:
		fields = []string{fieldFrom}
	case FieldTo:
		fields = []string{fieldTo, fieldRcpt}
	case FieldCc:
		fields = []string{fieldCc}
	case FieldBcc:
		fields = []string{fieldBcc, fieldRcpt}
	case FieldSubject:
		fields = []string{fieldSubject}
	case FieldBody:
		fields = []string{fieldBody}
	case FieldAttachment:
		fields = []string{fieldAttachment}
	case FieldText:
		fields = []string{fieldSubject, fieldBody, fieldAttachment, fieldHeader, fieldFrom, fieldTo, fieldCc, fieldBcc, fieldRcpt}
	default:
		return compiled{none: true}
	}
	if isAddressField(fields[0]) {
		ws = addressWords(s)
	} else {
		ws = words(ix.an.words, s)
	}
	if len(ws) == 0 {
		return compiled{all: true}
	}
	if field == FieldText {
		// Address terms are what addressWords makes of the search string.
		text := compiled{q: substringQuery{ix: ix, fields: fields[:4], words: ws}}
		aw := addressWords(s)
		if len(aw) == 0 {
			return text
		}
		addr := substringQuery{ix: ix, fields: fields[4:], words: aw}
		return compiled{q: bluge.NewBooleanQuery().SetMinShould(1).AddShould(text.q, addr)}
	}
	return compiled{q: substringQuery{ix: ix, fields: fields, words: ws}}
}

// wordQuery matches the words of s in any of fields: as a phrase, except in
// the body, which has no positions (see doc.go), where all words must occur.
func (ix *Index) wordQuery(s string, fields ...string) compiled {
	terms := words(ix.an.words, s)
	if len(terms) == 0 {
		return compiled{all: true}
	}
	return anyField(fields, func(f string) bluge.Query {
		if f != fieldBody || len(terms) == 1 {
			return phraseQuery{ix: ix, field: f, terms: terms}
		}
		b := bluge.NewBooleanQuery()
		for _, t := range terms[:len(terms)-1] {
			b.AddMust(termsQuery{field: f, terms: []string{t}})
		}
		return b.AddMust(phraseQuery{ix: ix, field: f, terms: terms[len(terms)-1:]})
	})
}

// addressQuery matches every word of s in one of fields.
func (ix *Index) addressQuery(s string, fields ...string) compiled {
	ws := slices.DeleteFunc(addressWords(s), func(w string) bool { return w == "@" })
	if len(ws) == 0 {
		return compiled{all: true}
	}
	return anyField(fields, func(f string) bluge.Query {
		parts := make([]bluge.Query, len(ws))
		for i, w := range ws {
			if strings.Contains(w, "@") {
				// A whole address, or "@domain".
				parts[i] = termsQuery{field: f, terms: []string{w}}
			} else {
				parts[i] = phraseQuery{ix: ix, field: f, terms: []string{w}, address: true}
			}
		}
		if len(parts) == 1 {
			return parts[0]
		}
		return bluge.NewBooleanQuery().AddMust(parts...)
	})
}

func anyField(fields []string, one func(field string) bluge.Query) compiled {
	if len(fields) == 1 {
		return compiled{q: one(fields[0])}
	}
	b := bluge.NewBooleanQuery().SetMinShould(1)
	for _, f := range fields {
		b.AddShould(one(f))
	}
	return compiled{q: b}
}

func (ix *Index) compileHeader(name, value string) compiled {
	if name == "" {
		return compiled{none: true}
	}
	present := compiled{q: termsQuery{field: fieldHeaderName, terms: []string{name}}}
	if strings.TrimSpace(value) == "" {
		return present
	}
	switch name {
	case "from":
		return ix.compileText(FieldFrom, value)
	case "to":
		return ix.compileText(FieldTo, value)
	case "cc":
		return ix.compileText(FieldCc, value)
	case "bcc":
		return ix.compileText(FieldBcc, value)
	case "subject":
		return ix.compileText(FieldSubject, value)
	}
	if !HeaderValueIndexed(name) {
		return present
	}
	if isMsgIDHeader(name) {
		ids := msgIDs(value)
		if len(ids) == 0 {
			return present
		}
		parts := make([]compiled, len(ids))
		for i, id := range ids {
			parts[i] = compiled{q: termsQuery{field: fieldHeader, terms: []string{string(headerTerm(name, id))}}}
		}
		return and(parts)
	}
	ws := words(ix.an.words, value)
	if len(ws) == 0 {
		return present
	}
	for i, w := range ws {
		ws[i] = string(headerTerm(name, w))
	}
	return compiled{q: phraseQuery{ix: ix, field: fieldHeader, terms: ws}}
}

// civilDay is the calendar day of t as written, at 00:00 UTC.
func civilDay(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func minT(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxT(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// appendDayTerms appends the day terms of Date: t as written: its year,
// month and day, so that a range of days is a few terms (dayRangeTerms).
func appendDayTerms(b []byte, t time.Time) []byte {
	y, m, d := t.Date()
	b = append(b, 'y')
	b = appendPadded(b, y, 4)
	b = append(b, valueSep, 'm')
	b = appendPadded(b, y, 4)
	b = appendPadded(b, int(m), 2)
	b = append(b, valueSep, 'd')
	b = appendPadded(b, y, 4)
	b = appendPadded(b, int(m), 2)
	return appendPadded(b, d, 2)
}

func appendPadded(b []byte, v, width int) []byte {
	s := strconv.Itoa(v)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// dayRangeTerms covers the days [from, to) (UTC midnights) with whole
// years, then whole months, then days: at most a few dozen terms besides
// one per year.
func dayRangeTerms(from, to time.Time) []string {
	var terms []string
	for cur := from; cur.Before(to); {
		y, m, d := cur.Date()
		switch {
		case m == time.January && d == 1 && !cur.AddDate(1, 0, 0).After(to):
			terms = append(terms, string(appendPadded([]byte{'y'}, y, 4)))
			cur = cur.AddDate(1, 0, 0)
		case d == 1 && !cur.AddDate(0, 1, 0).After(to):
			terms = append(terms, string(appendPadded(appendPadded([]byte{'m'}, y, 4), int(m), 2)))
			cur = cur.AddDate(0, 1, 0)
		default:
			terms = append(terms, string(appendPadded(appendPadded(appendPadded([]byte{'d'}, y, 4), int(m), 2), d, 2)))
			cur = cur.AddDate(0, 0, 1)
		}
	}
	return terms
}
