package mailparse

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// field is one header field: its name, and its value as the offsets
// raw[start:end], still folded, without the line break that ends the field.
type field struct {
	name       []byte
	start, end int
}

// scanHeader splits the header of raw[start:end] into p.fields and returns
// where the body starts: after the first empty line, or at the first line
// that cannot be a header field when the empty line is missing.
func (p *parser) scanHeader(start, end int) (bodyStart int) {
	p.fields = p.fields[:0]
	raw := p.raw[:end]
	// Lines before looseEnd may have malformed field names: a look ahead
	// found only field-like lines up to the empty line there.
	looseEnd := -1
	for pos := start; pos < end; {
		lineEnd, next := lineAt(raw, pos)
		line := raw[pos:lineEnd]
		switch {
		case len(line) == 0:
			return next
		case line[0] == ' ' || line[0] == '\t':
			if n := len(p.fields); n > 0 {
				p.fields[n-1].end = lineEnd
			} else {
				p.problem("header starts with a continuation line")
			}
		default:
			colon := nameEnd(line)
			if colon < 0 && pos == start && bytes.HasPrefix(line, []byte("From ")) {
				p.problem("mbox From_ line in header")
				break
			}
			if colon < 0 && looseEnd < pos {
				looseEnd = looseHeaderEnd(raw, pos)
			}
			if colon < 0 && pos < looseEnd {
				colon = looseNameEnd(line)
				p.problem("malformed header field name %q", bytes.TrimRight(line[:colon], " \t"))
			}
			if colon < 0 {
				p.problem("no empty line between header and body")
				return pos
			}
			p.fields = append(p.fields, field{name: bytes.TrimRight(line[:colon], " \t"), start: pos + colon + 1, end: lineEnd})
		}
		pos = next
	}
	return end
}

// lineAt returns the end of the line starting at raw[pos] without its line
// break, and the start of the next line.
func lineAt(raw []byte, pos int) (lineEnd, next int) {
	lineEnd, next = len(raw), len(raw)
	if i := bytes.IndexByte(raw[pos:], '\n'); i >= 0 {
		lineEnd, next = pos+i, pos+i+1
	}
	if lineEnd > pos && raw[lineEnd-1] == '\r' {
		lineEnd--
	}
	return lineEnd, next
}

// looseHeaderEnd returns the offset of the empty line ending the header if
// every line from pos up to it looks like a header field, however malformed
// its name, or a continuation line; else -1.
func looseHeaderEnd(raw []byte, pos int) int {
	for pos < len(raw) {
		lineEnd, next := lineAt(raw, pos)
		line := raw[pos:lineEnd]
		switch {
		case len(line) == 0:
			return pos
		case line[0] != ' ' && line[0] != '\t' && looseNameEnd(line) < 0:
			return -1
		}
		pos = next
	}
	return -1
}

// looseNameEnd returns the index of the first colon of line if what
// precedes it is printable text, else -1.
func looseNameEnd(line []byte) int {
	for i, c := range line {
		switch {
		case c == ':':
			if len(bytes.TrimSpace(line[:i])) == 0 {
				return -1
			}
			return i
		case c < ' ' && c != '\t', c == 0x7f:
			return -1
		}
	}
	return -1
}

// nameEnd returns the index of the colon ending the field name of line, or
// -1 if line is not a well-formed header field. Whitespace before the colon
// is allowed (RFC 5322 obsolete syntax).
func nameEnd(line []byte) int {
	for i, c := range line {
		switch {
		case c == ':':
			if i == 0 {
				return -1
			}
			return i
		case c == ' ' || c == '\t':
			j := i
			for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
				j++
			}
			if i > 0 && j < len(line) && line[j] == ':' {
				return j
			}
			return -1
		case c < 33 || c > 126:
			return -1
		}
	}
	return -1
}

// Header fields the parser interprets.
const (
	kindOther = iota
	kindSubject
	kindFrom
	kindSender
	kindReplyTo
	kindTo
	kindCc
	kindBcc
	kindDate
	kindMessageID
	kindInReplyTo
	kindReferences
	kindContentType
	kindContentTransferEncoding
	kindContentDisposition
	kindContentID
	kindContentDescription
	kindContentLanguage
	kindContentLocation
	kindContentMD5
	numKinds
)

func fieldKind(name []byte) int {
	var buf [32]byte
	if len(name) > len(buf) {
		return kindOther
	}
	lower := buf[:len(name)]
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	switch string(lower) {
	case "subject":
		return kindSubject
	case "from":
		return kindFrom
	case "sender":
		return kindSender
	case "reply-to":
		return kindReplyTo
	case "to":
		return kindTo
	case "cc":
		return kindCc
	case "bcc":
		return kindBcc
	case "date":
		return kindDate
	case "message-id":
		return kindMessageID
	case "in-reply-to":
		return kindInReplyTo
	case "references":
		return kindReferences
	case "content-type":
		return kindContentType
	case "content-transfer-encoding":
		return kindContentTransferEncoding
	case "content-disposition":
		return kindContentDisposition
	case "content-id":
		return kindContentID
	case "content-description":
		return kindContentDescription
	case "content-language":
		return kindContentLanguage
	case "content-location":
		return kindContentLocation
	case "content-md5":
		return kindContentMD5
	}
	return kindOther
}

// fieldIndex maps each field kind to its field in p.fields, plus one
// (zero: absent). The first occurrence wins, as in IMAP servers, except for
// the address fields, where the last does: JMAP's from, to, ... are its
// header:From:asAddresses, ..., which read the last (RFC 8621 4.1.3), and
// ENVELOPE must agree with them.
type fieldIndex [numKinds]int32

func (p *parser) indexFields() (idx fieldIndex) {
	for i := range p.fields {
		k := fieldKind(p.fields[i].name)
		if k != kindOther && (idx[k] == 0 || kindFrom <= k && k <= kindBcc) {
			idx[k] = int32(i + 1)
		}
	}
	return idx
}

// value returns the field of kind k (see fieldIndex) unfolded, trimmed and as valid
// UTF-8, and whether the field is present.
func (p *parser) value(idx *fieldIndex, k int) (string, bool) {
	i := idx[k]
	if i == 0 {
		return "", false
	}
	f := &p.fields[i-1]
	return fieldString(p.raw[f.start:f.end]), true
}

// fieldString unfolds and trims a raw field value and makes it valid UTF-8.
func fieldString(v []byte) string {
	v = bytes.Trim(v, " \t\r\n")
	if bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0 && utf8.Valid(v) {
		return string(v)
	}
	var buf [256]byte
	return string(appendFieldValue(buf[:0], v))
}

// appendFieldValue appends a raw field value unfolded, trimmed and as valid
// UTF-8 to dst.
func appendFieldValue(dst, v []byte) []byte {
	v = bytes.Trim(v, " \t\r\n")
	for len(v) > 0 {
		i := bytes.IndexAny(v, "\r\n")
		if i < 0 {
			return appendUTF8(dst, v)
		}
		dst = appendUTF8(dst, v[:i])
		v = v[i+1:]
	}
	return dst
}

// appendUTF8 appends b to dst, decoded as windows-1252 (a superset of
// Latin-1 in what it can print) if it is not valid UTF-8: raw 8-bit header
// bytes are UTF-8 if they can be.
func appendUTF8(dst, b []byte) []byte {
	if utf8.Valid(b) {
		return append(dst, b...)
	}
	return appendWindows1252(dst, b)
}

// decodeWords decodes RFC 2047 encoded words in s.
func (p *parser) decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d, err := p.words.DecodeHeader(s)
	if err != nil {
		p.problem("encoded words in %q: %v", s, err)
		return s
	}
	return strings.ToValidUTF8(d, "\uFFFD")
}

// shownHeader is the text of the header fields a mail reader shows for
// the embedded message being parsed (From, To, Cc, Subject, Date), one
// "Name: value" line each, decoded.
func (p *parser) shownHeader() string {
	var b []byte
	for _, f := range p.fields {
		switch strings.ToLower(string(f.name)) {
		case "from", "to", "cc", "subject", "date":
		default:
			continue
		}
		b = appendUTF8(b, f.name)
		b = append(b, ": "...)
		b = append(b, p.decodeWords(string(appendFieldValue(nil, p.raw[f.start:f.end])))...)
		b = append(b, '\n')
	}
	return string(b)
}

// topLevel records the message's header fields and References. Names and
// values share one string, so a header of many fields costs few allocations.
func (p *parser) topLevel(idx *fieldIndex) {
	if len(p.fields) > 0 {
		size := 0
		for _, f := range p.fields {
			size += len(f.name) + f.end - f.start
		}
		arena := make([]byte, 0, size)
		// ends[2i] and ends[2i+1] are where field i's name and value end.
		ends := make([]int, 0, 2*len(p.fields))
		for _, f := range p.fields {
			arena = appendUTF8(arena, f.name)
			ends = append(ends, len(arena))
			arena = appendFieldValue(arena, p.raw[f.start:f.end])
			ends = append(ends, len(arena))
		}
		all := string(arena)
		p.sum.Headers = make([]Header, len(p.fields))
		start := 0
		for i := range p.sum.Headers {
			nameEnd, valueEnd := ends[2*i], ends[2*i+1]
			p.sum.Headers[i] = Header{Name: all[start:nameEnd], Value: p.decodeWords(all[nameEnd:valueEnd])}
			start = valueEnd
		}
	}
	if v, ok := p.value(idx, kindReferences); ok {
		p.sum.References = msgIDs(v)
	}
}

// contentFields fills the part's MIME fields from its header.
func (p *parser) contentFields(part *Part, idx *fieldIndex) {
	if v, ok := p.value(idx, kindContentType); ok {
		typ, params := p.structured(v, "Content-Type")
		main, sub, rest, ok := mediaType(typ)
		switch {
		case !ok:
			p.problem("malformed Content-Type %q, treated as application/octet-stream", v)
			part.Type, part.Subtype = "application", "octet-stream"
		case rest != "":
			p.problem("Content-Type %q: ignored %q after the media type", v, rest)
			fallthrough
		default:
			part.Type, part.Subtype = internLower(main), internLower(sub)
		}
		part.Params = params
	}
	if v, ok := p.value(idx, kindContentTransferEncoding); ok {
		if i := strings.IndexAny(v, " \t;("); i >= 0 {
			v = v[:i]
		}
		part.Encoding = internUpper(v)
		switch part.Encoding {
		case "7BIT", "8BIT", "BINARY", "BASE64", "QUOTED-PRINTABLE":
		case "":
			part.Encoding = "7BIT"
		default:
			p.problem("unknown Content-Transfer-Encoding %q, body not decoded", v)
		}
	}
	if v, ok := p.value(idx, kindContentDisposition); ok {
		disp, params := p.structured(v, "Content-Disposition")
		part.Disposition = internLower(strings.TrimSpace(disp))
		part.DispositionParams = params
	}
	if v, ok := p.value(idx, kindContentID); ok {
		part.ID = v
	}
	if v, ok := p.value(idx, kindContentDescription); ok {
		part.Description = p.decodeWords(v)
	}
	if v, ok := p.value(idx, kindContentLanguage); ok {
		for tag := range strings.SplitSeq(v, ",") {
			if tag = strings.TrimSpace(tag); tag != "" {
				part.Language = append(part.Language, tag)
			}
		}
	}
	if v, ok := p.value(idx, kindContentLocation); ok {
		// A long URL may be folded; the folding whitespace is not part of it.
		part.Location = strings.Join(strings.Fields(v), "")
	}
	if v, ok := p.value(idx, kindContentMD5); ok {
		part.MD5 = v
	}
}

// mediaType splits "type/subtype" and returns what follows the subtype
// (text missing its ";"), or ok=false if there is no type and subtype.
func mediaType(s string) (main, sub, rest string, ok bool) {
	main, sub, ok = strings.Cut(s, "/")
	main, sub = strings.TrimSpace(main), strings.TrimLeft(sub, " \t")
	end := 0
	for end < len(sub) && isToken(sub[end:end+1]) {
		end++
	}
	sub, rest = sub[:end], strings.TrimSpace(sub[end:])
	return main, sub, rest, ok && isToken(main) && sub != ""
}

// isToken reports whether s is a non-empty RFC 2045 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// internLower lower-cases s, without allocating for common MIME words.
func internLower(s string) string {
	var buf [32]byte
	if len(s) > len(buf) {
		return strings.ToLower(s)
	}
	lower := buf[:len(s)]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	switch string(lower) {
	case "text":
		return "text"
	case "plain":
		return "plain"
	case "html":
		return "html"
	case "multipart":
		return "multipart"
	case "mixed":
		return "mixed"
	case "alternative":
		return "alternative"
	case "related":
		return "related"
	case "signed":
		return "signed"
	case "application":
		return "application"
	case "octet-stream":
		return "octet-stream"
	case "pdf":
		return "pdf"
	case "image":
		return "image"
	case "jpeg":
		return "jpeg"
	case "png":
		return "png"
	case "message":
		return "message"
	case "rfc822":
		return "rfc822"
	case "attachment":
		return "attachment"
	case "inline":
		return "inline"
	case "":
		return ""
	}
	if string(lower) == s {
		return s
	}
	return string(lower)
}

// internUpper upper-cases s, without allocating for the usual encodings.
func internUpper(s string) string {
	for _, enc := range [...]string{"7BIT", "8BIT", "BINARY", "BASE64", "QUOTED-PRINTABLE"} {
		if strings.EqualFold(s, enc) {
			return enc
		}
	}
	return strings.ToUpper(s)
}
