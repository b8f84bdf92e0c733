package journal

import "strings"

// Address is an envelope recipient of a journal transaction taken apart.
// Journaling MTAs without a report format can encode the original envelope
// in the journal address's detail part, one RCPT per address:
// journal+rcpt=bob=acme.example@archive.example names the recipient
// bob@acme.example, journal+from=alice=acme.example@... the sender (the last
// "=" stands for "@", as domains cannot contain "=").
type Address struct {
	Base      string // the address without its +detail: journal@archive.example
	Sender    string // decoded from=…, or ""
	Recipient string // decoded rcpt=… (or to=…), or ""
}

// ParseAddress splits an envelope address. Addresses without a detail part
// or with one that encodes nothing come back with only Base set.
func ParseAddress(addr string) Address {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return Address{Base: addr}
	}
	local, domain := addr[:at], addr[at:]
	plus := strings.IndexByte(local, '+')
	if plus < 0 {
		return Address{Base: addr}
	}
	a := Address{Base: local[:plus] + domain}
	kind, enc, ok := strings.Cut(local[plus+1:], "=")
	if !ok {
		return a
	}
	eq := strings.LastIndexByte(enc, '=')
	if eq <= 0 || eq == len(enc)-1 {
		return a
	}
	decoded := enc[:eq] + "@" + enc[eq+1:]
	switch strings.ToLower(kind) {
	case "rcpt", "to":
		a.Recipient = decoded
	case "from":
		a.Sender = decoded
	}
	return a
}
