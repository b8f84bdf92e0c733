package mailparse

import (
	"bytes"
	"html"
	"unicode/utf8"
)

// appendHTMLText appends the readable text of the HTML document src (valid
// UTF-8) to dst: the title (a reader sees it) on a line of its own, tags,
// comments, scripts and styles dropped, entities
// decoded, whitespace collapsed, block elements on their own lines. It is a
// tolerant scanner rather than a full HTML5 parser: for indexing and previews
// that is enough, and several times faster.
func appendHTMLText(dst, src []byte) []byte {
	const (
		sepNone = iota
		sepSpace
		sepLine
	)
	start := len(dst)
	sep := sepNone
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '<':
			name, closing, end := scanTag(src, i)
			if end < 0 {
				// Not a tag: a literal '<'.
				break
			}
			i = end
			switch tagKind(name) {
			case tagSkip:
				if !closing {
					i = skipElement(src, i, name)
				}
			case tagBlock:
				sep = sepLine
			case tagCell:
				sep = max(sep, sepSpace)
			}
			continue
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			sep = max(sep, sepSpace)
			i++
			continue
		}
		if len(dst) > start {
			switch sep {
			case sepSpace:
				dst = append(dst, ' ')
			case sepLine:
				dst = append(dst, '\n')
			}
		}
		sep = sepNone
		if c == '&' {
			dst, i = appendEntity(dst, src, i)
			continue
		}
		// Copy the run of plain text up to the next markup or whitespace.
		j := i + 1
		for j < len(src) && !htmlSpecial[src[j]] {
			j++
		}
		dst = append(dst, src[i:j]...)
		i = j
	}
	return dst
}

// htmlSpecial marks the bytes that end a run of plain text.
var htmlSpecial = func() (t [256]bool) {
	for _, c := range "<& \t\n\r\f" {
		t[c] = true
	}
	return t
}()

// scanTag looks at the markup starting at src[i] == '<' and returns the
// lower-case tag name (nil for comments, doctypes, processing instructions),
// whether it is a closing tag, and the index after its '>'; end is -1 if
// src[i] does not start markup.
func scanTag(src []byte, i int) (name []byte, closing bool, end int) {
	j := i + 1
	if j >= len(src) {
		return nil, false, -1
	}
	switch c := src[j]; {
	case c == '!':
		if bytes.HasPrefix(src[j:], []byte("!--")) {
			k := bytes.Index(src[j+3:], []byte("-->"))
			if k < 0 {
				return nil, false, len(src)
			}
			return nil, false, j + 3 + k + 3
		}
		return nil, false, tagEnd(src, j)
	case c == '?':
		return nil, false, tagEnd(src, j)
	case c == '/':
		closing = true
		j++
	}
	k := j
	for k < len(src) && isASCIILetterOrDigit(src[k]) {
		k++
	}
	if k == j || !isASCIILetter(src[j]) {
		return nil, false, -1
	}
	return src[j:k], closing, tagEnd(src, k)
}

// tagEnd returns the index after the '>' closing a tag whose attributes
// start at src[j], skipping quoted attribute values.
func tagEnd(src []byte, j int) int {
	var quote byte
	for ; j < len(src); j++ {
		switch c := src[j]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return j + 1
		}
	}
	return len(src)
}

// skipElement returns the index after the end tag of the element name
// (script, style, ...) whose content starts at src[i].
func skipElement(src []byte, i int, name []byte) int {
	for i < len(src) {
		k := bytes.Index(src[i:], []byte("</"))
		if k < 0 {
			return len(src)
		}
		i += k
		n, closing, end := scanTag(src, i)
		if closing && bytes.EqualFold(n, name) {
			return end
		}
		i += 2
	}
	return len(src)
}

const (
	tagInline = iota
	tagBlock  // starts a new line
	tagCell   // separated by a space
	tagSkip   // content is not text
)

func tagKind(name []byte) int {
	var buf [16]byte
	if len(name) > len(buf) {
		return tagInline
	}
	lower := buf[:len(name)]
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	switch string(lower) {
	case "script", "style", "template", "noscript":
		return tagSkip
	case "title", "br", "p", "div", "tr", "li", "ul", "ol", "dl", "dt", "dd", "table", "tbody", "thead",
		"h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr", "section", "article",
		"header", "footer", "address", "center", "body", "html", "form", "fieldset", "nav", "main":
		return tagBlock
	case "td", "th", "img":
		return tagCell
	}
	return tagInline
}

// appendEntity decodes the character reference at src[i] == '&' and returns
// the index after it; an unknown reference is kept literally.
func appendEntity(dst, src []byte, i int) ([]byte, int) {
	const maxEntity = 32
	semi := bytes.IndexByte(src[i+1:min(len(src), i+1+maxEntity)], ';')
	if semi <= 0 {
		return append(dst, '&'), i + 1
	}
	ref := src[i+1 : i+1+semi]
	end := i + 1 + semi + 1
	if ref[0] == '#' {
		r, ok := charRef(ref[1:])
		if !ok {
			return append(dst, '&'), i + 1
		}
		if r == 0xa0 {
			r = ' '
		}
		return utf8.AppendRune(dst, r), end
	}
	if r := commonEntity(ref); r != 0 {
		return utf8.AppendRune(dst, r), end
	}
	entity := string(src[i:end])
	if decoded := html.UnescapeString(entity); decoded != entity {
		return append(dst, decoded...), end
	}
	return append(dst, '&'), i + 1
}

// commonEntity decodes the named references frequent in European business
// mail without allocating; 0 for others.
func commonEntity(name []byte) rune {
	switch string(name) {
	case "amp":
		return '&'
	case "lt":
		return '<'
	case "gt":
		return '>'
	case "quot":
		return '"'
	case "apos":
		return '\''
	case "nbsp":
		return ' '
	case "auml":
		return 'ä'
	case "ouml":
		return 'ö'
	case "uuml":
		return 'ü'
	case "Auml":
		return 'Ä'
	case "Ouml":
		return 'Ö'
	case "Uuml":
		return 'Ü'
	case "szlig":
		return 'ß'
	case "eacute":
		return 'é'
	case "egrave":
		return 'è'
	case "agrave":
		return 'à'
	case "ccedil":
		return 'ç'
	case "euro":
		return '€'
	case "copy":
		return '©'
	case "reg":
		return '®'
	case "trade":
		return '™'
	case "hellip":
		return '…'
	case "ndash":
		return '–'
	case "mdash":
		return '—'
	case "lsquo":
		return '‘'
	case "rsquo":
		return '’'
	case "sbquo":
		return '‚'
	case "ldquo":
		return '“'
	case "rdquo":
		return '”'
	case "bdquo":
		return '„'
	case "laquo":
		return '«'
	case "raquo":
		return '»'
	case "bull":
		return '•'
	case "middot":
		return '·'
	}
	return 0
}

// charRef decodes the digits of a numeric character reference, "123" or
// "x7B"; invalid code points become U+FFFD.
func charRef(digits []byte) (rune, bool) {
	base := 10
	if len(digits) > 0 && (digits[0] == 'x' || digits[0] == 'X') {
		base, digits = 16, digits[1:]
	}
	if len(digits) == 0 || len(digits) > 8 {
		return 0, false
	}
	n := 0
	for _, c := range digits {
		d := unhex(c)
		if d < 0 || d >= base {
			return 0, false
		}
		n = n*base + d
	}
	if n == 0 || n > utf8.MaxRune {
		return utf8.RuneError, true
	}
	return rune(n), true
}

func isASCIILetter(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isASCIILetterOrDigit(c byte) bool {
	return isASCIILetter(c) || '0' <= c && c <= '9'
}
