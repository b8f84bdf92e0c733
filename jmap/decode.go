package jmap

import (
	"unicode/utf8"

	"github.com/mailvault/mailvault/mailparse"
)

// Body decoding for bodyValues and blob downloads, lenient as archived mail
// needs: what cannot be decoded is passed through and reported.

// transferDecode undoes a Content-Transfer-Encoding; ok is false when the
// body was malformed and decoded as far as possible.
func transferDecode(body []byte, encoding string) (out []byte, ok bool) {
	out, _, clean := mailparse.AppendTransferDecoded(nil, body, encoding)
	return out, clean
}

// toUTF8 converts text in charset label to UTF-8; ok is false when the
// charset is unknown or the text is not valid in it.
func toUTF8(b []byte, label string) (string, bool) { return mailparse.ToUTF8(b, label) }

// truncateUTF8 cuts s to at most n bytes on a character boundary.
func truncateUTF8(s string, n int) (string, bool) {
	if n <= 0 || len(s) <= n {
		return s, false
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}
