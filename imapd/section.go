package imapd

import (
	"bytes"

	"github.com/mailvault/mailvault/mailparse"
)

// Body sections are slices of the raw message at the offsets the Summary
// recorded at ingest; only HEADER.FIELDS and BINARY look at the bytes.

// appendHeaderFields appends the fields of the header block whose names are
// among names (or, with not, are not), each with its continuation lines as
// archived but with CRLF line ends, then the blank line that ends a header.
func appendHeaderFields(dst, header []byte, names []string, not bool) []byte {
	for len(header) > 0 {
		// A field is its first line and the lines starting with
		// whitespace after it.
		end := lineEnd(header, 0)
		if end == 0 || header[0] == '\n' || header[0] == '\r' && isBlankLine(header[:end]) {
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
			if len(n) == len(name) && bytes.EqualFold([]byte(n), name) {
				listed = true
				break
			}
		}
		if listed == not {
			continue
		}
		dst = mailparse.AppendCRLF(dst, field)
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
	// offset+size may overflow: compare with what is left instead.
	return b[offset : offset+min(int64(len(b))-offset, size)]
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

// appendDecoded appends body decoded from its Content-Transfer-Encoding;
// ok is false for an encoding that is not known (RFC 3516: UNKNOWN-CTE).
func appendDecoded(dst, body []byte, encoding string) (out []byte, ok bool) {
	out, known, _ := mailparse.AppendTransferDecoded(dst, body, encoding)
	if !known {
		return dst, false
	}
	return out, true
}
