package mailfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf16"
)

// isMaildir reports whether dir holds a Maildir. Either of cur and new
// suffices: archivers and zip tools tend to drop empty directories.
func isMaildir(dir string) bool {
	for _, sub := range [...]string{"cur", "new"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err == nil && fi.IsDir() {
			return true
		}
	}
	return false
}

// maildirKeywords maps the lowercase flag letters of Maildir file names to
// IMAP keywords, as Dovecot's dovecot-keywords file assigns them.
type maildirKeywords [26]string

// readMaildirKeywords reads dir's dovecot-keywords file ("0 $Forwarded"
// per line); a missing file means no keywords.
func readMaildirKeywords(dir string) (maildirKeywords, error) {
	var kw maildirKeywords
	data, err := os.ReadFile(filepath.Join(dir, "dovecot-keywords"))
	if errors.Is(err, fs.ErrNotExist) {
		return kw, nil
	}
	if err != nil {
		return kw, fmt.Errorf("read maildir keywords: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		index, name, _ := strings.Cut(sc.Text(), " ")
		if i, ok := number(index, 1, 2); ok && i < len(kw) && isKeyword(name) {
			kw[i] = name
		}
	}
	return kw, sc.Err()
}

// isKeyword reports whether s is a valid IMAP keyword (an atom, RFC 3501).
func isKeyword(s string) bool {
	if s == "" || s[0] == '\\' {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// appendMaildirFlags appends the IMAP flags encoded in the info part of the
// Maildir file name ("...:2,FRS") to dst. P (passed: resent, forwarded or
// bounced) becomes the registered keyword $Forwarded; lowercase letters are
// keywords from kw; anything else has no IMAP meaning and is dropped.
func appendMaildirFlags(dst []string, name string, kw *maildirKeywords) []string {
	// ':' is the separator; '!' and ';' are used where ':' is not allowed
	// in file names (mbsync, Dovecot on Windows).
	i := strings.LastIndex(name, "2,")
	if i < 1 || strings.IndexByte(":!;", name[i-1]) < 0 {
		return dst
	}
	for _, c := range []byte(name[i+2:]) {
		switch {
		case c == 'S':
			dst = append(dst, `\Seen`)
		case c == 'R':
			dst = append(dst, `\Answered`)
		case c == 'F':
			dst = append(dst, `\Flagged`)
		case c == 'T':
			dst = append(dst, `\Deleted`)
		case c == 'D':
			dst = append(dst, `\Draft`)
		case c == 'P':
			dst = append(dst, "$Forwarded")
		case c >= 'a' && c <= 'z' && kw[c-'a'] != "":
			dst = append(dst, kw[c-'a'])
		}
	}
	return dst
}

// maildirPlusFolder turns the name of a Maildir++ folder directory
// (".Archive.2019") into a folder path ("Archive/2019"). Courier and
// Dovecot store non-ASCII names in IMAP's modified UTF-7 ("Entw&APw-rfe");
// such parts are decoded, others kept as they are.
func maildirPlusFolder(name string) string {
	parts := strings.Split(strings.TrimPrefix(name, "."), ".")
	for i, p := range parts {
		if s, ok := decodeModifiedUTF7(p); ok {
			parts[i] = s
		}
	}
	return path.Join(parts...)
}

// decodeModifiedUTF7 decodes s from IMAP's modified UTF-7 (RFC 3501,
// 5.1.3). ok is false when s is not valid modified UTF-7.
func decodeModifiedUTF7(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", false
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", false
		}
		encoded := s[i+1 : i+1+end]
		i += end + 2
		if encoded == "" {
			b.WriteByte('&')
			continue
		}
		if !decodeModifiedBase64(&b, encoded) {
			return "", false
		}
	}
	return b.String(), true
}

// decodeModifiedBase64 writes the UTF-16BE text encoded in base64 with ','
// for '/' and without padding to b.
func decodeModifiedBase64(b *strings.Builder, encoded string) bool {
	var bits uint32
	nbits := 0
	var high rune // pending high surrogate
	for i := range len(encoded) {
		var v uint32
		switch c := encoded[i]; {
		case c >= 'A' && c <= 'Z':
			v = uint32(c - 'A')
		case c >= 'a' && c <= 'z':
			v = uint32(c-'a') + 26
		case c >= '0' && c <= '9':
			v = uint32(c-'0') + 52
		case c == '+':
			v = 62
		case c == ',':
			v = 63
		default:
			return false
		}
		bits = bits<<6 | v
		nbits += 6
		if nbits < 16 {
			continue
		}
		nbits -= 16
		unit := rune(bits>>nbits) & 0xffff
		bits &= 1<<nbits - 1
		switch {
		case high != 0:
			if unit < 0xdc00 || unit > 0xdfff {
				return false
			}
			b.WriteRune(utf16.DecodeRune(high, unit))
			high = 0
		case unit >= 0xd800 && unit <= 0xdbff:
			high = unit
		case unit >= 0xdc00 && unit <= 0xdfff:
			return false
		default:
			b.WriteRune(unit)
		}
	}
	// Leftover bits are padding: fewer than six and zero.
	return high == 0 && nbits < 6 && bits == 0
}
