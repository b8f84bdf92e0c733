package dirsync

import (
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// normDN returns a DN in a canonical form for comparing the DNs of entries
// with member and memberOf values: attribute types and values lower-cased,
// escaping, spacing and the order inside multi-valued RDNs normalised. An
// unparsable DN is only lower-cased, so it still matches itself.
func normDN(dn string) string {
	d, err := ldap.ParseDN(dn)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(dn))
	}
	var b strings.Builder
	b.Grow(len(dn))
	var parts []string
	for i, rdn := range d.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		parts = parts[:0]
		for _, a := range rdn.Attributes {
			lower := ldap.AttributeTypeAndValue{Type: a.Type, Value: foldValue(a.Value)}
			parts = append(parts, lower.String())
		}
		slices.Sort(parts)
		b.WriteString(strings.Join(parts, "+"))
	}
	return b.String()
}

// foldValue lower-cases a DN value; bytes that are not UTF-8 are kept (the
// Unicode mapping would turn all of them into the same replacement rune).
func foldValue(v string) string {
	if utf8.ValidString(v) {
		return strings.ToLower(v)
	}
	b := []byte(v)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// stableID turns the raw value of the id attribute into text. objectGUID is
// 16 bytes whose first three fields are little-endian; it becomes the GUID
// as Windows writes it. Text ids (entryUUID) stay as they are, and anything
// else becomes hex.
func stableID(raw []byte, guid bool) string {
	if guid && len(raw) == 16 {
		var b [16]byte
		copy(b[:], raw)
		b[0], b[1], b[2], b[3] = b[3], b[2], b[1], b[0]
		b[4], b[5] = b[5], b[4]
		b[6], b[7] = b[7], b[6]
		h := hex.EncodeToString(b[:])
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	}
	if len(raw) > 0 && utf8.Valid(raw) && !strings.ContainsFunc(string(raw), func(r rune) bool { return r < ' ' }) {
		return strings.ToLower(string(raw))
	}
	return hex.EncodeToString(raw)
}

// proxyAddresses splits Exchange's proxyAddresses values: "SMTP:" marks the
// primary address, "smtp:" the others; X500:, SIP: and the like are no mail
// addresses.
func proxyAddresses(values []string) (primary string, aliases []string) {
	for _, v := range values {
		kind, addr, ok := strings.Cut(strings.TrimSpace(v), ":")
		addr = strings.TrimSpace(addr)
		if !ok || addr == "" || !strings.EqualFold(kind, "smtp") {
			continue
		}
		if kind == "SMTP" && primary == "" {
			primary = addr
		} else {
			aliases = append(aliases, addr)
		}
	}
	return primary, aliases
}

// rangeAttr parses the name Active Directory gives a part of a large
// multi-valued attribute, "member;range=0-1499"; last is true for the final
// part ("member;range=1500-*"). ok is false for any other name.
func rangeAttr(name, attr string) (low, high int, last, ok bool) {
	base, opt, found := strings.Cut(name, ";")
	if !found || !strings.EqualFold(base, attr) {
		return 0, 0, false, false
	}
	r, found := strings.CutPrefix(strings.ToLower(opt), "range=")
	if !found {
		return 0, 0, false, false
	}
	lo, hi, found := strings.Cut(r, "-")
	if !found {
		return 0, 0, false, false
	}
	low, err := strconv.Atoi(lo)
	if err != nil || low < 0 {
		return 0, 0, false, false
	}
	if hi == "*" {
		return low, 0, true, true
	}
	high, err = strconv.Atoi(hi)
	if err != nil || high < low {
		return 0, 0, false, false
	}
	return low, high, false, true
}

// groupName turns a directory group's name into a tenant group name:
// lower case, blanks and "@" replaced by "-".
func groupName(cn string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '@', '\r', '\n':
			return '-'
		}
		return r
	}, strings.ToLower(strings.TrimSpace(cn)))
}
