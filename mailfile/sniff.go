package mailfile

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ErrNotMail reports a file that is neither a message nor an mbox file.
var ErrNotMail = errors.New("not an e-mail message or mbox file")

type fileKind int

const (
	kindUnknown fileKind = iota
	kindMessage          // one RFC 5322 message (.eml)
	kindMbox
)

// sniffSize is how much of a file sniff looks at first; maxSniffSize how
// far it reads when the header goes on beyond that (long X- fields of
// spam filters and Exchange come first in real messages).
const (
	sniffSize    = 16 << 10
	maxSniffSize = 1 << 20
)

// errUndecided says sniff needs more of the file: head ends inside a header
// that has shown no message field yet.
var errUndecided = errors.New("header goes on beyond what was read")

// sniff tells a file's kind from its first bytes, head; truncated says the
// file goes on beyond head. named says the file's name says it is one
// message (.eml): then any well-formed header will do. For an unknown kind
// it says why; errUndecided asks for more of the file.
func sniff(head []byte, truncated, named bool) (fileKind, error) {
	b := bytes.TrimPrefix(head, []byte(utf8BOM))
	if bytes.HasPrefix(b, []byte("From ")) {
		return kindMbox, nil
	}
	switch looksLikeHeader(b, truncated, named) {
	case headerYes:
		return kindMessage, nil
	case headerCut:
		return kindUnknown, errUndecided
	}
	switch {
	case bytes.HasPrefix(head, []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")):
		return kindUnknown, fmt.Errorf("%w: Outlook .msg (compound document), convert it to .eml first", ErrNotMail)
	case bytes.HasPrefix(head, []byte("!BDN")):
		return kindUnknown, fmt.Errorf("%w: Outlook .pst, convert it to mbox first", ErrNotMail)
	case bytes.HasPrefix(head, []byte("\x1f\x8b")), bytes.HasPrefix(head, []byte("PK\x03\x04")),
		bytes.HasPrefix(head, []byte("BZh")), bytes.HasPrefix(head, []byte("\xfd7zXZ\x00")),
		bytes.HasPrefix(head, []byte("\x28\xb5\x2f\xfd")):
		return kindUnknown, fmt.Errorf("%w: compressed, unpack it first", ErrNotMail)
	}
	return kindUnknown, ErrNotMail
}

type headerVerdict int

const (
	headerNo headerVerdict = iota
	headerYes
	headerCut // b ends before a verdict
)

// looksLikeHeader reports whether b starts with an RFC 5322 header: a
// field on the first line, and a field every message has (From, Date,
// Received, ...) before the first empty line; with named, fields (of any
// name, X- included) up to an empty line or the end suffice. It is lenient
// about the rest, as real messages break every rule: lines without colon,
// blanks in field names, leading blanks on the first line.
func looksLikeHeader(b []byte, truncated, named bool) headerVerdict {
	b = bytes.TrimLeft(b, " \t")
	wellFormed := true
	for first := true; len(b) > 0; first = false {
		line, rest, found := bytes.Cut(b, []byte("\n"))
		if !found && truncated {
			return headerCut
		}
		b = rest
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		name, ok := fieldName(line)
		if first && !ok {
			return headerNo
		}
		if ok && isMessageField(name) {
			return headerYes
		}
		wellFormed = wellFormed && (ok || line[0] == ' ' || line[0] == '\t')
	}
	if named && wellFormed {
		return headerYes
	}
	return headerNo
}

// fieldName returns the name of the header field on line; blanks before
// the colon are obsolete syntax but allowed (RFC 5322, 4.5).
func fieldName(line []byte) ([]byte, bool) {
	name, _, found := bytes.Cut(line, []byte(":"))
	if !found {
		return nil, false
	}
	name = bytes.TrimRight(name, " \t")
	if len(name) == 0 {
		return nil, false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f {
			return nil, false
		}
	}
	return name, true
}

// isMessageField reports whether name is a field that messages carry and
// other "Name: value" text files do not.
func isMessageField(name []byte) bool {
	for _, f := range [...]string{"From", "Date", "Subject", "To", "Cc", "Message-ID", "Received",
		"Return-Path", "Delivered-To", "MIME-Version", "Content-Type", "Sender", "Reply-To",
		"In-Reply-To", "References"} {
		if bytes.EqualFold(name, []byte(f)) {
			return true
		}
	}
	return false
}

// isMetadataFile reports whether a file or directory named name is known
// bookkeeping of a mail program or operating system, skipped without a
// report so that real problems stand out.
func isMetadataFile(name string) bool {
	switch name {
	case "subscriptions", "maildirfolder", "maildirsize", // Maildir++
		"table_of_contents", "Info.plist", // Apple Mail
		".mh_sequences", ".mbsyncstate", ".uidvalidity",
		".DS_Store", "Thumbs.db", "desktop.ini":
		return true
	}
	return strings.HasPrefix(name, "dovecot") || strings.HasPrefix(name, "courier") ||
		strings.HasPrefix(name, "._") || // macOS resource forks
		strings.HasSuffix(name, ".msf") // Thunderbird index
}
