package mailparse

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// textPart is a part whose text goes into Summary.Text, with its part
// number for problems.
type textPart struct {
	part *Part
	path []int
	// header, when set, is the decoded header of an embedded message,
	// which a reader of the forwarded message sees; part is then nil.
	header string
}

// extractTexts decodes the text parts into Summary.Text, in document order.
func (p *parser) extractTexts() {
	if len(p.textParts) == 0 {
		return
	}
	size := 0
	for _, tp := range p.textParts {
		if tp.part == nil {
			size += len(tp.header) + 1
			continue
		}
		size += int(tp.part.Size) + 1
	}
	p.text = make([]byte, 0, min(size, p.maxText))
	for _, tp := range p.textParts {
		if len(p.text) >= p.maxText {
			break
		}
		p.path = tp.path
		if tp.part == nil {
			p.appendText(func(dst []byte) []byte { return append(dst, tp.header...) })
			continue
		}
		p.extractText(tp.part)
	}
	p.path = p.path[:0]
	p.sum.Text = string(p.text)
}

// extractText appends the decoded text of a text/* part to p.text, capped
// at p.maxText on a UTF-8 boundary.
func (p *parser) extractText(part *Part) {
	body := p.raw[part.BodyStart:part.End]
	// Decoding never needs much more input than the room left, except for
	// markup-heavy HTML: bound the work for huge text attachments.
	if limit := (p.maxText-len(p.text))*8 + 64<<10; len(body) > limit {
		body = body[:limit]
	}
	decoded := body
	switch part.Encoding {
	case "BASE64":
		var ok bool
		p.decodeBuf, ok = appendBase64(p.decodeBuf[:0], body)
		if !ok {
			p.problem("malformed base64, decoded leniently")
		}
		decoded = p.decodeBuf
	case "QUOTED-PRINTABLE":
		p.decodeBuf = appendQP(p.decodeBuf[:0], body)
		decoded = p.decodeBuf
	}
	text, converted, err := toUTF8(p.charsetBuf[:0], decoded, part.Params["charset"])
	if err != nil {
		p.problem("%v", err)
	}
	if converted {
		p.charsetBuf = text
	}

	switch part.Subtype {
	case "html":
		p.appendText(func(dst []byte) []byte { return appendHTMLText(dst, text) })
	case "calendar":
		p.appendText(func(dst []byte) []byte { return appendCalendarText(dst, text) })
	default:
		p.appendText(func(dst []byte) []byte { return append(dst, text...) })
	}
}

// appendText appends what add appends to p.text, on a line of its own,
// capped at p.maxText on a UTF-8 boundary.
func (p *parser) appendText(add func(dst []byte) []byte) {
	mark := len(p.text)
	if mark > 0 {
		p.text = append(p.text, '\n')
	}
	start := len(p.text)
	p.text = add(p.text)
	p.text = bytes.TrimRight(p.text, " \t\r\n")
	if len(p.text) <= start {
		p.text = p.text[:mark] // no text: no separator either
	}
	if len(p.text) > p.maxText {
		cut := p.maxText
		for cut > 0 && !utf8.RuneStart(p.text[cut]) {
			cut--
		}
		p.text = p.text[:cut]
	}
}

// toUTF8 converts b from charset label to valid UTF-8: b itself when it
// already is, else appended to dst with converted set. Text that is not
// valid in its charset is decoded as best it can; err says so.
func toUTF8(dst, b []byte, label string) (text []byte, converted bool, err error) {
	label = strings.ToLower(strings.Trim(label, " \t\"'"))
	switch label {
	case "", "utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968", "ansi-x3.4-1968", "iso-646-us":
		if utf8.Valid(b) {
			return b, false, nil
		}
		return appendWindows1252(dst, b), true, fmt.Errorf("text in %q is not valid UTF-8, decoded as windows-1252", label)
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1", "windows-1252", "cp1252":
		// Mail labelled Latin-1 often carries windows-1252 punctuation;
		// decoding as windows-1252 is what browsers do too.
		return appendWindows1252(dst, b), true, nil
	}
	r, err := charset.Reader(label, bytes.NewReader(b))
	if err != nil {
		if utf8.Valid(b) {
			return b, false, fmt.Errorf("unknown charset %q, read as UTF-8", label)
		}
		return appendWindows1252(dst, b), true, fmt.Errorf("unknown charset %q, decoded as windows-1252", label)
	}
	dst, err = readAppend(dst, r)
	if err != nil {
		err = fmt.Errorf("decode charset %q: %w", label, err)
	}
	if !utf8.Valid(dst) {
		dst = bytes.ToValidUTF8(dst, []byte("\uFFFD"))
	}
	return dst, true, err
}

func readAppend(dst []byte, r io.Reader) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// windows1252 maps the bytes 0x80..0x9F; Latin-1 covers the rest. The five
// bytes windows-1252 leaves undefined map to their C1 code points.
var windows1252 = [32]rune{
	'€', 0x81, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0x8d, 'Ž', 0x8f,
	0x90, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0x9d, 'ž', 'Ÿ',
}

func appendWindows1252(dst, b []byte) []byte {
	dst = slices.Grow(dst, len(b)+len(b)/8)
	for _, c := range b {
		switch {
		case c < utf8.RuneSelf:
			dst = append(dst, c)
		case c < 0xa0:
			dst = utf8.AppendRune(dst, windows1252[c-0x80])
		default:
			dst = utf8.AppendRune(dst, rune(c))
		}
	}
	return dst
}

// appendQP appends the quoted-printable decoding of src to dst. Broken
// escapes are kept literally rather than rejected. Whitespace at the end of
// an encoded line is removed (RFC 2045 6.7 rule 3: it was added in
// transport); the line breaks are kept as written.
func appendQP(dst, src []byte) []byte {
	dst = slices.Grow(dst, len(src))
	for len(src) > 0 {
		var line, brk []byte
		line, brk, src = qpLine(src)
		for len(line) > 0 {
			i := bytes.IndexByte(line, '=')
			if i < 0 {
				dst = append(dst, line...)
				break
			}
			dst = append(dst, line[:i]...)
			n, c, soft := qpEscape(line[i+1:])
			if soft {
				brk = nil
				break
			}
			dst = append(dst, c)
			line = line[i+1+n:]
		}
		dst = append(dst, brk...)
	}
	return dst
}

// qpDecodedLen returns len(appendQP(nil, src)) without decoding.
func qpDecodedLen(src []byte) int {
	size := 0
	for len(src) > 0 {
		var line, brk []byte
		line, brk, src = qpLine(src)
		for len(line) > 0 {
			i := bytes.IndexByte(line, '=')
			if i < 0 {
				size += len(line)
				break
			}
			size += i
			n, _, soft := qpEscape(line[i+1:])
			if soft {
				brk = nil
				break
			}
			size++
			line = line[i+1+n:]
		}
		size += len(brk)
	}
	return size
}

// qpLine splits the first line off quoted-printable text: the line without
// its trailing spaces and tabs, its line break (CRLF, LF or none at the
// end), and the rest.
func qpLine(src []byte) (line, brk, rest []byte) {
	end, next := len(src), len(src)
	if i := bytes.IndexByte(src, '\n'); i >= 0 {
		end, next = i, i+1
		if i > 0 && src[i-1] == '\r' {
			end--
		}
	}
	line = src[:end]
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	return line, src[end:next], src[next:]
}

// qpEscape interprets what follows a '=' within a line (trailing blanks
// removed): "XX" gives a byte, nothing (the end of the line) a soft line
// break, anything else a literal '='. It returns how many bytes of line
// that consumed.
func qpEscape(line []byte) (n int, c byte, soft bool) {
	if len(line) == 0 {
		return 0, 0, true
	}
	if len(line) >= 2 {
		if hi, lo := unhex(line[0]), unhex(line[1]); hi >= 0 && lo >= 0 {
			return 2, byte(hi<<4 | lo), false
		}
	}
	return 0, '=', false
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

// base64Value marks the bytes of the base64 alphabet.
var base64Value = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = true
	}
	return t
}()

// base64DecodedLen returns the size of src once base64-decoded, without
// decoding it: every 4 alphabet characters give 3 bytes. It counts the
// non-alphabet bytes a well-formed body holds (line breaks, padding,
// blanks) with bytes.Count, many times faster than a scan byte by byte over
// megabytes of attachments; other stray bytes count as data, so the size
// of a malformed body is an estimate.
func base64DecodedLen(src []byte) int {
	n := len(src)
	for _, c := range [...]byte{'\n', '\r', '=', ' ', '\t'} {
		n -= bytes.Count(src, []byte{c})
	}
	return n * 3 / 4
}

// appendBase64 appends the base64 decoding of src to dst. Line breaks are
// fine; on other garbage it falls back to decoding just the alphabet
// characters and reports ok=false.
func appendBase64(dst, src []byte) (out []byte, ok bool) {
	start := len(dst)
	size := base64.StdEncoding.DecodedLen(len(src))
	dst = slices.Grow(dst, size)
	n, err := base64.StdEncoding.Decode(dst[start:start+size], src)
	if err == nil {
		return dst[:start+n], true
	}
	clean := make([]byte, 0, len(src))
	for _, c := range src {
		if base64Value[c] {
			clean = append(clean, c)
		}
	}
	if len(clean)%4 == 1 {
		clean = clean[:len(clean)-1]
	}
	size = base64.RawStdEncoding.DecodedLen(len(clean))
	dst = slices.Grow(dst[:start], size)
	n, _ = base64.RawStdEncoding.Decode(dst[start:start+size], clean)
	return dst[:start+n], false
}

func countLines(b []byte) int64 {
	n := int64(bytes.Count(b, []byte{'\n'}))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

// preview returns the first previewRunes characters of text with runs of
// whitespace collapsed to one space.
func preview(text string) string {
	var b strings.Builder
	n, space := 0, false
	for _, r := range text {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if n >= previewRunes {
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
			if n++; n >= previewRunes {
				break
			}
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
