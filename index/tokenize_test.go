package index

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/blugelabs/bluge/analysis"
	"github.com/blugelabs/bluge/analysis/tokenizer"
)

// sameTokens checks the fast tokenizer against bluge's on s.
func sameTokens(t *testing.T, s string) {
	t.Helper()
	want := tokenizer.NewUnicodeTokenizer().Tokenize([]byte(s))
	have := newWordTokenizer().Tokenize([]byte(s))
	if tokenString(have) != tokenString(want) {
		t.Fatalf("tokens of %q:\nhave %s\nwant %s", s, tokenString(have), tokenString(want))
	}
}

func tokenString(ts analysis.TokenStream) string {
	var b strings.Builder
	for _, tok := range ts {
		b.WriteString(string(tok.Term))
		b.WriteByte('|')
		b.WriteString(strings.Repeat("+", tok.PositionIncr))
		b.WriteByte('@')
		b.WriteString(string(rune('0' + tok.Start%64)))
		b.WriteString(string(rune('0' + tok.End%64)))
		b.WriteByte(' ')
	}
	return b.String()
}

func TestWordTokenizer(t *testing.T) {
	for _, s := range []string{
		"", " ", "hello world", "don't stop", "3.14 1,000,000 1;2 a.b.c a..b", "k:a http://x.example/y?z=1",
		"foo_bar __ _ _1 a_ 1_a", "e-mail re: fwd:", "v1.2.3 abc123 123abc 12.ab", "a'b' 'c 'd'",
		"Grüße aus Köln, Straße 5", "naïve café\tcrème\r\nbrûlée", "日本語のテキスト mixed 日本 text",
		"a\u00adb soft hyphen", "x\u200by zero width", "ümlaut:ä ä.b", "1.2.3.4:80", "end.", ".start",
		"tab\tsep\vvt\fff", "a.1 1.a a:1 1:a", "O'Neil's", "#hash @at $5.00 50% a&b",
	} {
		sameTokens(t, s)
	}
}

func TestWordTokenizerRandom(t *testing.T) {
	const alphabet = "aZ09_.:',;- \t\n@/äé日\u0301\u200d"
	letters := []rune(alphabet)
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b strings.Builder
		for range r.IntN(24) {
			b.WriteRune(letters[r.IntN(len(letters))])
		}
		sameTokens(t, b.String())
	}
}

func TestWordTokenizerInvalidUTF8(t *testing.T) {
	have := newWordTokenizer().Tokenize([]byte("before \xc3 after"))
	if got := tokenString(have); !strings.HasPrefix(got, "before|") || !strings.Contains(got, "after|") {
		t.Fatalf("tokens %s: want the words on both sides of an invalid byte", got)
	}
}

func FuzzWordTokenizer(f *testing.F) {
	f.Add("don't stop 3.14 a_b k:a Grüße")
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			// bluge's segmenter stops at the first invalid byte and drops
			// the rest; ours only loses the piece that holds it.
			newWordTokenizer().Tokenize([]byte(s))
			return
		}
		sameTokens(t, s)
	})
}

func BenchmarkWordTokenizer(b *testing.B) {
	text := []byte(strings.Repeat("Dear team, please find attached the invoice 2026-11 (EUR 1,234.50) for Köln; don't forget the deadline: k:a v1.2.3 foo_bar.\r\n", 20))
	tk := newWordTokenizer()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tk.Tokenize(text)
	}
}
