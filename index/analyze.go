package index

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/blugelabs/bluge/analysis"
	"github.com/blugelabs/bluge/analysis/token"
	"golang.org/x/text/unicode/norm"
)

const (
	// maxTermBytes truncates longer tokens (base64 runs, hashes) at index and
	// query time alike, so they stay searchable by their beginning without
	// bloating the term dictionary.
	maxTermBytes = 128
	// maxMsgIDBytes is larger: message ids are matched whole, and long ones
	// often share a long common part.
	maxMsgIDBytes = 512
	// valueSep separates the values of a multi-valued field: one bluge field
	// per value would cost Document.Analyze a quadratic field scan.
	valueSep = '\x01'
	// nameSep joins a header name to each of its value's tokens, and an
	// address to its display name.
	nameSep = '\x00'
	// valueGap keeps phrases from spanning two values of one field.
	valueGap = 100
)

// normalizeFilter brings tokens to NFC (macOS writes NFD file names) and
// truncates them; ASCII tokens, the common case, are left untouched.
type normalizeFilter struct{}

func (normalizeFilter) Filter(ts analysis.TokenStream) analysis.TokenStream {
	for _, t := range ts {
		t.Term = normalizeTerm(t.Term)
	}
	return ts
}

func normalizeTerm(b []byte) []byte {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			if !norm.NFC.IsNormal(b) {
				b = norm.NFC.Bytes(b)
			}
			break
		}
	}
	return truncate(b, maxTermBytes)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate[S ~string | ~[]byte](s S, n int) S {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// newWordAnalyzer returns the analyzer of subject, body, attachment names and
// header values: Unicode word boundaries, lower case, NFC. No stemming and no
// stop words: IMAP asks for substrings, so "die" must find "die".
func newWordAnalyzer() *analysis.Analyzer {
	return &analysis.Analyzer{
		Tokenizer:    newWordTokenizer(),
		TokenFilters: []analysis.TokenFilter{token.NewLowerCaseFilter(), normalizeFilter{}},
	}
}

// words analyzes s into its normalized terms, as the index does.
func words(a *analysis.Analyzer, s string) []string {
	ts := a.Analyze([]byte(s))
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t.Term)
	}
	return out
}

// listAnalyzer analyzes every valueSep-separated part of its input with one,
// keeping offsets relative to the whole input and a position gap between
// parts.
type listAnalyzer struct {
	one func(part []byte) analysis.TokenStream
}

func (l listAnalyzer) Analyze(input []byte) analysis.TokenStream {
	var out analysis.TokenStream
	start := 0
	for start <= len(input) {
		end := bytes.IndexByte(input[start:], valueSep)
		if end < 0 {
			end = len(input)
		} else {
			end += start
		}
		ts := l.one(input[start:end])
		for i, t := range ts {
			t.Start += start
			t.End += start
			if i == 0 && len(out) > 0 {
				t.PositionIncr += valueGap
			}
		}
		out = append(out, ts...)
		start = end + 1
	}
	return out
}

// newListAnalyzer analyzes each part with a.
func newListAnalyzer(a *analysis.Analyzer) listAnalyzer {
	return listAnalyzer{one: func(part []byte) analysis.TokenStream {
		return a.Analyze(part)
	}}
}

// newKeywordListAnalyzer makes each non-empty part one term, as is.
func newKeywordListAnalyzer() listAnalyzer {
	return listAnalyzer{one: func(part []byte) analysis.TokenStream {
		if len(part) == 0 {
			return nil
		}
		return analysis.TokenStream{{Term: part, End: len(part), PositionIncr: 1, Type: analysis.AlphaNumeric}}
	}}
}

// addressAnalyzer turns one "email\x00display name" value into the terms an
// address search can hit:
//
//	full address        alice.smith+tag@mail.acme.example
//	local part          alice.smith+tag
//	local pieces        alice smith tag           (split on . _ - +)
//	domain suffixes     mail.acme.example acme.example example
//	                    @mail.acme.example @acme.example @example
//	name words          "Hans-Peter Müller" → hans-peter hans peter müller
//
// all lower case and NFC.
type addressAnalyzer struct {
	words *analysis.Analyzer
}

func newAddressAnalyzer() listAnalyzer {
	a := addressAnalyzer{words: newWordAnalyzer()}
	return listAnalyzer{one: a.analyzeOne}
}

func (a addressAnalyzer) analyzeOne(value []byte) analysis.TokenStream {
	email, name, _ := bytes.Cut(value, []byte{nameSep})
	var terms [][]byte
	add := func(t []byte) {
		if t = normalizeTerm(t); len(t) > 0 {
			terms = append(terms, t)
		}
	}
	full := bytes.ToLower(bytes.Trim(email, " \t\r\n<>\""))
	if len(full) > 0 {
		add(full)
		local, domain := full, []byte(nil)
		if at := bytes.LastIndexByte(full, '@'); at >= 0 {
			local, domain = full[:at], bytes.TrimRight(full[at+1:], ".")
		}
		if len(local) > 0 && len(local) < len(full) {
			add(local)
		}
		pieces := bytes.FieldsFunc(local, isLocalSep)
		if len(pieces) > 1 {
			for _, p := range pieces {
				add(p)
			}
		}
		for len(domain) > 0 {
			if domain[0] != '.' {
				add(domain)
				add(append([]byte{'@'}, domain...))
			}
			dot := bytes.IndexByte(domain, '.')
			if dot < 0 {
				break
			}
			domain = domain[dot+1:]
		}
	}
	if len(name) > 0 {
		for _, w := range addressWords(string(name)) {
			add([]byte(w))
		}
		// The analyzer lower-cases in place: give it a copy.
		for _, t := range a.words.Analyze(bytes.Clone(name)) {
			terms = append(terms, t.Term)
		}
	}
	if len(terms) == 0 {
		return nil
	}
	tokens := make([]analysis.Token, len(terms))
	ts := make(analysis.TokenStream, len(terms))
	for i, t := range terms {
		tokens[i] = analysis.Token{Term: t, End: len(value), PositionIncr: 1, Type: analysis.AlphaNumeric}
		ts[i] = &tokens[i]
	}
	return ts
}

func isLocalSep(r rune) bool { return r == '.' || r == '_' || r == '-' || r == '+' }

// addressWords splits an address search string, or a display name, into
// lower-case words: separated by white space and , ; < > " ( ) [ ] { }, with
// . : ' ! ? trimmed from their ends.
func addressWords(s string) []string {
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(`,;<>"()[]{}`, r)
	})
	out := fields[:0]
	for _, f := range fields {
		f = strings.Trim(f, ".:'!?")
		if f == "" {
			continue
		}
		if t := normalizeTerm([]byte(strings.ToLower(f))); len(t) > 0 {
			out = append(out, string(t))
		}
	}
	return out
}

// headerAnalyzer analyzes one "name\x00value" header. Every word is indexed
// twice at the same position: "name\x00word" for HEADER name searches and
// "word" for TEXT. Message-ID, In-Reply-To, References and Resent-Message-ID
// also get one "name\x00id" term per message id.
type headerAnalyzer struct {
	words *analysis.Analyzer
}

func newHeaderAnalyzer() listAnalyzer {
	h := headerAnalyzer{words: newWordAnalyzer()}
	return listAnalyzer{one: h.analyzeOne}
}

func (h headerAnalyzer) analyzeOne(part []byte) analysis.TokenStream {
	name, value, ok := bytes.Cut(part, []byte{nameSep})
	if !ok || len(name) == 0 {
		return nil
	}
	valueStart := len(name) + 1
	var out analysis.TokenStream
	if isMsgIDHeader(string(name)) {
		for _, id := range msgIDs(string(value)) {
			out = append(out, &analysis.Token{
				Term: headerTerm(string(name), id), Start: valueStart, End: len(part),
				PositionIncr: 1, Type: analysis.AlphaNumeric,
			})
		}
	}
	for _, t := range h.words.Analyze(bytes.Clone(value)) {
		t.Start += valueStart
		t.End += valueStart
		out = append(out, &analysis.Token{
			Term: headerTerm(string(name), string(t.Term)), Start: t.Start, End: t.End,
			PositionIncr: t.PositionIncr, Type: t.Type,
		}, &analysis.Token{
			Term: t.Term, Start: t.Start, End: t.End, PositionIncr: 0, Type: t.Type,
		})
	}
	return out
}

// headerTerm is the term of word w in header name (lower case).
func headerTerm(name, w string) []byte {
	b := make([]byte, 0, len(name)+1+len(w))
	b = append(b, name...)
	b = append(b, nameSep)
	return append(b, w...)
}

func isMsgIDHeader(lowerName string) bool {
	switch lowerName {
	case "message-id", "in-reply-to", "references", "resent-message-id":
		return true
	}
	return false
}

// msgIDs extracts the lower-case message ids of a header value or search
// string: every <...>, or the whole trimmed value when it has none.
func msgIDs(v string) []string {
	var ids []string
	rest := v
	for {
		open := strings.IndexByte(rest, '<')
		if open < 0 {
			break
		}
		end := strings.IndexByte(rest[open:], '>')
		if end < 0 {
			break
		}
		if id := strings.TrimSpace(rest[open+1 : open+end]); id != "" {
			ids = append(ids, msgIDTerm(id))
		}
		rest = rest[open+end+1:]
	}
	if ids == nil {
		if id := strings.Trim(v, " \t\r\n<>"); id != "" {
			ids = append(ids, msgIDTerm(id))
		}
	}
	return ids
}

func msgIDTerm(id string) string {
	return string(truncate([]byte(strings.ToLower(id)), maxMsgIDBytes))
}
