package index

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/blugelabs/bluge"
	"github.com/blugelabs/bluge/analysis"
)

const (
	maxPreview    = 255 // RFC 8621 SearchSnippet preview limit, in octets
	previewBefore = 40  // bytes of context before the first match
)

// Snippet returns the message's subject and a fragment of body with the words
// q searches for wrapped in <mark></mark>, HTML-escaped (RFC 8621
// SearchSnippet). Each is "" when q matches nothing in it. The subject comes
// from the index, the body from the caller. ErrNotFound: mid is not indexed.
func (ix *Index) Snippet(ctx context.Context, mid uint64, q Query, body string) (subject, preview string, err error) {
	stored, err := ix.storedSubject(ctx, mid)
	if err != nil {
		return "", "", err
	}
	subjectPhrases, bodyPhrases := ix.highlightPhrases(q, false, nil, nil)
	if len(subjectPhrases) > 0 {
		if spans := matchSpans(ix.an.words, stored, subjectPhrases, true); len(spans) > 0 {
			subject = markup(stored, 0, spans, -1)
		}
	}
	if len(bodyPhrases) > 0 {
		body = truncate(body, MaxBody)
		if spans := matchSpans(ix.an.words, body, bodyPhrases, false); len(spans) > 0 {
			preview = markup(body, previewStart(body, spans[0].start), spans, maxPreview)
		}
	}
	return subject, preview, nil
}

// highlightPhrases collects the word sequences of q's positive text
// conditions on the subject and the body.
func (ix *Index) highlightPhrases(q Query, negated bool, subject, body [][]string) ([][]string, [][]string) {
	switch q.kind {
	case kindAnd, kindOr:
		for _, s := range q.sub {
			subject, body = ix.highlightPhrases(s, negated, subject, body)
		}
	case kindNot:
		subject, body = ix.highlightPhrases(q.sub[0], !negated, subject, body)
	case kindText, kindHeader:
		if negated {
			break
		}
		field := q.field
		if q.kind == kindHeader {
			if q.name != "subject" {
				break
			}
			field = FieldSubject
		}
		ws := words(ix.an.words, q.text)
		if len(ws) == 0 {
			break
		}
		if field == FieldSubject || field == FieldText {
			subject = append(subject, ws)
		}
		if field == FieldBody || field == FieldText {
			body = append(body, ws)
		}
	}
	return subject, body
}

// storedSubject reads the subject stored with mid.
func (ix *Index) storedSubject(ctx context.Context, mid uint64) (subject string, err error) {
	defer ix.recoverPanic(&err, "snippet")
	r, err := ix.reader()
	if err != nil {
		return "", err
	}
	defer r.Close()
	req := bluge.NewTopNSearch(1, termsQuery{field: fieldID, terms: []string{string(docID(mid))}})
	it, err := r.Search(ctx, req)
	if err != nil {
		return "", fmt.Errorf("snippet of %d: %w", mid, err)
	}
	hit, err := it.Next()
	if err != nil {
		return "", fmt.Errorf("snippet of %d: %w", mid, err)
	}
	if hit == nil {
		return "", fmt.Errorf("snippet of %d: %w", mid, ErrNotFound)
	}
	err = hit.VisitStoredFields(func(field string, value []byte) bool {
		if field == fieldSubject {
			subject = string(value)
			return false
		}
		return true
	})
	if err != nil {
		return "", fmt.Errorf("snippet of %d: %w", mid, err)
	}
	return subject, nil
}

type span struct{ start, end int }

// matchSpans finds the byte ranges of text where the word sequences match
// by the rules of the index: the last word as a prefix, the others whole; in
// this order and adjacent, or, when !adjacent (the body), anywhere but all
// of them. The spans are sorted and do not overlap.
func matchSpans(a *analysis.Analyzer, text string, phrases [][]string, adjacent bool) []span {
	ts := a.Analyze([]byte(text))
	var spans []span
	for _, p := range phrases {
		if adjacent {
			for i := range ts {
				if phraseAt(ts[i:], p) {
					spans = append(spans, span{ts[i].Start, ts[i+len(p)-1].End})
				}
			}
			continue
		}
		var found []span
		for k := range p {
			n := len(found)
			for _, t := range ts {
				if termMatches(t.Term, p[k], k == len(p)-1) {
					found = append(found, span{t.Start, t.End})
				}
			}
			if len(found) == n {
				found = nil // a word is missing: the body does not match
				break
			}
		}
		spans = append(spans, found...)
	}
	slices.SortFunc(spans, func(x, y span) int { return x.start - y.start })
	merged := spans[:0]
	for _, s := range spans {
		if n := len(merged); n > 0 && s.start <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, s.end)
		} else {
			merged = append(merged, s)
		}
	}
	return merged
}

func phraseAt(ts analysis.TokenStream, p []string) bool {
	if len(p) > len(ts) {
		return false
	}
	for k, w := range p {
		if !termMatches(ts[k].Term, w, k == len(p)-1) {
			return false
		}
	}
	return true
}

// termMatches tells whether an indexed term matches search word w, or
// starts with it when prefix.
func termMatches(term []byte, w string, prefix bool) bool {
	if prefix && len(term) > len(w) {
		term = term[:len(w)]
	}
	return string(term) == w
}

// previewStart backs up from the first match to show some context, more
// when the text after the match leaves room, starting at a word.
func previewStart(text string, match int) int {
	back := max(previewBefore, maxPreview-(len(text)-match))
	if match <= back {
		return 0
	}
	start := match - back
	for start < match && !utf8.RuneStart(text[start]) {
		start++
	}
	if sp := strings.IndexFunc(text[start:match], unicode.IsSpace); sp >= 0 {
		start += sp
	}
	return start
}

// markup HTML-escapes text from start, collapsing white space, with the
// spans in <mark></mark>, stopping before limit bytes (limit < 0: no limit).
func markup(text string, start int, spans []span, limit int) string {
	const open, close = "<mark>", "</mark>"
	var b []byte
	fits := func(n int) bool { return limit < 0 || len(b)+n <= limit }
	pos := start
	for _, s := range spans {
		if s.end <= pos {
			continue
		}
		var full bool
		if b, pos, full = appendEscaped(b, text, pos, s.start, limit); full {
			break
		}
		if !fits(len(open) + len(close) + 1) {
			break
		}
		b = append(b, open...)
		inner := limit
		if limit >= 0 {
			inner = limit - len(close)
		}
		b, pos, full = appendEscaped(b, text, pos, s.end, inner)
		b = append(b, close...)
		if full {
			break
		}
	}
	b, _, _ = appendEscaped(b, text, pos, len(text), limit)
	return strings.TrimRight(string(b), " ")
}

// appendEscaped appends text[pos:end], escaped and with white space runs
// collapsed to one space, as long as the result stays within limit bytes
// (limit < 0: no limit). It returns the new position and whether the limit
// stopped it.
func appendEscaped(b []byte, text string, pos, end, limit int) ([]byte, int, bool) {
	for pos < end {
		r, size := utf8.DecodeRuneInString(text[pos:end])
		var piece string
		switch {
		case unicode.IsSpace(r):
			// Spans start and end at words, so a mark never begins with
			// white space.
			if len(b) == 0 || b[len(b)-1] == ' ' {
				pos += size
				continue
			}
			piece = " "
		case r == '&':
			piece = "&amp;"
		case r == '<':
			piece = "&lt;"
		case r == '>':
			piece = "&gt;"
		case r == utf8.RuneError:
			piece = "\uFFFD"
		default:
			piece = text[pos : pos+size]
		}
		if limit >= 0 && len(b)+len(piece) > limit {
			return b, pos, true
		}
		b = append(b, piece...)
		pos += size
	}
	return b, pos, false
}
