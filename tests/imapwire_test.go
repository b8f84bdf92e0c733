package tests

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// wireValue is a parsed piece of a response: an atom, a string (quoted or
// literal, which mean the same), NIL or a parenthesized list.
type wireValue struct {
	kind byte // 'a', 's', 'n', 'l'
	s    string
	list []wireValue
}

// parseWire parses the values of a response line.
func parseWire(s string) ([]wireValue, error) {
	p := &wireParser{s: s}
	var out []wireValue
	for {
		p.space()
		if p.i >= len(p.s) {
			return out, nil
		}
		v, err := p.value()
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
}

type wireParser struct {
	s string
	i int
}

func (p *wireParser) space() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *wireParser) value() (wireValue, error) {
	switch c := p.s[p.i]; {
	case c == '(':
		p.i++
		var l []wireValue
		for {
			p.space()
			if p.i >= len(p.s) {
				return wireValue{}, fmt.Errorf("unterminated list")
			}
			if p.s[p.i] == ')' {
				p.i++
				return wireValue{kind: 'l', list: l}, nil
			}
			v, err := p.value()
			if err != nil {
				return v, err
			}
			l = append(l, v)
		}
	case c == '"':
		var b strings.Builder
		for p.i++; p.i < len(p.s); p.i++ {
			switch p.s[p.i] {
			case '\\':
				p.i++
				if p.i < len(p.s) {
					b.WriteByte(p.s[p.i])
				}
			case '"':
				p.i++
				return wireValue{kind: 's', s: b.String()}, nil
			default:
				b.WriteByte(p.s[p.i])
			}
		}
		return wireValue{}, fmt.Errorf("unterminated string")
	case c == '{' || c == '~' && p.i+1 < len(p.s) && p.s[p.i+1] == '{':
		j := strings.IndexByte(p.s[p.i:], '}')
		if j < 0 {
			return wireValue{}, fmt.Errorf("bad literal")
		}
		start := p.i + strings.IndexByte(p.s[p.i:], '{') + 1
		n, err := strconv.Atoi(strings.TrimSuffix(p.s[start:p.i+j], "+"))
		if err != nil || p.i+j+1+n > len(p.s) {
			return wireValue{}, fmt.Errorf("bad literal")
		}
		v := wireValue{kind: 's', s: p.s[p.i+j+1 : p.i+j+1+n]}
		p.i += j + 1 + n
		return v, nil
	default:
		// An atom; a section spec such as BODY[HEADER.FIELDS (A B)]<0>
		// belongs to it up to the closing bracket.
		start, depth := p.i, 0
		for ; p.i < len(p.s); p.i++ {
			c := p.s[p.i]
			if c == '[' {
				depth++
			} else if c == ']' {
				depth--
			} else if depth == 0 && (c == ' ' || c == '(' || c == ')') {
				break
			}
		}
		a := p.s[start:p.i]
		if strings.EqualFold(a, "NIL") {
			return wireValue{kind: 'n'}, nil
		}
		return wireValue{kind: 'a', s: a}, nil
	}
}

// String writes a value in one canonical form.
func (v wireValue) String() string {
	switch v.kind {
	case 'n':
		return "NIL"
	case 's':
		return strconv.Quote(v.s)
	case 'l':
		parts := make([]string, len(v.list))
		for i, e := range v.list {
			parts[i] = e.String()
		}
		return "(" + strings.Join(parts, " ") + ")"
	}
	return v.s
}

// fetchItems parses "* n FETCH (...)" into its sequence number and items,
// keyed by the upper-cased item name.
func fetchItems(line string) (int, map[string]wireValue, bool) {
	rest, ok := strings.CutPrefix(line, "* ")
	if !ok {
		return 0, nil, false
	}
	num, rest, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, nil, false
	}
	body, ok := strings.CutPrefix(rest, "FETCH ")
	if !ok {
		return 0, nil, false
	}
	vs, err := parseWire(body)
	if err != nil || len(vs) != 1 || vs[0].kind != 'l' || len(vs[0].list)%2 != 0 {
		return 0, nil, false
	}
	items := map[string]wireValue{}
	for i := 0; i < len(vs[0].list); i += 2 {
		items[strings.ToUpper(vs[0].list[i].s)] = vs[0].list[i+1]
	}
	return n, items, true
}

// sortedFlags returns a flag list in a canonical order.
func sortedFlags(v wireValue) string {
	var fl []string
	for _, f := range v.list {
		fl = append(fl, f.s)
	}
	slices.Sort(fl)
	return "(" + strings.Join(fl, " ") + ")"
}
