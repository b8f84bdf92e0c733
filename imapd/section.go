package imapd

import (
	"bytes"
	"encoding/base64"
	"strings"

	"github.com/mailvault/mailvault/mailparse"
)

// Body sections are slices of the raw message at the offsets the Summary
// recorded at ingest; only HEADER.FIELDS and BINARY look at the bytes.

// appendHeaderFields appends the fields of the header block whose names are
// among names (or, with not, are not), each with its continuation lines
// exactly as archived, then the blank line that ends a header.
func appendHeaderFields(dst, header []byte, names []string, not bool) []byte {
	for len(header) > 0 {
		// A field is its first line and the lines starting with
		// whitespace after it.
		end := lineEnd(header, 0)
		if end == 0 || isBlankLine(header[:end]) {
			break
		}
		for end < len(header) && (header[end] == ' ' || header[end] == '\t') {
			end = lineEnd(header, end)
		}
		field := header[:end]
		header = header[end:]
		colon := bytes.IndexByte(field, ':')
		if colon <= 0 || bytes.IndexByte(field[:colon], '\n') >= 0 {
			continue // not a field: broken header line
		}
		name := bytes.TrimRight(field[:colon], " \t")
		listed := false
		for _, n := range names {
			if strings.EqualFold(n, string(name)) {
				listed = true
				break
			}
		}
		if listed == not {
			continue
		}
		dst = append(dst, field...)
		if field[len(field)-1] != '\n' {
			dst = append(dst, '\r', '\n')
		}
	}
	return append(dst, '\r', '\n')
}

// lineEnd returns the position after the line starting at i, including its
// line break.
func lineEnd(b []byte, i int) int {
	if j := bytes.IndexByte(b[i:], '\n'); j >= 0 {
		return i + j + 1
	}
	return len(b)
}

func isBlankLine(l []byte) bool {
	return len(bytes.TrimRight(l, "\r\n")) == 0
}

// partial returns the <offset.size> slice of b.
func partial(b []byte, offset, size int64) []byte {
	if offset >= int64(len(b)) {
		return nil
	}
	return b[offset:min(int64(len(b)), offset+size)]
}

// findPart returns the part that the section part numbers path names,
// following the numbering of mailparse.Summary.Section, or nil.
func findPart(root *mailparse.Part, path []int) *mailparse.Part {
	if root == nil {
		return nil
	}
	var part *mailparse.Part
	msg := root // the message the next number indexes into, if any
	for _, n := range path {
		if n < 1 {
			return nil
		}
		switch {
		case msg != nil && msg.Type != "multipart":
			if n != 1 {
				return nil
			}
			part = msg
		case msg != nil:
			if n > len(msg.Children) {
				return nil
			}
			part = msg.Children[n-1]
		case part.Type == "multipart":
			if n > len(part.Children) {
				return nil
			}
			part = part.Children[n-1]
		default:
			return nil
		}
		msg = part.Message
	}
	return part
}

// appendDecoded appends body decoded from its Content-Transfer-Encoding
// (upper case, as mailparse stores it). Broken input is decoded as far as
// it goes, as mail readers do; ok is false for an encoding that is not
// known (RFC 3516: UNKNOWN-CTE).
func appendDecoded(dst, body []byte, encoding string) (out []byte, ok bool) {
	switch encoding {
	case "", "7BIT", "8BIT", "BINARY":
		return append(dst, body...), true
	case "BASE64":
		return appendBase64(dst, body), true
	case "QUOTED-PRINTABLE":
		return appendQP(dst, body), true
	}
	return dst, false
}

// appendBase64 decodes the base64 alphabet characters of src, skipping line
// breaks and garbage and stopping at padding.
func appendBase64(dst, src []byte) []byte {
	var quad [4]byte
	n := 0
	for _, c := range src {
		if c == '=' {
			break
		}
		if !isBase64(c) {
			continue
		}
		quad[n] = c
		n++
		if n == 4 {
			dst = decodeQuad(dst, quad[:4])
			n = 0
		}
	}
	if n >= 2 {
		dst = decodeQuad(dst, quad[:n])
	}
	return dst
}

func decodeQuad(dst, q []byte) []byte {
	var out [3]byte
	n, _ := base64.RawStdEncoding.Decode(out[:], q)
	return append(dst, out[:n]...)
}

func isBase64(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/'
}

// appendQP decodes quoted-printable; broken escapes stay as they are.
func appendQP(dst, src []byte) []byte {
	for len(src) > 0 {
		i := bytes.IndexByte(src, '=')
		if i < 0 {
			return append(dst, src...)
		}
		dst = append(dst, src[:i]...)
		src = src[i+1:]
		if len(src) >= 2 {
			if hi, lo := unhex(src[0]), unhex(src[1]); hi >= 0 && lo >= 0 {
				dst = append(dst, byte(hi<<4|lo))
				src = src[2:]
				continue
			}
		}
		// A soft line break is "=", optional whitespace, a line break.
		j := 0
		for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
			j++
		}
		switch {
		case j == len(src):
			src = nil
		case src[j] == '\n':
			src = src[j+1:]
		case src[j] == '\r' && j+1 < len(src) && src[j+1] == '\n':
			src = src[j+2:]
		default:
			dst = append(dst, '=')
		}
	}
	return dst
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	}
	return -1
}
