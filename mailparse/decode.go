package mailparse

import "strings"

// AppendTransferDecoded appends body decoded from its
// Content-Transfer-Encoding (any case) to dst, the way every reader of the
// archive needs it (IMAP BINARY, JMAP body values, the index). Broken input
// is decoded as far as it goes, as mail readers do: clean is false then.
// An unknown encoding appends body unchanged with known false.
func AppendTransferDecoded(dst, body []byte, encoding string) (out []byte, known, clean bool) {
	switch strings.ToUpper(strings.TrimSpace(encoding)) {
	case "", "7BIT", "8BIT", "BINARY":
		return append(dst, body...), true, true
	case "BASE64":
		out, clean = appendBase64(dst, body)
		return out, true, clean
	case "QUOTED-PRINTABLE":
		return appendQP(dst, body), true, true
	}
	return append(dst, body...), false, true
}

// ToUTF8 converts text in the named charset to valid UTF-8. ok is false
// when the charset is unknown or the text was not valid in it; the result
// is then the best reading (UTF-8 if valid, else windows-1252).
func ToUTF8(b []byte, charset string) (string, bool) {
	text, _, err := toUTF8(nil, b, charset)
	return string(text), err == nil
}
