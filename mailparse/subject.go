package mailparse

import "strings"

// BaseSubject returns the base subject of a decoded subject as RFC 5256
// section 2.1 defines it, for sorting and threading by subject: reply and
// forward markers ("Re:", "Fwd:", "[fwd: ...]", "(fwd)") and leading
// [list] tags stripped, white space collapsed. reply reports whether a
// reply or forward marker was stripped. The comparison RFC 5256 asks for
// (i;ascii-casemap) is the caller's.
func BaseSubject(subject string) (base string, reply bool) {
	s := collapseSpace(subject)
	for {
		// (2) trailers: "(fwd)" and white space.
		for {
			t := strings.TrimRight(s, " ")
			if len(t) >= 5 && strings.EqualFold(t[len(t)-5:], "(fwd)") {
				t = t[:len(t)-5]
				reply = true
			}
			if t == s {
				break
			}
			s = t
		}
		// (3)-(5) leaders: "re:", "fw:", "fwd:" with optional [blob]s
		// before and inside, and [blob]s that leave something behind.
		for {
			if t, ok := cutLeader(s); ok {
				s, reply = t, true
				continue
			}
			if t, ok := cutBlob(s); ok && t != "" {
				s = t
				continue
			}
			if t := strings.TrimLeft(s, " "); t != s {
				s = t
				continue
			}
			break
		}
		// (6) "[fwd: ...]".
		if len(s) >= 6 && strings.EqualFold(s[:5], "[fwd:") && s[len(s)-1] == ']' {
			s = s[5 : len(s)-1]
			reply = true
			continue
		}
		return s, reply
	}
}

// collapseSpace turns tabs and line breaks into spaces and runs of spaces
// into one.
func collapseSpace(s string) string {
	var b strings.Builder
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteByte(c)
	}
	if b.Len() == len(s) {
		return s
	}
	return b.String()
}

// cutBlob removes a leading subj-blob: "[" *BLOBCHAR "]" *WSP.
func cutBlob(s string) (string, bool) {
	if !strings.HasPrefix(s, "[") {
		return s, false
	}
	end := strings.IndexAny(s[1:], "[]")
	if end < 0 || s[1+end] != ']' {
		return s, false
	}
	return strings.TrimLeft(s[end+2:], " "), true
}

// cutLeader removes a leading subj-refwd with the blobs before it:
// *subj-blob ("re" / "fw" ["d"]) *WSP [subj-blob] ":".
func cutLeader(s string) (string, bool) {
	t := s
	for {
		u, ok := cutBlob(t)
		if !ok {
			break
		}
		t = u
	}
	switch {
	case len(t) >= 3 && strings.EqualFold(t[:3], "fwd"):
		t = t[3:]
	case len(t) >= 2 && (strings.EqualFold(t[:2], "re") || strings.EqualFold(t[:2], "fw")):
		t = t[2:]
	default:
		return s, false
	}
	t = strings.TrimLeft(t, " ")
	if u, ok := cutBlob(t); ok {
		t = u
	}
	if !strings.HasPrefix(t, ":") {
		return s, false
	}
	return t[1:], true
}
