package journal

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"strings"
)

// fields calls fn for each field of the header at the start of b and
// returns where the body starts. Values are raw, folding included. Lines
// that are neither fields nor continuations are skipped, as mail in the
// wild has them; a header without an empty line ends with b.
func fields(b []byte, fn func(name, value []byte)) (bodyStart int) {
	var name []byte
	valueStart, valueEnd := -1, 0
	flush := func() {
		if valueStart >= 0 {
			fn(name, b[valueStart:valueEnd])
			valueStart = -1
		}
	}
	for i := 0; i < len(b); {
		end, next := len(b), len(b)
		if j := bytes.IndexByte(b[i:], '\n'); j >= 0 {
			end, next = i+j, i+j+1
		}
		line := bytes.TrimSuffix(b[i:end], []byte("\r"))
		switch {
		case len(line) == 0:
			flush()
			return next
		case line[0] == ' ' || line[0] == '\t':
			if valueStart >= 0 {
				valueEnd = end
			}
		default:
			flush()
			if colon := bytes.IndexByte(line, ':'); colon > 0 {
				name = bytes.TrimRight(line[:colon], " \t")
				valueStart, valueEnd = i+colon+1, end
			}
		}
		i = next
	}
	flush()
	return len(b)
}

// unfold turns a raw field value into one trimmed line.
func unfold(v []byte) string {
	if bytes.IndexByte(v, '\n') < 0 {
		return string(bytes.TrimSpace(bytes.TrimSuffix(v, []byte("\r"))))
	}
	s := strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(string(v))
	return strings.TrimSpace(s)
}

// splitMultipart returns the parts of a multipart body (RFC 2046 5.1.1):
// the content between delimiter lines, without the line break that belongs
// to the next delimiter. Preamble and epilogue are dropped; a final part
// with no closing delimiter is kept, and closed says whether the closing
// delimiter was found, since a body without it was cut off.
func splitMultipart(body []byte, boundary string) (parts [][]byte, closed bool) {
	delim := []byte("--" + boundary)
	start := -1
	for i := 0; i < len(body); {
		end, next := len(body), len(body)
		if j := bytes.IndexByte(body[i:], '\n'); j >= 0 {
			end, next = i+j, i+j+1
		}
		if closing, ok := isDelimiter(body[i:end], delim); ok {
			if start >= 0 {
				parts = append(parts, body[start:max(start, lineBreakBefore(body, i))])
			}
			if closing {
				return parts, true
			}
			start = next
		}
		i = next
	}
	if start >= 0 && start < len(body) {
		parts = append(parts, body[start:])
	}
	return parts, false
}

// lineBreakBefore returns where the line break ending just before i starts.
func lineBreakBefore(b []byte, i int) int {
	if i > 0 && b[i-1] == '\n' {
		i--
		if i > 0 && b[i-1] == '\r' {
			i--
		}
	}
	return i
}

func isDelimiter(line, delim []byte) (closing, ok bool) {
	if !bytes.HasPrefix(line, delim) {
		return false, false
	}
	rest := line[len(delim):]
	if bytes.HasPrefix(rest, []byte("--")) {
		closing, rest = true, rest[2:]
	}
	// Only transport padding may follow; anything else is a longer boundary.
	return closing, len(bytes.Trim(rest, " \t\r")) == 0
}

// decode undoes a Content-Transfer-Encoding. Identity encodings return b
// itself, so an unencoded attachment stays a byte-exact sub-slice. Broken
// encodings yield what could be decoded.
func decode(cte string, b []byte) []byte {
	switch strings.ToLower(cte) {
	case "base64":
		clean := make([]byte, 0, len(b))
		for _, c := range b {
			if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' {
				clean = append(clean, c)
			}
		}
		if len(clean)%4 == 1 {
			clean = clean[:len(clean)-1] // a lone trailing character encodes nothing
		}
		out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
		n, _ := base64.RawStdEncoding.Decode(out, clean)
		return out[:n]
	case "quoted-printable":
		out, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(b)))
		return out
	}
	return b
}

// base64Cut says whether base64 content ends within a 4-character group,
// as it does when the part was cut off.
func base64Cut(b []byte) bool {
	n := 0
	for _, c := range b {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=' {
			n++
		}
	}
	return n%4 != 0
}
