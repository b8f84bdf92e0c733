package mailparse

import "strings"

// Section returns the byte range [start,end) of the raw message that the
// IMAP section (RFC 3501 6.4.5) with part numbers path and specifier ("",
// "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT" or "MIME", any
// case) refers to; ok is false if there is no such section. For
// HEADER.FIELDS (.NOT) the range is the whole header, the caller picks the
// fields.
//
// Part numbers index the parts of a multipart; a message that is not
// multipart has the single part 1, its body. After a message/rfc822 part the
// numbers continue into the embedded message, to which HEADER and TEXT of
// such a part refer.
func (s *Summary) Section(path []int, specifier string) (start, end int64, ok bool) {
	if s.Structure == nil {
		return 0, 0, false
	}
	if len(path) == 0 {
		if strings.EqualFold(specifier, "MIME") {
			return 0, 0, false
		}
		return messageSection(s.Structure, specifier)
	}
	var part *Part
	msg := s.Structure // the message the next number indexes into, if any
	for _, n := range path {
		if n < 1 {
			return 0, 0, false
		}
		switch {
		case msg != nil && msg.Type != "multipart":
			if n != 1 {
				return 0, 0, false
			}
			part = msg
		case msg != nil:
			if n > len(msg.Children) {
				return 0, 0, false
			}
			part = msg.Children[n-1]
		case part.Type == "multipart":
			if n > len(part.Children) {
				return 0, 0, false
			}
			part = part.Children[n-1]
		default:
			return 0, 0, false
		}
		msg = part.Message
	}
	switch {
	case specifier == "":
		return part.BodyStart, part.End, true
	case strings.EqualFold(specifier, "MIME"):
		return part.HeaderStart, part.BodyStart, true
	case part.Message != nil:
		return messageSection(part.Message, specifier)
	}
	return 0, 0, false
}

// messageSection returns the range of "", HEADER or TEXT of the message
// whose root part is root.
func messageSection(root *Part, specifier string) (start, end int64, ok bool) {
	switch {
	case specifier == "":
		return root.HeaderStart, root.End, true
	case strings.EqualFold(specifier, "HEADER"),
		strings.EqualFold(specifier, "HEADER.FIELDS"),
		strings.EqualFold(specifier, "HEADER.FIELDS.NOT"):
		return root.HeaderStart, root.BodyStart, true
	case strings.EqualFold(specifier, "TEXT"):
		return root.BodyStart, root.End, true
	}
	return 0, 0, false
}
