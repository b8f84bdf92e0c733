package journal

import (
	"bytes"
	"mime"
	"strings"
	"unicode/utf8"
)

// Format tells how a journaled copy reached the archive.
type Format int

const (
	// Plain is the original message itself (BCC, Google Workspace, Postfix
	// journaling), or anything that could not be unwrapped.
	Plain Format = iota
	// Exchange is an Exchange / Microsoft 365 envelope journal report with
	// the original attached.
	Exchange
)

func (f Format) String() string {
	if f == Exchange {
		return "exchange"
	}
	return "plain"
}

// Recipient is one envelope recipient a journal copy names.
type Recipient struct {
	Address string
	// Field is how the recipient was addressed: To, Cc, Bcc or Recipient
	// (addressing unknown) in a report; the header it came from in a plain
	// copy.
	Field string
	// Expanded is the distribution list Address was expanded from;
	// Forwarded the recipient whose mail was redirected to Address.
	Expanded  string
	Forwarded string
}

// Copy is what a journaled message says about itself.
type Copy struct {
	Format Format
	// Original is the journaled message. For a report it is the attached
	// original, byte-exact: a sub-slice of the input unless the attachment
	// carried a transfer encoding. Otherwise it is the whole input.
	Original   []byte
	Sender     string
	OnBehalfOf string
	Subject    string
	MessageID  string
	Recipients []Recipient
	// Problem says why a message that announced itself as a journal report
	// is taken as Plain; empty otherwise.
	Problem string
}

// Addresses lists each address the copy names once: recipients and also the
// lists and forwarding sources they came through, as those were addressed
// too and their archives keep the message.
func (c *Copy) Addresses() []string {
	if len(c.Recipients) == 0 {
		return nil
	}
	var out []string
	seen := make(map[string]struct{}, len(c.Recipients))
	add := func(a string) {
		if a == "" {
			return
		}
		k := strings.ToLower(a)
		if _, ok := seen[k]; ok {
			return
		}
		seen[k] = struct{}{}
		out = append(out, a)
	}
	for _, r := range c.Recipients {
		add(r.Address)
		add(r.Expanded)
		add(r.Forwarded)
	}
	return out
}

// deliveryHeaders name envelope recipients in plain copies, added by the
// delivering (journaling) hop: Google Workspace's X-Gm-Original-To,
// Postfix's X-Original-To and Delivered-To, and X-Envelope-To (Exim, qmail).
var deliveryHeaders = []string{"X-Gm-Original-To", "X-Original-To", "Delivered-To", "X-Envelope-To"}

// Parse reads a journaled message. It never fails: a message that is not a
// report, or a report that cannot be unwrapped (see Copy.Problem), is a
// Plain copy of itself.
func Parse(raw []byte) Copy {
	var (
		report      bool
		contentType []byte
		delivered   []Recipient
	)
	bodyStart := fields(raw, func(name, value []byte) {
		switch {
		case bytes.EqualFold(name, []byte("X-MS-Journal-Report")):
			report = true
		case bytes.EqualFold(name, []byte("Content-Identifier")):
			if strings.EqualFold(unfold(value), "exjournalreport") {
				report = true
			}
		case bytes.EqualFold(name, []byte("Content-Type")):
			contentType = value
		default:
			for _, h := range deliveryHeaders {
				if bytes.EqualFold(name, []byte(h)) {
					for _, a := range strings.Split(unfold(value), ",") {
						if a = address(a); a != "" {
							delivered = append(delivered, Recipient{Address: a, Field: h})
						}
					}
				}
			}
		}
	})
	plain := Copy{Format: Plain, Original: raw, Recipients: delivered}
	if !report {
		return plain
	}
	c, problem := parseReport(raw[bodyStart:], unfold(contentType))
	if problem != "" {
		plain.Problem = problem
		return plain
	}
	return c
}

// parseReport unwraps the body of an envelope journal report: a multipart
// whose text/plain part lists the envelope and whose message/rfc822 part is
// the original.
func parseReport(body []byte, contentType string) (Copy, string) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		return Copy{}, "journal report is not multipart (Content-Type " + quote(contentType) + ")"
	}
	boundary := params["boundary"]
	if boundary == "" {
		return Copy{}, "journal report has no multipart boundary"
	}
	c := Copy{Format: Exchange}
	haveEnvelope := false
	parts, closed := splitMultipart(body, boundary)
	if !closed {
		return Copy{}, "journal report truncated: its multipart boundary is never closed"
	}
	for _, part := range parts {
		var ctype, cte []byte
		start := fields(part, func(name, value []byte) {
			switch {
			case bytes.EqualFold(name, []byte("Content-Type")):
				ctype = value
			case bytes.EqualFold(name, []byte("Content-Transfer-Encoding")):
				cte = value
			}
		})
		pt := "text/plain"
		if len(ctype) > 0 {
			pt, _, _ = mime.ParseMediaType(unfold(ctype))
		}
		content := part[start:]
		switch {
		case pt == "message/rfc822" && c.Original == nil:
			if strings.EqualFold(unfold(cte), "base64") && base64Cut(content) {
				return Copy{}, "journal report truncated: the base64 of the attached original is cut off"
			}
			c.Original = decode(unfold(cte), content)
		case pt == "text/plain" && !haveEnvelope:
			haveEnvelope = true
			parseEnvelope(decode(unfold(cte), content), &c)
		}
	}
	if len(c.Original) == 0 {
		return Copy{}, "journal report without the original attached (no message/rfc822 part)"
	}
	return c, ""
}

// parseEnvelope reads the report text ([MS-XJRNL] 2.2): "Sender:",
// "Subject:", "Message-ID:", "On-Behalf-Of:" and one line per recipient,
// "To: member@x, Expanded: list@x" or "Cc: fwd@x, Forwarded: user@x", with
// "Recipient:" where the addressing is unknown. Exchange 2003 listed
// recipients comma-separated on "Recipients:" lines; those read the same.
func parseEnvelope(text []byte, c *Copy) {
	for len(text) > 0 {
		var line []byte
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			line, text = text, nil
		}
		name, value, ok := bytes.Cut(bytes.TrimSpace(line), []byte(":"))
		if !ok {
			continue
		}
		v := strings.TrimSpace(string(value))
		switch strings.ToLower(string(bytes.TrimSpace(name))) {
		case "sender":
			if c.Sender == "" {
				c.Sender = address(v)
			}
		case "on-behalf-of":
			c.OnBehalfOf = address(v)
		case "subject":
			c.Subject = strings.ToValidUTF8(v, string(utf8.RuneError))
		case "message-id":
			c.MessageID = v
		case "to":
			c.Recipients = appendRecipients(c.Recipients, "To", v)
		case "cc":
			c.Recipients = appendRecipients(c.Recipients, "Cc", v)
		case "bcc":
			c.Recipients = appendRecipients(c.Recipients, "Bcc", v)
		case "recipient", "recipients":
			c.Recipients = appendRecipients(c.Recipients, "Recipient", v)
		}
	}
}

// appendRecipients reads "a@x, Expanded: dl@x" and comma lists of
// addresses; an Expanded:/Forwarded: item qualifies the address before it.
func appendRecipients(rs []Recipient, field, v string) []Recipient {
	first := len(rs)
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		kind, rest, hasKind := strings.Cut(item, ":")
		if hasKind && len(rs) > first {
			last := &rs[len(rs)-1]
			switch strings.ToLower(strings.TrimSpace(kind)) {
			case "expanded":
				last.Expanded = address(rest)
				continue
			case "forwarded":
				last.Forwarded = address(rest)
				continue
			}
		}
		if a := address(item); a != "" {
			rs = append(rs, Recipient{Address: a, Field: field})
		}
	}
	return rs
}

// address takes the bare address out of "a@x", "<a@x>" or "Name <a@x>";
// anything without an "@" is no address.
func address(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		s = s[i+1:]
		if j := strings.IndexByte(s, '>'); j >= 0 {
			s = s[:j]
		}
	}
	s = strings.TrimSpace(strings.Trim(s, "<> \t"))
	if !strings.Contains(s, "@") || strings.ContainsAny(s, " \t\r\n") || !utf8.ValidString(s) {
		return ""
	}
	return s
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return `"` + strings.ToValidUTF8(s, "?") + `"`
}
