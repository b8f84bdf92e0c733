package jmap

import (
	"strconv"
	"strings"
)

// Ids are a letter and decimal numbers (see doc.go); parsing is strict, so
// every object has exactly one id.

func accountID(mailbox uint64) string { return "A" + strconv.FormatUint(mailbox, 10) }
func mailboxID(folder uint64) string  { return "F" + strconv.FormatUint(folder, 10) }
func emailID(mid uint64) string       { return "M" + strconv.FormatUint(mid, 10) }
func threadID(root uint64) string     { return "T" + strconv.FormatUint(root, 10) }
func blobID(mid uint64) string        { return "B" + strconv.FormatUint(mid, 10) }

// partBlobID names a body part by its MID and part path ("2.1" is "B7-2-1").
func partBlobID(mid uint64, partID string) string {
	return blobID(mid) + "-" + strings.ReplaceAll(partID, ".", "-")
}

// parseID returns the number of an id with the given prefix letter.
func parseID(prefix byte, id string) (uint64, bool) {
	if len(id) < 2 || id[0] != prefix || id[1] == '0' || len(id) > 21 {
		return 0, false
	}
	if !isDigits(id[1:]) {
		return 0, false
	}
	n, err := strconv.ParseUint(id[1:], 10, 64)
	return n, err == nil
}

// parseBlobID splits a blob id into the MID and the part path ("" for the
// whole message).
func parseBlobID(id string) (mid uint64, path []int, ok bool) {
	head, rest, hasPart := strings.Cut(id, "-")
	if mid, ok = parseID('B', head); !ok {
		return 0, nil, false
	}
	if !hasPart {
		return mid, nil, true
	}
	for _, s := range strings.Split(rest, "-") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || !isDigits(s) || s[0] == '0' || len(path) >= 64 {
			return 0, nil, false
		}
		path = append(path, n)
	}
	return mid, path, true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
