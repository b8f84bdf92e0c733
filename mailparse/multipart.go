package mailparse

import "bytes"

// multipart splits the body of a multipart part into its children (RFC 2046
// 5.1.1) and parses them. A delimiter is "--boundary" at the start of a
// line, followed by "--" for the last one, optional whitespace and the line
// end; the line break before it belongs to the delimiter, not to the
// preceding part. Bare LF line ends, a missing final delimiter, preamble and
// epilogue are accepted. It reports false, with a problem recorded, when the
// body holds no delimiter at all.
func (p *parser) multipart(part *Part, depth int) bool {
	boundary := part.Params["boundary"]
	if boundary == "" {
		p.problem("multipart without boundary, treated as text/plain")
		return false
	}
	delim := make([]byte, 0, 2+len(boundary))
	delim = append(append(delim, "--"...), boundary...)
	digest := part.Subtype == "digest"
	bodyStart, end := int(part.BodyStart), int(part.End)

	childStart := -1 // start of the current child, after its delimiter line
	closed := false
	for pos := bodyStart; pos < end && !closed; {
		i := bytes.Index(p.raw[pos:end], delim)
		if i < 0 {
			break
		}
		at := pos + i
		pos = at + 1
		if at > bodyStart && p.raw[at-1] != '\n' {
			continue
		}
		k := at + len(delim)
		last := k+2 <= end && p.raw[k] == '-' && p.raw[k+1] == '-'
		if last {
			k += 2
		}
		for k < end && (p.raw[k] == ' ' || p.raw[k] == '\t') {
			k++
		}
		switch {
		case k < end && p.raw[k] == '\n':
			k++
		case k+1 < end && p.raw[k] == '\r' && p.raw[k+1] == '\n':
			k += 2
		case k < end:
			// "--boundary" followed by more text: a longer boundary, or text.
			continue
		}
		if childStart >= 0 {
			childEnd := at
			if childEnd > childStart && p.raw[childEnd-1] == '\n' {
				childEnd--
				if childEnd > childStart && p.raw[childEnd-1] == '\r' {
					childEnd--
				}
			}
			if !p.child(part, childStart, childEnd, depth, digest) {
				return len(part.Children) > 0
			}
		}
		childStart, pos, closed = k, k, last
	}
	if childStart < 0 {
		p.problem("multipart without any %q delimiter, treated as text/plain", delim)
		return false
	}
	if !closed {
		p.problem("multipart without final delimiter")
		p.child(part, childStart, end, depth, digest)
	}
	return len(part.Children) > 0
}

// child parses raw[start:end] as the next child of part. It reports false
// when the message has too many parts already.
func (p *parser) child(part *Part, start, end, depth int, digest bool) bool {
	if p.parts >= maxParts {
		p.problem("more than %d parts, the rest is not parsed", maxParts)
		return false
	}
	p.path = append(p.path, len(part.Children)+1)
	part.Children = append(part.Children, p.parsePart(start, end, depth+1, digest, nil))
	p.path = p.path[:len(p.path)-1]
	return true
}
