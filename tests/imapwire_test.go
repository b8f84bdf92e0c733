package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// wireConn is a minimal IMAP client that returns responses as they came,
// literals inlined, over a socket or a process's pipes.
type wireConn struct {
	t  testing.TB
	w  io.Writer
	r  *bufio.Reader
	dl func(time.Time) error // read deadline, nil for pipes
	// kill ends a peer that does not answer in time, when there is no
	// deadline to set.
	kill func()
	cmd  string // the command being answered, for errors
	tag  int
}

func dialWire(t testing.TB, addr string) *wireConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &wireConn{t: t, w: conn, r: bufio.NewReader(conn), dl: conn.SetReadDeadline}
	if g := c.line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	return c
}

// line reads one response line; a literal {n} is followed by its n bytes.
func (c *wireConn) line() string {
	c.t.Helper()
	if c.dl != nil {
		c.dl(time.Now().Add(30 * time.Second))
	} else if c.kill != nil {
		defer time.AfterFunc(30*time.Second, c.kill).Stop()
	}
	var b strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read the answer to %.80q: %v (so far %.200q)", c.cmd, err, b.String())
		}
		l = strings.TrimSuffix(l, "\r\n")
		b.WriteString(l)
		if !strings.HasSuffix(l, "}") {
			return b.String()
		}
		i := strings.LastIndexByte(l, '{')
		n, err := strconv.Atoi(strings.TrimSuffix(l[i+1:len(l)-1], "+"))
		if i < 0 || err != nil {
			return b.String()
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			c.t.Fatal(err)
		}
		b.Write(buf)
	}
}

// do sends a command (literals must be LITERAL+) and returns the untagged
// lines and the tagged status line without the tag.
func (c *wireConn) do(cmd string) (untagged []string, status string) {
	c.t.Helper()
	c.tag++
	tag := fmt.Sprintf("t%d", c.tag)
	c.cmd = cmd
	if _, err := fmt.Fprintf(c.w, "%s %s\r\n", tag, cmd); err != nil {
		c.t.Fatal(err)
	}
	for {
		l := c.line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, l)
	}
}

func (c *wireConn) ok(cmd string) []string {
	c.t.Helper()
	u, st := c.do(cmd)
	if !strings.HasPrefix(st, "OK") {
		c.t.Fatalf("%s: %s", cmd, st)
	}
	return u
}

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
