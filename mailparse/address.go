package mailparse

import (
	"mime"
	"strings"

	"github.com/emersion/go-message/charset"
)

// GroupMark says whether an Address is a group marker.
type GroupMark uint8

const (
	// NoGroup is an address.
	NoGroup GroupMark = iota
	// GroupStart starts a group (RFC 5322 3.4 group syntax); its Name is
	// the group's display name. The group's members follow it.
	GroupStart
	// GroupEnd ends the group last started.
	GroupEnd
)

// ParseAddresses parses a raw address-list field value (From, To, Cc,
// Resent-To, ...; everything after the colon, folding included), as IMAP's
// ENVELOPE and JMAP's address properties and header forms all present it.
// It reads RFC 5322 3.4 with the obsolete forms of 4.4 (empty list
// elements, "." in display names, CFWS around the dots of an address,
// source routes) and UTF-8 (RFC 6532); display names are RFC 2047 decoded;
// comments are dropped, except that one right after a bare addr-spec names
// the mailbox (RFC 8621 4.1.2.3, as Dovecot does). Groups are kept as
// GroupStart and GroupEnd markers around their members. Broken elements
// are read leniently ("Jane Doe jane@example.com", a missing ">", a local
// name without domain); clean is false when one was.
func ParseAddresses(value []byte) (list []Address, clean bool) {
	dec := mime.WordDecoder{CharsetReader: charset.Reader}
	return parseAddressList(fieldString(value), &dec)
}

// addressParser reads one address list.
type addressParser struct {
	s     string
	i     int
	dec   *mime.WordDecoder
	out   []Address
	clean bool
	// comment is the text of the first comment cfws skipped since
	// comments were last reset, for naming a bare addr-spec.
	comment    string
	hasComment bool
}

func parseAddressList(v string, dec *mime.WordDecoder) ([]Address, bool) {
	p := addressParser{s: v, dec: dec, clean: true}
	inGroup := false
	for {
		p.cfws()
		if p.i >= len(p.s) {
			break
		}
		switch p.s[p.i] {
		case ',':
			p.i++ // obs-addr-list: empty elements
			continue
		case ';':
			p.i++
			if inGroup {
				p.out = append(p.out, Address{Group: GroupEnd})
				inGroup = false
			} else {
				p.clean = false
			}
			continue
		}
		start, n := p.i, len(p.out)
		group, ok := p.address(inGroup)
		switch {
		case ok && group:
			inGroup = true
			continue
		case ok:
			p.cfws()
			if p.i >= len(p.s) || p.s[p.i] == ',' || p.s[p.i] == ';' {
				continue
			}
		}
		// Broken: take the element up to the next separator loosely.
		p.out = p.out[:n]
		p.clean = false
		p.i = start
		end := p.skipElement()
		p.out = p.appendLoose(p.out, p.s[start:end])
	}
	if inGroup {
		// "undisclosed-recipients:" without its ";".
		p.out = append(p.out, Address{Group: GroupEnd})
	}
	if len(p.out) == 0 {
		return nil, p.clean
	}
	return p.out, p.clean
}

// address reads a mailbox or, outside a group, the start of a group
// ("display-name:"), which it reports.
func (p *addressParser) address(inGroup bool) (group, ok bool) {
	start := p.i
	p.hasComment = false
	name, hasPhrase := p.phrase()
	p.cfws()
	if hasPhrase && p.i < len(p.s) {
		switch p.s[p.i] {
		case ':':
			if inGroup {
				return false, false // groups do not nest
			}
			p.i++
			p.out = append(p.out, Address{Name: name, Group: GroupStart})
			return true, true
		case '<':
			a, ok := p.angleAddr()
			if !ok {
				return false, false
			}
			if a.Mailbox != "" || a.Host != "" {
				a.Name = name
				p.out = append(p.out, a)
			}
			return false, true
		}
	}
	if !hasPhrase && p.i < len(p.s) && p.s[p.i] == '<' {
		a, ok := p.angleAddr()
		if ok && (a.Mailbox != "" || a.Host != "") {
			p.out = append(p.out, a)
		}
		return false, ok
	}
	// Not a name-addr: an addr-spec, named by a comment that follows it.
	p.i = start
	a, ok := p.addrSpec()
	if !ok {
		return false, false
	}
	p.hasComment = false
	p.cfws()
	if p.hasComment {
		a.Name = p.decode(p.comment)
	}
	p.out = append(p.out, a)
	return false, true
}

// angleAddr reads "<" [obs-route] addr-spec ">" (p.i at the "<").
func (p *addressParser) angleAddr() (Address, bool) {
	p.i++
	p.cfws()
	var route strings.Builder
	// obs-route: *("," / CFWS) "@" domain *("," [CFWS] ["@" domain]) ":"
	for p.i < len(p.s) && (p.s[p.i] == '@' || p.s[p.i] == ',') {
		if p.s[p.i] == ',' {
			p.i++
			p.cfws()
			continue
		}
		p.i++
		d, ok := p.domain()
		if !ok {
			return Address{}, false
		}
		if route.Len() > 0 {
			route.WriteByte(',')
		}
		route.WriteString("@" + d)
		p.cfws()
		if p.i < len(p.s) && p.s[p.i] == ':' {
			p.i++
			p.cfws()
			break
		}
	}
	a := Address{Route: route.String()}
	if p.i < len(p.s) && p.s[p.i] == '>' {
		p.i++ // "<>": the null address
		return a, true
	}
	spec, ok := p.addrSpec()
	if !ok {
		return Address{}, false
	}
	p.cfws()
	if p.i >= len(p.s) || p.s[p.i] != '>' {
		return Address{}, false
	}
	p.i++
	spec.Route = a.Route
	return spec, true
}

// addrSpec reads local-part ["@" domain]; an address without domain is
// taken as a local name, not clean.
func (p *addressParser) addrSpec() (Address, bool) {
	local, ok := p.localPart()
	if !ok {
		return Address{}, false
	}
	p.cfws()
	if p.i >= len(p.s) || p.s[p.i] != '@' {
		p.clean = false
		return Address{Mailbox: local}, true
	}
	p.i++
	domain, ok := p.domain()
	if !ok {
		return Address{}, false
	}
	return Address{Mailbox: local, Host: domain}, true
}

// localPart reads dot-atom / quoted-string / obs-local-part. A quoted local
// part is unquoted when it is a dot-atom.
func (p *addressParser) localPart() (string, bool) { return p.dotted(true) }

// domain reads dot-atom / domain-literal / obs-domain.
func (p *addressParser) domain() (string, bool) {
	p.cfws()
	if p.i < len(p.s) && p.s[p.i] == '[' {
		end := strings.IndexByte(p.s[p.i:], ']')
		if end < 0 {
			return "", false
		}
		lit := p.s[p.i : p.i+end+1]
		p.i += end + 1
		return strings.Join(strings.Fields(lit), ""), true
	}
	return p.dotted(false)
}

// dotted reads words joined by dots, CFWS between them dropped: atoms, and
// with quotedWords (a local part) quoted strings too.
func (p *addressParser) dotted(quotedWords bool) (string, bool) {
	var b strings.Builder
	for {
		p.cfws()
		if quotedWords && p.i < len(p.s) && p.s[p.i] == '"' {
			q, ok := p.quoted()
			if !ok {
				return "", false
			}
			if isDotAtom(q) {
				b.WriteString(q)
			} else {
				b.WriteString(quoteLocal(q))
			}
		} else {
			a := p.atom()
			if a == "" {
				return "", false
			}
			b.WriteString(a)
		}
		save := p.i
		p.cfws()
		if p.i < len(p.s) && p.s[p.i] == '.' {
			p.i++
			b.WriteByte('.')
			continue
		}
		p.i = save
		return b.String(), true
	}
}

// phrase reads a display name: words (atoms, quoted strings) and, as
// obs-phrase allows, dots, with CFWS between them. It returns the name
// RFC 2047 decoded, words separated by one space where the text had space.
func (p *addressParser) phrase() (string, bool) {
	var b strings.Builder
	words := 0
	for {
		before := p.i
		p.cfws()
		spaced := p.i > before
		if p.i >= len(p.s) {
			break
		}
		var w string
		switch c := p.s[p.i]; {
		case c == '"':
			q, ok := p.quoted()
			if !ok {
				return "", false
			}
			w = q
		case c == '.' && words > 0:
			p.i++
			w = "."
		default:
			if w = p.atom(); w == "" {
				return p.finishPhrase(b.String(), words)
			}
		}
		if spaced && b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
		words++
	}
	return p.finishPhrase(b.String(), words)
}

func (p *addressParser) finishPhrase(s string, words int) (string, bool) {
	if words == 0 {
		return "", false
	}
	return p.decode(s), true
}

func (p *addressParser) decode(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d, err := p.dec.DecodeHeader(s)
	if err != nil {
		return s
	}
	return strings.ToValidUTF8(d, "\uFFFD")
}

// atom reads atext (RFC 5322 3.2.3, and UTF-8 as RFC 6532 allows).
func (p *addressParser) atom() string {
	start := p.i
	for p.i < len(p.s) && isAtext(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func isAtext(c byte) bool {
	switch {
	case c >= 0x80, 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '.' && !isAtext(s[i]) {
			return false
		}
	}
	return true
}

func quoteLocal(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// quoted reads a quoted-string (p.i at its '"') and returns its content,
// quoted-pairs undone, folding removed.
func (p *addressParser) quoted() (string, bool) {
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		switch c := p.s[p.i]; c {
		case '"':
			p.i++
			return b.String(), true
		case '\\':
			if p.i+1 < len(p.s) {
				p.i++
				b.WriteByte(p.s[p.i])
			}
		case '\r', '\n':
		default:
			b.WriteByte(c)
		}
		p.i++
	}
	return "", false
}

// cfws skips whitespace, line breaks and comments (nested, with
// quoted-pairs). The first comment skipped after hasComment was reset is
// kept in comment.
func (p *addressParser) cfws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		case '(':
			start := p.i
			depth := 0
		comment:
			for ; p.i < len(p.s); p.i++ {
				switch p.s[p.i] {
				case '\\':
					p.i++ // the quoted character, if the text goes on
				case '(':
					depth++
				case ')':
					if depth--; depth == 0 {
						p.i++
						break comment
					}
				}
			}
			// A backslash at the very end stepped past it.
			p.i = min(p.i, len(p.s))
			if !p.hasComment {
				p.hasComment = true
				p.comment = commentText(p.s[start:p.i])
			}
		default:
			return
		}
	}
}

// commentText is the text of a comment "(...)": without the outer
// parentheses, quoted-pairs undone, whitespace collapsed.
func commentText(c string) string {
	c = strings.TrimPrefix(c, "(")
	c = strings.TrimSuffix(c, ")")
	if strings.IndexByte(c, '\\') >= 0 {
		var b strings.Builder
		for i := 0; i < len(c); i++ {
			if c[i] == '\\' && i+1 < len(c) {
				i++
			}
			b.WriteByte(c[i])
		}
		c = b.String()
	}
	return strings.Join(strings.Fields(c), " ")
}

// skipElement moves past the broken element starting at p.i, up to the
// next ',' or ';' outside quotes, comments and angle brackets, and returns
// where it ends.
func (p *addressParser) skipElement() int {
	depth, angle := 0, false
	for ; p.i < len(p.s); p.i++ {
		switch c := p.s[p.i]; {
		case c == '"' && depth == 0:
			if end := strings.IndexByte(p.s[p.i+1:], '"'); end >= 0 {
				p.i += end + 1
			} else {
				p.i = len(p.s)
				return p.i
			}
		case c == '\\':
			p.i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case angle:
		case c == ',' || c == ';':
			return p.i
		}
	}
	p.i = min(p.i, len(p.s))
	return p.i
}

// appendLoose makes what it can of a broken element, like
// `John Doe john@example.com`, `"Doe, John" <john@example.com`,
// `a@example.com b@example.com` or a bare local name `root`.
func (p *addressParser) appendLoose(out []Address, piece string) []Address {
	const junk = " \t\r\n<>\"'()[],;:"
	piece = strings.TrimSpace(piece)
	if i := strings.LastIndexByte(piece, '<'); i >= 0 {
		addr := piece[i+1:]
		if j := strings.IndexByte(addr, '>'); j >= 0 {
			addr = addr[:j]
		}
		if addr = strings.Trim(addr, junk); addr == "" {
			return out
		}
		return appendSplit(out, p.decode(strings.Join(strings.Fields(strings.Trim(piece[:i], " \t\"'")), " ")), addr)
	}
	words := strings.Fields(piece)
	if len(words) == 1 {
		if addr := strings.Trim(words[0], junk); addr != "" {
			return appendSplit(out, "", addr)
		}
		return out
	}
	var name, addrs []string
	for _, w := range words {
		if strings.Contains(w, "@") {
			addrs = append(addrs, strings.Trim(w, junk))
		} else {
			name = append(name, w)
		}
	}
	switch {
	case len(addrs) == 1:
		out = appendSplit(out, p.decode(strings.Trim(strings.Join(name, " "), " \t\"'")), addrs[0])
	case len(name) == 0:
		for _, addr := range addrs {
			out = appendSplit(out, "", addr)
		}
	}
	return out
}

// appendSplit appends the Address of a name and "mailbox@host", unless
// both are empty.
func appendSplit(out []Address, name, addr string) []Address {
	mailbox, host := addr, ""
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		mailbox, host = addr[:i], addr[i+1:]
	}
	if mailbox == "" && host == "" {
		return out
	}
	return append(out, Address{Name: name, Mailbox: mailbox, Host: host})
}
