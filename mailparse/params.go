package mailparse

import (
	"slices"
	"strconv"
	"strings"
)

// maxParams bounds the parameters read from one field, so that garbage
// cannot make assembling RFC 2231 continuations quadratic.
const maxParams = 64

// rawParam is one parameter as written; section is -1 unless it is an
// RFC 2231 continuation (name*0, name*1*, ...).
type rawParam struct {
	name     string
	section  int
	extended bool // name* or name*N*: charset'language'percent-encoded
	value    string
}

// structured splits a Content-Type or Content-Disposition value into its
// main value and parameters (lower-case names, values decoded from RFC 2231
// and RFC 2047). It accepts what real mail contains: unquoted values with
// spaces, missing quotes, stray semicolons.
func (p *parser) structured(v, fieldName string) (string, map[string]string) {
	main, rest, _ := strings.Cut(v, ";")
	var raws []rawParam
	for rest != "" && len(raws) < maxParams {
		rest = strings.TrimLeft(rest, " \t;")
		if rest == "" {
			break
		}
		end := strings.IndexAny(rest, "=;")
		if end < 0 || rest[end] == ';' {
			if end < 0 {
				end = len(rest)
			}
			p.problem("%s: parameter %q without value", fieldName, strings.TrimSpace(rest[:end]))
			rest = rest[end:]
			continue
		}
		rp := rawParam{name: strings.ToLower(strings.TrimSpace(rest[:end])), section: -1}
		rest = strings.TrimLeft(rest[end+1:], " \t")
		if strings.HasPrefix(rest, `"`) {
			var closed bool
			rp.value, rest, closed = unquote(rest[1:])
			if !closed {
				p.problem("%s: unterminated quoted parameter %s", fieldName, rp.name)
			}
		} else {
			end := strings.IndexByte(rest, ';')
			if end < 0 {
				end = len(rest)
			}
			rp.value, rest = strings.TrimSpace(rest[:end]), rest[end:]
		}
		if n, ok := strings.CutSuffix(rp.name, "*"); ok {
			rp.name, rp.extended = n, true
		}
		if i := strings.LastIndexByte(rp.name, '*'); i > 0 {
			if sec, err := strconv.Atoi(rp.name[i+1:]); err == nil && sec >= 0 {
				rp.name, rp.section = rp.name[:i], sec
			}
		}
		if rp.name != "" {
			raws = append(raws, rp)
		}
	}
	if len(raws) == 0 {
		return main, nil
	}
	params := make(map[string]string, len(raws))
	for i, rp := range raws {
		if _, done := params[rp.name]; done {
			continue
		}
		switch {
		case rp.section >= 0:
			params[rp.name] = p.continued(raws[i:], rp.name, fieldName)
		case rp.extended:
			params[rp.name] = p.extendedValue(rp.value, fieldName)
		default:
			// An RFC 2231 form of the same parameter wins over the plain one.
			if j := slices.IndexFunc(raws[i+1:], func(o rawParam) bool { return o.name == rp.name && (o.extended || o.section >= 0) }); j >= 0 {
				continue
			}
			params[rp.name] = p.decodeWords(rp.value)
		}
	}
	return main, params
}

// unquote reads a quoted-string body up to the closing quote and returns
// the value, the rest after the quote, and whether the quote was closed.
func unquote(s string) (value, rest string, closed bool) {
	end := strings.IndexByte(s, '"')
	if end < 0 {
		return s, "", false
	}
	if !strings.Contains(s[:end], `\`) {
		return s[:end], s[end+1:], true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), "", false
}

// continued assembles the RFC 2231 continuation sections of parameter name
// from raws, in section order.
func (p *parser) continued(raws []rawParam, name, fieldName string) string {
	var sections []rawParam
	for _, rp := range raws {
		if rp.name == name && rp.section >= 0 {
			sections = append(sections, rp)
		}
	}
	slices.SortStableFunc(sections, func(a, b rawParam) int { return a.section - b.section })
	if !sections[0].extended {
		var b strings.Builder
		for _, s := range sections {
			b.WriteString(s.value)
		}
		return p.decodeWords(b.String())
	}
	// Only the first section carries charset'language'; later extended
	// sections are percent-encoded in that charset, plain ones are literal.
	label, _, first := splitExtended(sections[0].value)
	buf := percentDecode(nil, first)
	for _, s := range sections[1:] {
		if s.extended {
			buf = percentDecode(buf, s.value)
		} else {
			buf = append(buf, s.value...)
		}
	}
	return p.charsetString(buf, label, fieldName)
}

// extendedValue decodes a single RFC 2231 value charset'language'%XX...
func (p *parser) extendedValue(v, fieldName string) string {
	label, _, encoded := splitExtended(v)
	return p.charsetString(percentDecode(nil, encoded), label, fieldName)
}

// splitExtended splits charset'language'value; a value without the two
// quotes is taken as all value.
func splitExtended(v string) (label, lang, value string) {
	label, rest, ok := strings.Cut(v, "'")
	if !ok {
		return "", "", v
	}
	lang, value, ok = strings.Cut(rest, "'")
	if !ok {
		return "", "", v
	}
	return label, lang, value
}

func percentDecode(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if hi, lo := unhex(s[i+1]), unhex(s[i+2]); hi >= 0 && lo >= 0 {
				dst = append(dst, byte(hi<<4|lo))
				i += 2
				continue
			}
		}
		dst = append(dst, s[i])
	}
	return dst
}

// charsetString converts b from charset label to a UTF-8 string.
func (p *parser) charsetString(b []byte, label, fieldName string) string {
	out, _, err := toUTF8(nil, b, label)
	if err != nil {
		p.problem("%s: %v", fieldName, err)
	}
	return string(out)
}
