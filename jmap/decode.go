package jmap

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// Body decoding for bodyValues and blob downloads, lenient as archived mail
// needs: what cannot be decoded is passed through and reported.

var base64Alphabet = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = true
	}
	return t
}()

// transferDecode undoes a Content-Transfer-Encoding; ok is false when the
// body was malformed and decoded as far as possible.
func transferDecode(body []byte, encoding string) (out []byte, ok bool) {
	switch encoding {
	case "BASE64":
		clean := make([]byte, 0, len(body))
		ok = true
		for _, c := range body {
			switch {
			case base64Alphabet[c]:
				clean = append(clean, c)
			case c == '=' || c == '\r' || c == '\n' || c == ' ' || c == '\t':
			default:
				ok = false
			}
		}
		if len(clean)%4 == 1 {
			clean, ok = clean[:len(clean)-1], false
		}
		out = make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
		n, err := base64.RawStdEncoding.Decode(out, clean)
		return out[:n], ok && err == nil
	case "QUOTED-PRINTABLE":
		return qpDecode(body), true
	}
	return body, true
}

// qpDecode decodes quoted-printable; broken escapes stay as written.
func qpDecode(src []byte) []byte {
	dst := make([]byte, 0, len(src))
	for len(src) > 0 {
		i := bytes.IndexByte(src, '=')
		if i < 0 {
			return append(dst, src...)
		}
		dst = append(dst, src[:i]...)
		src = src[i+1:]
		switch {
		case len(src) >= 2 && unhex(src[0]) >= 0 && unhex(src[1]) >= 0:
			dst = append(dst, byte(unhex(src[0])<<4|unhex(src[1])))
			src = src[2:]
		default:
			// A soft line break: "=" then optional white space and a
			// line end.
			j := 0
			for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
				j++
			}
			switch {
			case j < len(src) && src[j] == '\n':
				src = src[j+1:]
			case j+1 < len(src) && src[j] == '\r' && src[j+1] == '\n':
				src = src[j+2:]
			case j == len(src):
				src = nil
			default:
				dst = append(dst, '=')
			}
		}
	}
	return dst
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// windows1252 maps the bytes 0x80..0x9F; Latin-1 covers the rest.
var windows1252 = [32]rune{
	'€', 0x81, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0x8d, 'Ž', 0x8f,
	0x90, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0x9d, 'ž', 'Ÿ',
}

func windows1252String(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/8)
	for _, c := range b {
		switch {
		case c < utf8.RuneSelf:
			sb.WriteByte(c)
		case c < 0xa0:
			sb.WriteRune(windows1252[c-0x80])
		default:
			sb.WriteRune(rune(c))
		}
	}
	return sb.String()
}

// toUTF8 converts text in charset label to UTF-8; ok is false when the
// charset is unknown or the text is not valid in it.
func toUTF8(b []byte, label string) (string, bool) {
	label = strings.ToLower(strings.Trim(label, " \t\"'"))
	switch label {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		if utf8.Valid(b) {
			return string(b), true
		}
		// Undeclared 8-bit text is most often windows-1252.
		return windows1252String(b), false
	case "iso-8859-1", "iso8859-1", "latin1", "windows-1252", "cp1252":
		// As browsers do: Latin-1 mail often has windows-1252 punctuation.
		return windows1252String(b), true
	}
	r, err := charset.Reader(label, bytes.NewReader(b))
	if err != nil {
		if utf8.Valid(b) {
			return string(b), false
		}
		return windows1252String(b), false
	}
	out, err := io.ReadAll(r)
	if err != nil || !utf8.Valid(out) {
		return strings.ToValidUTF8(string(out), "\uFFFD"), false
	}
	return string(out), true
}

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
