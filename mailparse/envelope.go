package mailparse

import (
	"strings"
	"time"
)

// envelope fills env from the header fields of a message.
func (p *parser) envelope(env *Envelope, idx *fieldIndex) {
	if v, ok := p.value(idx, kindDate); ok {
		env.Date = p.date(v)
		// IMAP's ENVELOPE wants the field as written. Most fields are
		// written as the parsed time formats, and those are not stored
		// twice; one with control characters (NUL cannot be sent) is not
		// stored at all.
		var buf [len(EnvelopeDateLayout) + 8]byte
		if v != "" && noControls(v) && (env.Date.IsZero() || string(env.Date.AppendFormat(buf[:0], EnvelopeDateLayout)) != v) {
			env.RawDate = v
		}
	}
	if v, ok := p.value(idx, kindSubject); ok {
		env.Subject = p.decodeWords(v)
	}
	env.From = p.addressField(idx, kindFrom, "From")
	env.Sender = p.addressField(idx, kindSender, "Sender")
	env.ReplyTo = p.addressField(idx, kindReplyTo, "Reply-To")
	env.To = p.addressField(idx, kindTo, "To")
	env.Cc = p.addressField(idx, kindCc, "Cc")
	env.Bcc = p.addressField(idx, kindBcc, "Bcc")
	// RFC 3501 7.4.2: the server defaults Sender and Reply-To to From.
	// A field that is there but names nobody stays empty for JMAP, whose
	// sender and replyTo are what the fields say; IMAP writes From then.
	if env.Sender == nil {
		env.Sender = env.From
		if _, ok := p.value(idx, kindSender); ok && len(env.From) > 0 {
			env.Sender = []Address{}
		}
	}
	if env.ReplyTo == nil {
		env.ReplyTo = env.From
		if _, ok := p.value(idx, kindReplyTo); ok && len(env.From) > 0 {
			env.ReplyTo = []Address{}
		}
	}
	if v, ok := p.value(idx, kindInReplyTo); ok {
		env.InReplyTo = msgIDs(v)
	}
	if v, ok := p.value(idx, kindMessageID); ok {
		if ids := msgIDs(v); len(ids) > 0 {
			env.MessageID = ids[0]
		}
	}
}

// noControls reports whether s has no control characters but tabs.
func noControls(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// msgIDs returns the message identifiers in a Message-ID, In-Reply-To or
// References value without their angle brackets. Identifiers written without
// brackets are taken word by word when there are no brackets at all.
func msgIDs(v string) []string {
	var ids []string
	rest := v
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		rest = rest[i+1:]
		j := strings.IndexByte(rest, '>')
		if j < 0 {
			j = len(rest)
		}
		if id := strings.TrimSpace(rest[:j]); id != "" {
			ids = append(ids, id)
		}
		rest = rest[min(j+1, len(rest)):]
	}
	if ids == nil && !strings.Contains(v, "<") {
		for id := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			ids = append(ids, id)
		}
	}
	return ids
}

// addressField parses the field of kind k as an address list.
func (p *parser) addressField(idx *fieldIndex, k int, fieldName string) []Address {
	v, ok := p.value(idx, k)
	if !ok || v == "" {
		return nil
	}
	list, clean := parseAddressList(v, &p.words)
	if !clean {
		p.problem("%s: malformed address list %q, read leniently", fieldName, v)
	}
	return list
}

// date parses a Date value leniently (RFC 5322 with its obsolete forms,
// asctime, ISO dates, comments, missing seconds or zone) and clamps it to
// the years 1900..2200. Unparsable dates are the zero time.
func (p *parser) date(v string) time.Time {
	t, ok := parseDate(v)
	if !ok {
		p.problem("unparsable Date %q", v)
		return time.Time{}
	}
	switch y := t.Year(); {
	case y < 1900:
		p.problem("Date %q before 1900, clamped", v)
		return time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	case y > 2200:
		p.problem("Date %q after 2200, clamped", v)
		return time.Date(2200, 12, 31, 23, 59, 59, 0, time.UTC)
	}
	return t
}

func parseDate(s string) (time.Time, bool) {
	day, month, year := -1, -1, -1
	hour, minute, sec := 0, 0, 0
	offset, pm := 0, false
	for s != "" {
		c := s[0]
		if c == ' ' || c == '\t' || c == ',' || c == '.' {
			s = s[1:]
			continue
		}
		if c == '(' {
			s = skipComment(s)
			continue
		}
		end := strings.IndexAny(s, " \t,(")
		if end < 0 {
			end = len(s)
		}
		tok := s[:end]
		s = s[end:]
		switch {
		case strings.IndexByte(tok, ':') > 0:
			// "13:16:04", possibly with the zone attached: "13:16:04+0100".
			if i := strings.IndexAny(tok, "+-"); i > 0 {
				if off, ok := parseOffset(tok[i:]); ok {
					offset = off
				}
				tok = tok[:i]
			}
			var ok bool
			if hour, minute, sec, ok = parseClock(tok); !ok {
				return time.Time{}, false
			}
		case tok[0] == '+' || tok[0] == '-':
			if off, ok := parseOffset(tok); ok {
				offset = off
			}
		case isDigits(tok):
			n := atoi(tok)
			switch {
			case year < 0 && (len(tok) >= 3 || n > 31):
				year = fullYear(n, len(tok))
			case day < 0:
				day = n
			case year < 0:
				year = fullYear(n, len(tok))
			}
		case strings.ContainsAny(tok, "-/") && tok[0] >= '0' && tok[0] <= '9':
			// "2011-02-14", "14-Feb-2011", "2011/02/14".
			f := strings.FieldsFunc(tok, func(r rune) bool { return r == '-' || r == '/' })
			if len(f) != 3 {
				return time.Time{}, false
			}
			if len(f[0]) == 4 && isDigits(f[0]) && isDigits(f[1]) && isDigits(f[2]) {
				year, month, day = atoi(f[0]), atoi(f[1]), atoi(f[2])
			} else if m := monthNumber(f[1]); m > 0 && isDigits(f[0]) && isDigits(f[2]) {
				day, month, year = atoi(f[0]), m, fullYear(atoi(f[2]), len(f[2]))
			} else {
				return time.Time{}, false
			}
		default:
			if m := monthNumber(tok); m > 0 {
				month = m
			} else if off, ok := zoneOffset(tok); ok {
				offset = off
			} else if strings.EqualFold(tok, "PM") {
				pm = true
			}
			// Day names and unknown words are ignored.
		}
	}
	if day < 1 || day > 31 || month < 1 || year < 0 || hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, false
	}
	if pm && hour < 12 {
		hour += 12
	}
	sec = min(sec, 59) // a leap second
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.FixedZone("", offset))
	if t.Day() != day {
		return time.Time{}, false // 30 February
	}
	return t, true
}

// skipComment skips the (possibly nested) comment s starts with.
func skipComment(s string) string {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return s[i+1:]
			}
		}
	}
	return ""
}

func parseClock(tok string) (hour, minute, sec int, ok bool) {
	h, rest, _ := strings.Cut(tok, ":")
	m, s, hasSec := strings.Cut(rest, ":")
	if !isDigits(h) || !isDigits(m) || len(h) > 2 || len(m) > 2 || hasSec && (!isDigits(s) || len(s) > 2) {
		return 0, 0, 0, false
	}
	if hasSec {
		sec = atoi(s)
	}
	return atoi(h), atoi(m), sec, true
}

// parseOffset parses "+hhmm" or "+hh:mm" into seconds east of UTC.
func parseOffset(tok string) (int, bool) {
	sign := 1
	if tok[0] == '-' {
		sign = -1
	}
	digits := strings.Replace(tok[1:], ":", "", 1)
	if len(digits) != 4 || !isDigits(digits) {
		return 0, false
	}
	h, m := atoi(digits[:2]), atoi(digits[2:])
	if h > 23 || m > 59 {
		return 0, false
	}
	return sign * (h*3600 + m*60), true
}

// zoneNames are the zone names RFC 5322 4.3 defines, plus UTC. Other names
// (military, CET, ...) are ignored, that is, taken as UTC.
var zoneNames = [...]struct {
	name   string
	offset int
}{
	{"UT", 0}, {"UTC", 0}, {"GMT", 0}, {"Z", 0},
	{"EDT", -4 * 3600}, {"EST", -5 * 3600}, {"CDT", -5 * 3600}, {"CST", -6 * 3600},
	{"MDT", -6 * 3600}, {"MST", -7 * 3600}, {"PDT", -7 * 3600}, {"PST", -8 * 3600},
}

// zoneOffset returns the offset of a zone name, or of "GMT+0100".
func zoneOffset(tok string) (int, bool) {
	for _, prefix := range [...]string{"GMT", "UTC", "UT"} {
		if len(tok) > len(prefix) && strings.EqualFold(tok[:len(prefix)], prefix) && (tok[len(prefix)] == '+' || tok[len(prefix)] == '-') {
			return parseOffset(tok[len(prefix):])
		}
	}
	for _, z := range zoneNames {
		if strings.EqualFold(tok, z.name) {
			return z.offset, true
		}
	}
	return 0, false
}

func monthNumber(tok string) int {
	if len(tok) < 3 {
		return 0
	}
	for i, name := range [...]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"} {
		if strings.EqualFold(tok[:3], name) {
			return i + 1
		}
	}
	return 0
}

// fullYear applies RFC 5322 4.3 to two- and three-digit years.
func fullYear(n, digits int) int {
	switch {
	case digits <= 2 && n < 50:
		return n + 2000
	case digits <= 3:
		return n + 1900
	}
	return n
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// atoi converts a string of digits, saturating instead of overflowing.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = min(n*10+int(s[i]-'0'), 1<<30)
	}
	return n
}
