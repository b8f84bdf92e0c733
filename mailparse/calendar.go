package mailparse

import "bytes"

// appendCalendarText appends what a reader sees of an iCalendar object
// (RFC 5545) src: the values of SUMMARY, LOCATION, DESCRIPTION and COMMENT,
// unfolded and unescaped, one line each. The rest (times, ids, rules) is
// not text.
func appendCalendarText(dst, src []byte) []byte {
	start := len(dst)
	for len(src) > 0 {
		// A content line continues on lines starting with a space or tab.
		end := 0
		for {
			nl := bytes.IndexByte(src[end:], '\n')
			if nl < 0 {
				end = len(src)
				break
			}
			end += nl + 1
			if end >= len(src) || (src[end] != ' ' && src[end] != '\t') {
				break
			}
		}
		line := src[:end]
		src = src[end:]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := line[:colon]
		if semi := bytes.IndexByte(name, ';'); semi >= 0 {
			name = name[:semi]
		}
		if !calendarTextProperty(name) {
			continue
		}
		if len(dst) > start {
			dst = append(dst, '\n')
		}
		dst = appendCalendarValue(dst, line[colon+1:])
	}
	return dst
}

func calendarTextProperty(name []byte) bool {
	for _, p := range []string{"SUMMARY", "LOCATION", "DESCRIPTION", "COMMENT"} {
		if bytes.EqualFold(name, []byte(p)) {
			return true
		}
	}
	return false
}

// appendCalendarValue appends a TEXT value: folds removed, \n \N \, \; \\
// unescaped.
func appendCalendarValue(dst, v []byte) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\r':
		case c == '\n':
			if i+1 < len(v) && (v[i+1] == ' ' || v[i+1] == '\t') {
				i++ // a fold: the line goes on after one white space
			}
		case c == '\\' && i+1 < len(v):
			i++
			switch v[i] {
			case 'n', 'N':
				dst = append(dst, '\n')
			default:
				dst = append(dst, v[i])
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
