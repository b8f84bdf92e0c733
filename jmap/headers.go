package jmap

import (
	"bytes"
	"mime"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"

	"github.com/mailvault/mailvault/mailparse"
)

// Header fields as RFC 8621 4.1.2 parses them, from the raw bytes.

// rawField is a header field: its name as written and its raw value, all
// that follows the colon (folding line breaks included).
type rawField struct {
	name  string
	value string
}

// parseFields splits a raw header block into fields. Lines that are
// neither a field nor its continuation are skipped, as readers of broken
// mail do; the block ends at the first empty line.
func parseFields(b []byte) []rawField {
	var out []rawField
	for len(b) > 0 {
		end := bytes.IndexByte(b, '\n')
		if end < 0 {
			end = len(b) - 1
		}
		line := b[:end+1]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if n := len(out); n > 0 {
				out[n-1].value += string(line)
			}
			b = b[end+1:]
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon > 0 {
			if name := bytes.TrimRight(line[:colon], " \t"); validFieldName(name) {
				out = append(out, rawField{name: string(name), value: string(line[colon+1:])})
			}
		}
		b = b[end+1:]
	}
	for i := range out {
		out[i].value = strings.TrimRight(out[i].value, "\r\n")
	}
	return out
}

// validFieldName accepts what RFC 5322 allows in a field name (printable
// ASCII but the colon), and 8-bit bytes, which broken mail has.
func validFieldName(name []byte) bool {
	for _, c := range name {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return len(name) > 0
}

// fieldValues returns the raw values of the fields named name.
func fieldValues(fields []rawField, name string) []string {
	var out []string
	for _, f := range fields {
		if strings.EqualFold(f.name, name) {
			out = append(out, f.value)
		}
	}
	return out
}

// headerProp is a parsed "header:{name}[:as{Form}][:all]" property.
type headerProp struct {
	key  string // as the client wrote it: the key of the answer
	name string
	form string // Raw, Text, Addresses, GroupedAddresses, MessageIds, Date, URLs
	all  bool
}

// Forms allowed on standard header fields (RFC 8621 4.1.2); any other
// field allows every form.
var headerForms = map[string][]string{
	"from": {"Addresses", "GroupedAddresses"}, "sender": {"Addresses", "GroupedAddresses"},
	"reply-to": {"Addresses", "GroupedAddresses"}, "to": {"Addresses", "GroupedAddresses"},
	"cc": {"Addresses", "GroupedAddresses"}, "bcc": {"Addresses", "GroupedAddresses"},
	"resent-from": {"Addresses", "GroupedAddresses"}, "resent-sender": {"Addresses", "GroupedAddresses"},
	"resent-reply-to": {"Addresses", "GroupedAddresses"}, "resent-to": {"Addresses", "GroupedAddresses"},
	"resent-cc": {"Addresses", "GroupedAddresses"}, "resent-bcc": {"Addresses", "GroupedAddresses"},
	"message-id": {"MessageIds"}, "in-reply-to": {"MessageIds"}, "references": {"MessageIds"},
	"resent-message-id": {"MessageIds"},
	"date":              {"Date"}, "resent-date": {"Date"},
	"list-help": {"URLs"}, "list-unsubscribe": {"URLs"}, "list-subscribe": {"URLs"},
	"list-post": {"URLs"}, "list-owner": {"URLs"}, "list-archive": {"URLs"},
	"subject": {}, "comments": {}, "keywords": {}, "list-id": {},
}

// parseHeaderProp parses a header property name; ok is false when it is
// not one or asks for a form the field does not allow.
func parseHeaderProp(p string) (headerProp, bool) {
	rest, ok := strings.CutPrefix(p, "header:")
	if !ok {
		return headerProp{}, false
	}
	parts := strings.Split(rest, ":")
	hp := headerProp{key: p, name: parts[0], form: "Raw"}
	if hp.name == "" || strings.ContainsAny(hp.name, " \t") || len(parts) > 3 {
		return headerProp{}, false
	}
	parts = parts[1:]
	if len(parts) > 0 && parts[len(parts)-1] == "all" {
		hp.all = true
		parts = parts[:len(parts)-1]
	}
	if len(parts) == 1 {
		form, ok := strings.CutPrefix(parts[0], "as")
		if !ok {
			return headerProp{}, false
		}
		switch form {
		case "Raw", "Text", "Addresses", "GroupedAddresses", "MessageIds", "Date", "URLs":
			hp.form = form
		default:
			return headerProp{}, false
		}
	} else if len(parts) > 1 {
		return headerProp{}, false
	}
	if allowed, standard := headerForms[strings.ToLower(hp.name)]; standard && hp.form != "Raw" && hp.form != "Text" {
		if !containsString(allowed, hp.form) {
			return headerProp{}, false
		}
	}
	return hp, true
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// value returns the property's value for the given fields: the last
// instance, or all of them with :all.
func (hp headerProp) value(fields []rawField) any {
	vals := fieldValues(fields, hp.name)
	if !hp.all {
		if len(vals) == 0 {
			return nil
		}
		return parseForm(hp.form, vals[len(vals)-1])
	}
	out := make([]any, len(vals))
	for i, v := range vals {
		out[i] = parseForm(hp.form, v)
	}
	return out
}

func parseForm(form, raw string) any {
	switch form {
	case "Raw":
		return strings.ToValidUTF8(raw, "\uFFFD")
	case "Text":
		return asText(raw)
	case "Addresses":
		return asAddresses(raw)
	case "GroupedAddresses":
		return asGroupedAddresses(raw)
	case "MessageIds":
		return asMessageIDs(raw)
	case "Date":
		return asDate(raw)
	case "URLs":
		return asURLs(raw)
	}
	return nil
}

// unfold removes the line breaks of folding (RFC 5322 2.2.3).
func unfold(raw string) string {
	if !strings.ContainsAny(raw, "\r\n") {
		return raw
	}
	return strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(raw)
}

// asText is the Text form: unfolded, RFC 2047 decoded, trimmed.
func asText(raw string) string {
	v := unfold(raw)
	dec := mime.WordDecoder{CharsetReader: charset.Reader}
	if d, err := dec.DecodeHeader(v); err == nil {
		v = d
	}
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	return strings.TrimSpace(v)
}

// emailAddress is RFC 8621's EmailAddress; name is null when absent.
type emailAddress struct {
	Name  *string `json:"name"`
	Email string  `json:"email"`
}

type addressGroup struct {
	Name      *string        `json:"name"`
	Addresses []emailAddress `json:"addresses"`
}

func newEmailAddress(name, addr string) emailAddress {
	a := emailAddress{Email: strings.ToValidUTF8(addr, "\uFFFD")}
	if name = strings.TrimSpace(name); name != "" {
		n := strings.ToValidUTF8(name, "\uFFFD")
		a.Name = &n
	}
	return a
}

// asAddresses is the Addresses form: groups flattened. mailparse's one
// address parser reads it, as it read the envelope that from, to, ...
// come from.
func asAddresses(raw string) []emailAddress {
	list, _ := mailparse.ParseAddresses([]byte(raw))
	return emailAddresses(list)
}

// emailAddresses converts an address list, groups flattened.
func emailAddresses(l []mailparse.Address) []emailAddress {
	out := make([]emailAddress, 0, len(l))
	for _, a := range l {
		if !a.IsGroupMark() {
			out = append(out, newEmailAddress(a.Name, a.Email()))
		}
	}
	return out
}

// asGroupedAddresses is the GroupedAddresses form: addresses outside a
// group form groups with a null name, consecutive ones one group.
func asGroupedAddresses(raw string) []addressGroup {
	list, _ := mailparse.ParseAddresses([]byte(raw))
	out := []addressGroup{}
	inGroup := false
	for _, a := range list {
		switch {
		case a.Group == mailparse.GroupStart:
			name := strings.ToValidUTF8(a.Name, "\uFFFD")
			out = append(out, addressGroup{Name: &name, Addresses: []emailAddress{}})
			inGroup = true
		case a.Group == mailparse.GroupEnd:
			inGroup = false
		default:
			if n := len(out); !inGroup && (n == 0 || out[n-1].Name != nil) {
				out = append(out, addressGroup{Addresses: []emailAddress{}})
			}
			g := &out[len(out)-1]
			g.Addresses = append(g.Addresses, newEmailAddress(a.Name, a.Email()))
		}
	}
	return out
}

// asMessageIDs is the MessageIds form: ids without angle brackets, null
// when there are none.
func asMessageIDs(raw string) []string {
	v := unfold(raw)
	var ids []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(v[i+1 : i+j]); id != "" && !strings.ContainsAny(id, " \t") {
			ids = append(ids, strings.ToValidUTF8(id, "\uFFFD"))
		}
		v = v[i+j+1:]
	}
	return ids
}

// asDate is the Date form: RFC 3339 with the field's own offset, null
// when it cannot be parsed.
func asDate(raw string) any {
	t, err := mail.ParseDate(strings.TrimSpace(unfold(raw)))
	if err != nil {
		return nil
	}
	return t.Format(time.RFC3339)
}

// asURLs is the URLs form: the <...> parts, null when there are none.
func asURLs(raw string) []string {
	var out []string
	v := unfold(raw)
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return out
		}
		out = append(out, strings.ToValidUTF8(strings.TrimSpace(v[i+1:i+j]), "\uFFFD"))
		v = v[i+j+1:]
	}
}
