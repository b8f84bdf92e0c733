package mailfile

import (
	"strings"
	"time"
)

// ParseFromLine parses an mbox From_ line: "From ", a sender, and an
// asctime date ("Fri Jul  8 12:08:34 2011"), optionally with a time zone
// before or after the year ("+0000 2011", "PST 2011", "2011 -0700") and
// anything after it ("remote from host"). The sender is what stands between
// "From " and the date, trimmed; it may be empty. A date without time zone,
// or with an unknown zone name, is taken as UTC. A trailing line ending is
// ignored. ok reports whether line is a From_ line.
func ParseFromLine(line string) (sender string, date time.Time, ok bool) {
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	rest, found := strings.CutPrefix(line, "From ")
	if !found {
		return "", time.Time{}, false
	}
	// The sender may contain spaces, so look for the first place where a
	// date starts. A fixed array keeps this free of allocations.
	var fields [16]string
	var starts [16]int
	n := 0
	for i := 0; i < len(rest) && n < len(fields); {
		for i < len(rest) && (rest[i] == ' ' || rest[i] == '\t') {
			i++
		}
		j := i
		for j < len(rest) && rest[j] != ' ' && rest[j] != '\t' {
			j++
		}
		if j > i {
			fields[n], starts[n] = rest[i:j], i
			n++
		}
		i = j
	}
	for i := range n {
		if nameIndex(fields[i], weekdays) < 0 {
			continue
		}
		if date, ok := parseAsctime(fields[i+1 : n]); ok {
			return strings.TrimSpace(rest[:starts[i]]), date, true
		}
	}
	return "", time.Time{}, false
}

func isFromLine(line string) bool {
	_, _, ok := ParseFromLine(line)
	return ok
}

const (
	weekdays = "sunmontuewedthufrisat"
	months   = "janfebmaraprmayjunjulaugsepoctnovdec"
)

// nameIndex returns the index of the three-letter name s, in any case,
// in names, or -1.
func nameIndex(s, names string) int {
	if len(s) != 3 {
		return -1
	}
	var lower [3]byte
	for i := range 3 {
		lower[i] = s[i] | 0x20
	}
	for i := 0; i+3 <= len(names); i += 3 {
		if names[i:i+3] == string(lower[:]) {
			return i / 3
		}
	}
	return -1
}

// parseAsctime parses "Mon dd hh:mm[:ss] [zone] yyyy [zone]", the part of
// an asctime date after the weekday. Fields after that are ignored.
func parseAsctime(f []string) (time.Time, bool) {
	if len(f) < 4 {
		return time.Time{}, false
	}
	month := nameIndex(f[0], months)
	day, okDay := number(f[1], 1, 2)
	hour, min, sec, okClock := clock(f[2])
	if month < 0 || !okDay || day < 1 || day > 31 || !okClock {
		return time.Time{}, false
	}
	f = f[3:]
	loc, hasZone := zone(f[0], true)
	if hasZone {
		f = f[1:]
	}
	if len(f) == 0 {
		return time.Time{}, false
	}
	year, okYear := number(f[0], 4, 4)
	if !okYear {
		return time.Time{}, false
	}
	if !hasZone && len(f) > 1 {
		if l, ok := zone(f[1], false); ok {
			loc = l
		}
	}
	if loc == nil {
		loc = time.UTC
	}
	return time.Date(year, time.Month(month+1), day, hour, min, sec, 0, loc), true
}

// number parses a decimal of minDigits to maxDigits digits.
func number(s string, minDigits, maxDigits int) (int, bool) {
	if len(s) < minDigits || len(s) > maxDigits {
		return 0, false
	}
	n := 0
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// clock parses "h:mm" or "hh:mm:ss".
func clock(s string) (hour, min, sec int, ok bool) {
	h, rest, _ := strings.Cut(s, ":")
	m, sc, hasSec := strings.Cut(rest, ":")
	hour, okH := number(h, 1, 2)
	min, okM := number(m, 2, 2)
	okS := true
	if hasSec {
		sec, okS = number(sc, 2, 2)
	}
	return hour, min, sec, okH && okM && okS && hour < 24 && min < 60 && sec <= 60
}

// zoneHours returns the offset of the zone names found in From_ lines:
// those of RFC 5322 and the European ones a German archive meets.
func zoneHours(name string) (int, bool) {
	if len(name) > 4 {
		return 0, false
	}
	var upper [4]byte
	for i := range len(name) {
		upper[i] = name[i] &^ 0x20
	}
	switch string(upper[:len(name)]) {
	case "UT", "UTC", "GMT", "Z", "WET":
		return 0, true
	case "WEST", "CET", "MET":
		return 1, true
	case "CEST", "MEST", "EET":
		return 2, true
	case "EEST":
		return 3, true
	case "EDT":
		return -4, true
	case "EST", "CDT":
		return -5, true
	case "CST", "MDT":
		return -6, true
	case "MST", "PDT":
		return -7, true
	case "PST":
		return -8, true
	}
	return 0, false
}

// zone parses a numeric zone ("+0200") or a zone name. Unknown names, of
// one to five letters, are accepted as UTC only when anyName is set, as the
// zone before the year is the only place a bare word can be one.
func zone(s string, anyName bool) (*time.Location, bool) {
	if len(s) == 5 && (s[0] == '+' || s[0] == '-') {
		hh, okH := number(s[1:3], 2, 2)
		mm, okM := number(s[3:5], 2, 2)
		if !okH || !okM || hh > 23 || mm > 59 {
			return nil, false
		}
		offset := (hh*60 + mm) * 60
		if s[0] == '-' {
			offset = -offset
		}
		return time.FixedZone(s, offset), true
	}
	if hours, ok := zoneHours(s); ok {
		if hours == 0 {
			return time.UTC, true
		}
		return time.FixedZone("", hours*3600), true
	}
	if !anyName || len(s) > 5 {
		return nil, false
	}
	for i := range len(s) {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return nil, false
		}
	}
	return nil, true
}

// appendFromLine appends "From sender date" in the form ParseFromLine reads.
func appendFromLine(dst []byte, sender string, date time.Time) []byte {
	dst = append(dst, "From "...)
	if sender == "" {
		dst = append(dst, "MAILER-DAEMON"...)
	}
	for i := range len(sender) {
		c := sender[i]
		if c <= ' ' || c == 0x7f {
			c = '_'
		}
		dst = append(dst, c)
	}
	date = date.UTC()
	if y := date.Year(); y < 1 {
		date = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	} else if y > 9999 {
		date = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	}
	dst = append(dst, ' ')
	return date.AppendFormat(dst, time.ANSIC)
}
