package index

import (
	"github.com/blugelabs/bluge/analysis"
	"github.com/blugelabs/bluge/analysis/tokenizer"
)

// wordTokenizer splits text at Unicode word boundaries (UAX #29) exactly as
// bluge's UnicodeTokenizer does, but words made of ASCII only, most of any
// mail, skip the general segmenter: it was a tenth of the ingest CPU. Word
// boundary rules never join across ASCII white space, so text is cut
// there and only pieces with other bytes go to the segmenter.
type wordTokenizer struct {
	unicode *tokenizer.UnicodeTokenizer
}

func newWordTokenizer() wordTokenizer {
	return wordTokenizer{unicode: tokenizer.NewUnicodeTokenizer()}
}

// ASCII word-break classes of UAX #29.
const (
	wbOther     = iota
	wbLetter    // ALetter
	wbNumeric   // Numeric
	wbExtendNL  // ExtendNumLet: _
	wbMidLetter // MidLetter: :
	wbMidNumLet // MidNumLet and Single_Quote: . '
	wbMidNum    // MidNum: , ;
	wbSpace     // white space: always a boundary
)

var wbClass = func() (c [128]uint8) {
	for b := 'a'; b <= 'z'; b++ {
		c[b], c[b-'a'+'A'] = wbLetter, wbLetter
	}
	for b := '0'; b <= '9'; b++ {
		c[b] = wbNumeric
	}
	c['_'] = wbExtendNL
	c[':'] = wbMidLetter
	c['.'], c['\''] = wbMidNumLet, wbMidNumLet
	c[','], c[';'] = wbMidNum, wbMidNum
	for _, b := range " \t\n\r\v\f" {
		c[b] = wbSpace
	}
	return c
}()

func (t wordTokenizer) Tokenize(input []byte) analysis.TokenStream {
	// Tokens are collected by value and pointed to at the end: two
	// allocations per field instead of one per token.
	toks := t.appendTokens(make([]analysis.Token, 0, len(input)/6+1), input)
	out := make(analysis.TokenStream, len(toks))
	for i := range toks {
		out[i] = &toks[i]
	}
	return out
}

// appendTokens appends the tokens of input to toks.
func (t wordTokenizer) appendTokens(toks []analysis.Token, input []byte) []analysis.Token {
	emit := func(start, end int) {
		toks = append(toks, analysis.Token{Term: input[start:end], Start: start, End: end, PositionIncr: 1, Type: analysis.AlphaNumeric})
	}
	for i := 0; i < len(input); {
		if c := input[i]; c < 128 && wbClass[c] == wbSpace {
			i++
			continue
		}
		end, ascii := i, true
		for end < len(input) {
			c := input[end]
			if c >= 128 {
				ascii = false
			} else if wbClass[c] == wbSpace {
				break
			}
			end++
		}
		if ascii {
			asciiWords(input[:end], i, emit)
		} else {
			for _, tok := range t.unicode.Tokenize(input[i:end]) {
				tok.Start += i
				tok.End += i
				toks = append(toks, *tok)
			}
		}
		i = end
	}
	return toks
}

// asciiWords emits the words of s[from:], which holds ASCII without white
// space, by the UAX #29 rules WB5 to WB13b. Each byte is classified once:
// a, b, c, d slide over the classes around the position between b and c.
func asciiWords(s []byte, from int, emit func(start, end int)) {
	class := func(i int) uint8 {
		if i < len(s) {
			return wbClass[s[i]]
		}
		return wbOther
	}
	a, b, c := uint8(wbOther), class(from), class(from+1)
	start, word := from, isWordClass(b)
	for i := from + 1; i < len(s); i++ {
		d := class(i + 1)
		if wordBreak(a, b, c, d) {
			if word {
				emit(start, i)
			}
			start, word = i, false
		}
		word = word || isWordClass(c)
		a, b, c = b, c, d
	}
	if word {
		emit(start, len(s))
	}
}

// isWordClass tells the classes that make a segment a word.
func isWordClass(k uint8) bool { return k == wbLetter || k == wbNumeric || k == wbExtendNL }

// wordBreak tells whether there is a word boundary between b and c, where a
// precedes b and d follows c.
func wordBreak(a, b, c, d uint8) bool {
	switch {
	case (b == wbLetter || b == wbNumeric) && (c == wbLetter || c == wbNumeric): // WB5, WB8-10
	case b == wbLetter && (c == wbMidLetter || c == wbMidNumLet) && d == wbLetter: // WB6
	case a == wbLetter && (b == wbMidLetter || b == wbMidNumLet) && c == wbLetter: // WB7
	case a == wbNumeric && (b == wbMidNum || b == wbMidNumLet) && c == wbNumeric: // WB11
	case b == wbNumeric && (c == wbMidNum || c == wbMidNumLet) && d == wbNumeric: // WB12
	case (b == wbLetter || b == wbNumeric || b == wbExtendNL) && c == wbExtendNL: // WB13a
	case b == wbExtendNL && (c == wbLetter || c == wbNumeric): // WB13b
	default:
		return true
	}
	return false
}
