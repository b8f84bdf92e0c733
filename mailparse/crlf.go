package mailparse

import (
	"bytes"
	"io"
	"math"
)

// Mail is archived byte for byte, but IMAP presents messages with CRLF line
// ends (RFC 9051 2.3.1): a line feed no carriage return precedes is served
// as CRLF. These functions let a server do that while streaming, with the
// counts recorded at ingest telling it whether it has to.

// BareLFs counts the line feeds in b that no carriage return precedes.
func BareLFs(b []byte) int64 {
	var n int64
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return n
		}
		i += j
		if i == 0 || b[i-1] != '\r' {
			n++
		}
		i++
	}
}

// CRLFLen returns the length of b with every bare LF as CRLF.
func CRLFLen(b []byte) int64 { return int64(len(b)) + BareLFs(b) }

// AppendCRLF appends b with every bare LF as CRLF.
func AppendCRLF(dst, b []byte) []byte {
	n := BareLFs(b)
	if n == 0 {
		return append(dst, b...) // the usual case: one scan, one copy
	}
	return AppendCRLFRange(dst, b, 0, int64(len(b))+n)
}

// AppendCRLFRange appends the bytes [off, off+n) of the CRLF form of b
// (every bare LF as CRLF), fewer where that form ends first. It reads b
// only up to the end of the range.
func AppendCRLFRange(dst, b []byte, off, n int64) []byte {
	if off < 0 || n <= 0 {
		return dst
	}
	end := off + min(n, math.MaxInt64-off) // off+n may overflow
	var pos int64                          // where b[i:] starts in the CRLF form
	for i := 0; i < len(b) && pos < end; {
		// The chunk is the text up to the next bare LF, then "\r\n".
		j := nextBareLF(b, i)
		dst = appendClipped(dst, b[i:j], pos, off, end)
		pos += int64(j - i)
		if j == len(b) {
			break
		}
		dst = appendClipped(dst, []byte("\r\n"), pos, off, end)
		pos += 2
		i = j + 1
	}
	return dst
}

// appendClipped appends the part of chunk, which starts at pos of the
// output, that falls in [off, end).
func appendClipped(dst, chunk []byte, pos, off, end int64) []byte {
	lo, hi := max(off-pos, 0), min(end-pos, int64(len(chunk)))
	if lo >= hi {
		return dst
	}
	return append(dst, chunk[lo:hi]...)
}

// WriteCRLF writes b to w with every bare LF as CRLF, without copying b.
func WriteCRLF(w io.Writer, b []byte) error {
	crlf := []byte("\r\n")
	for i := 0; i < len(b); {
		j := nextBareLF(b, i)
		if _, err := w.Write(b[i:j]); err != nil {
			return err
		}
		if j == len(b) {
			break
		}
		if _, err := w.Write(crlf); err != nil {
			return err
		}
		i = j + 1
	}
	return nil
}

// nextBareLF returns the index of the first bare LF in b at or after i, or
// len(b).
func nextBareLF(b []byte, i int) int {
	for {
		k := bytes.IndexByte(b[i:], '\n')
		if k < 0 {
			return len(b)
		}
		i += k
		if i == 0 || b[i-1] != '\r' {
			return i
		}
		i++
	}
}
