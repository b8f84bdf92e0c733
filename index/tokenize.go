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
	out := make(analysis.TokenStream, 0, len(input)/6+1)
	var backing []analysis.Token
	emit := func(start, end int) {
		if len(backing) == 0 {
			backing = make([]analysis.Token, min(64+len(input)/8, 1024))
		}
		tok := &backing[0]
		backing = backing[1:]
		*tok = analysis.Token{Term: input[start:end], Start: start, End: end, PositionIncr: 1, Type: analysis.AlphaNumeric}
		out = append(out, tok)
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
				out = append(out, tok)
			}
		}
		i = end
	}
	return out
}

// asciiWords emits the words of s[from:], which holds ASCII without white
// space, by the UAX #29 rules WB5 to WB13b.
func asciiWords(s []byte, from int, emit func(start, end int)) {
	class := func(i int) uint8 {
		if i < from || i >= len(s) {
			return wbOther
		}
		return wbClass[s[i]]
	}
	start := from
	for i := from + 1; i <= len(s); i++ {
		if i < len(s) && !wordBreak(class(i-2), class(i-1), class(i), class(i+1)) {
			continue
		}
		// A segment is a word when it holds a letter, digit or _.
		for _, c := range s[start:i] {
			if k := wbClass[c]; k == wbLetter || k == wbNumeric || k == wbExtendNL {
				emit(start, i)
				break
			}
		}
		start = i
	}
}

// wordBreak tells whether there is a word boundary between b and c, where a
// precedes b and d follows c.
func wordBreak(a, b, c, d uint8) bool {
	isMidL := func(x uint8) bool { return x == wbMidLetter || x == wbMidNumLet }
	isMidN := func(x uint8) bool { return x == wbMidNum || x == wbMidNumLet }
	switch {
	case b == wbLetter && c == wbLetter: // WB5
	case b == wbLetter && isMidL(c) && d == wbLetter: // WB6
	case a == wbLetter && isMidL(b) && c == wbLetter: // WB7
	case (b == wbLetter || b == wbNumeric) && (c == wbLetter || c == wbNumeric): // WB8-10
	case a == wbNumeric && isMidN(b) && c == wbNumeric: // WB11
	case b == wbNumeric && isMidN(c) && d == wbNumeric: // WB12
	case (b == wbLetter || b == wbNumeric || b == wbExtendNL) && c == wbExtendNL: // WB13a
	case b == wbExtendNL && (c == wbLetter || c == wbNumeric): // WB13b
	default:
		return true
	}
	return false
}
