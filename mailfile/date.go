package mailfile

import (
	"bytes"
	"net/mail"
	"strings"
	"time"
)

// headerDate is when a message file's message was sent or received, from
// its header: the Date field, else the date of the topmost Received field
// (the last hop, "...; <date>"). ok is false when neither parses; the
// caller then falls back on the file's mtime, which copies and restores
// change and so says little.
func headerDate(raw []byte) (t time.Time, ok bool) {
	var received string
	for len(raw) > 0 {
		line, rest, _ := bytes.Cut(raw, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		// Unfold the field.
		value := string(line)
		for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
			var cont []byte
			cont, rest, _ = bytes.Cut(rest, []byte("\n"))
			value += " " + strings.TrimSpace(string(bytes.TrimSuffix(cont, []byte("\r"))))
		}
		raw = rest
		name, v, found := strings.Cut(value, ":")
		if !found {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "date":
			if d, err := mail.ParseDate(strings.TrimSpace(v)); err == nil {
				return d, true
			}
		case "received":
			if received == "" {
				if i := strings.LastIndexByte(v, ';'); i >= 0 {
					received = strings.TrimSpace(v[i+1:])
				}
			}
		}
	}
	if received != "" {
		if d, err := mail.ParseDate(received); err == nil {
			return d, true
		}
	}
	return time.Time{}, false
}
