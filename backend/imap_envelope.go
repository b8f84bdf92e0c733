package backend

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/mailvault/mailvault/mailparse"
)

// decodeEnvelope returns the envelope of a stored summary's JSON
// (MarshalBinary's, which starts with the envelope; see splitRecord),
// decoding nothing else.
func decodeEnvelope(rec []byte) (*mailparse.Envelope, error) {
	if env, ok := scanEnvelope(rec); ok {
		return env, nil
	}
	dec := json.NewDecoder(bytes.NewReader(rec))
	if tok, err := dec.Token(); err == nil && tok == json.Delim('{') {
		if key, err := dec.Token(); err == nil && key == "e" {
			var env mailparse.Envelope
			if err := dec.Decode(&env); err != nil {
				return nil, fmt.Errorf("envelope: %w", err)
			}
			return &env, nil
		}
	}
	var s mailparse.Summary
	if err := s.UnmarshalBinary(rec); err != nil {
		return nil, err
	}
	return &s.Envelope, nil
}

// scanEnvelope is decodeEnvelope's fast path: listing a folder decodes one
// envelope per message, and encoding/json's reflection was most of that
// cost. It reads exactly what encoding/json writes for an Envelope and
// gives up (ok false) on anything else, leaving that to encoding/json.
// Strings are substrings of one copy of the envelope's bytes.
func scanEnvelope(rec []byte) (env *mailparse.Envelope, ok bool) {
	const prefix = `{"e":`
	if !bytes.HasPrefix(rec, []byte(prefix)) {
		return nil, false
	}
	end, ok := objectEnd(rec, len(prefix))
	if !ok {
		return nil, false
	}
	sc := envScanner{s: string(rec[len(prefix):end])}
	env = new(mailparse.Envelope)
	if !sc.envelope(env) || sc.i != len(sc.s) {
		return nil, false
	}
	// As Envelope.UnmarshalJSON: Sender and ReplyTo are stored only when
	// they differ from From.
	if env.Sender == nil {
		env.Sender = env.From
	}
	if env.ReplyTo == nil {
		env.ReplyTo = env.From
	}
	return env, true
}

// objectEnd returns the offset after the JSON object starting at b[i].
func objectEnd(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		}
	}
	return 0, false
}

type envScanner struct {
	s string
	i int
	// slab backs every address list of the envelope: one allocation
	// instead of one or more per list.
	slab []mailparse.Address
}

func (sc *envScanner) next(c byte) bool {
	if sc.i < len(sc.s) && sc.s[sc.i] == c {
		sc.i++
		return true
	}
	return false
}

func (sc *envScanner) envelope(env *mailparse.Envelope) bool {
	if !sc.next('{') {
		return false
	}
	if sc.next('}') {
		return true
	}
	for {
		key, ok := sc.str()
		if !ok || !sc.next(':') {
			return false
		}
		switch key {
		case "d":
			start := sc.i
			if _, ok := sc.str(); !ok || env.Date.UnmarshalJSON([]byte(sc.s[start:sc.i])) != nil {
				return false
			}
		case "dr":
			env.RawDate, ok = sc.str()
		case "s":
			env.Subject, ok = sc.str()
		case "f":
			env.From, ok = sc.addresses()
		case "se":
			env.Sender, ok = sc.addresses()
		case "rt":
			env.ReplyTo, ok = sc.addresses()
		case "to":
			env.To, ok = sc.addresses()
		case "cc":
			env.Cc, ok = sc.addresses()
		case "bcc":
			env.Bcc, ok = sc.addresses()
		case "irt":
			env.InReplyTo, ok = sc.strs()
		case "id":
			env.MessageID, ok = sc.str()
		default:
			return false
		}
		if !ok {
			return false
		}
		if sc.next('}') {
			return true
		}
		if !sc.next(',') {
			return false
		}
	}
}

// address reads one address as Address.MarshalJSON writes it:
// [name, mailbox, host], [name, mailbox, host, route], [name] (a group's
// start) or [] (its end).
func (sc *envScanner) address() (mailparse.Address, bool) {
	var a mailparse.Address
	if !sc.next('[') {
		return a, false
	}
	if sc.next(']') {
		return mailparse.Address{Group: mailparse.GroupEnd}, true
	}
	var f [4]string
	n := 0
	for {
		v, ok := sc.str()
		if !ok || n == len(f) {
			return a, false
		}
		f[n] = v
		n++
		if sc.next(']') {
			break
		}
		if !sc.next(',') {
			return a, false
		}
	}
	switch n {
	case 1:
		return mailparse.Address{Name: f[0], Group: mailparse.GroupStart}, true
	case 3, 4:
		return mailparse.Address{Name: f[0], Mailbox: f[1], Host: f[2], Route: f[3]}, true
	}
	return a, false
}

// addresses reads a list of addresses.
func (sc *envScanner) addresses() ([]mailparse.Address, bool) {
	if !sc.next('[') {
		return nil, false
	}
	if sc.slab == nil {
		sc.slab = make([]mailparse.Address, 0, 8)
	}
	start := len(sc.slab)
	// Full slice expressions: an append to one list must not overwrite
	// the next.
	if sc.next(']') {
		return sc.slab[start:start:start], true
	}
	for {
		a, ok := sc.address()
		if !ok {
			return nil, false
		}
		sc.slab = append(sc.slab, a)
		if sc.next(']') {
			return sc.slab[start:len(sc.slab):len(sc.slab)], true
		}
		if !sc.next(',') {
			return nil, false
		}
	}
}

// strs reads an array of strings.
func (sc *envScanner) strs() ([]string, bool) {
	if !sc.next('[') {
		return nil, false
	}
	out := []string{}
	if sc.next(']') {
		return out, true
	}
	for {
		v, ok := sc.str()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		if sc.next(']') {
			return out, true
		}
		if !sc.next(',') {
			return nil, false
		}
	}
}

// str reads a JSON string. One without escapes and in valid UTF-8 is a
// substring; others go through encoding/json, so every decoding rule stays
// its own.
func (sc *envScanner) str() (string, bool) {
	if !sc.next('"') {
		return "", false
	}
	start := sc.i
	plain := true
	for ; sc.i < len(sc.s); sc.i++ {
		switch c := sc.s[sc.i]; {
		case c == '"':
			v := sc.s[start:sc.i]
			sc.i++
			if plain {
				return v, true
			}
			var out string
			if json.Unmarshal([]byte(sc.s[start-1:sc.i]), &out) != nil {
				return "", false
			}
			return out, true
		case c == '\\':
			plain = false
			sc.i++
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(sc.s[sc.i:])
			if r == utf8.RuneError && n == 1 {
				plain = false
			}
			sc.i += n - 1
		}
	}
	return "", false
}
