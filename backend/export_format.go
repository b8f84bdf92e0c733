package backend

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"time"

	"github.com/klauspost/compress/flate"
)

// zipWriter writes a ZIP archive (with Zip64 where sizes, offsets or the
// number of entries need it) straight to an io.Writer in constant memory.
// archive/zip keeps every entry's header in memory until Close, hundreds of
// bytes per entry; here the central directory is spooled to an unlinked
// temporary file instead and copied to the output at the end. Each entry's
// sizes and CRC are known before its local header is written (a message is
// compressed into a reused buffer first), so the local headers carry them
// and a reader can walk the stream entry by entry (see ZipStreamCounter).
type zipWriter struct {
	out     *bufio.Writer
	cw      countingWriter
	cd      *os.File
	cdw     *bufio.Writer
	cdSize  int64
	entries uint64
	deflate bool
	fl      *flate.Writer
	buf     bytes.Buffer
	hdr     []byte
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

const (
	zipLocalSig     = 0x04034b50
	zipCentralSig   = 0x02014b50
	zipEndSig       = 0x06054b50
	zip64EndSig     = 0x06064b50
	zip64LocatorSig = 0x07064b50
	zipFlagUTF8     = 0x800
	max32           = 0xffffffff
	max16           = 0xffff
)

func newZipWriter(w io.Writer, deflate bool) (*zipWriter, error) {
	cd, err := os.CreateTemp("", "mailvault-zipdir-*")
	if err != nil {
		return nil, fmt.Errorf("zip central directory spool: %w", err)
	}
	// Unlinked at once: nothing is left behind, whatever ends the export.
	os.Remove(cd.Name())
	z := &zipWriter{cd: cd, cdw: bufio.NewWriterSize(cd, 64<<10), deflate: deflate}
	z.cw.w = w
	z.out = bufio.NewWriterSize(&z.cw, 256<<10)
	if deflate {
		z.fl, _ = flate.NewWriter(nil, flate.BestSpeed)
	}
	return z, nil
}

// offset is the number of bytes of the archive written so far.
func (z *zipWriter) offset() int64 { return z.cw.n + int64(z.out.Buffered()) }

// add writes one entry; data is compressed if that saves room.
func (z *zipWriter) add(name string, mod time.Time, data []byte) error {
	crc := crc32.ChecksumIEEE(data)
	method, body := uint16(0), data
	if z.deflate && len(data) > 64 {
		z.buf.Reset()
		z.fl.Reset(&z.buf)
		if _, err := z.fl.Write(data); err != nil {
			return err
		}
		if err := z.fl.Close(); err != nil {
			return err
		}
		if z.buf.Len() < len(data) {
			method, body = 8, z.buf.Bytes()
		}
	}
	if err := z.header(name, mod, method, crc, int64(len(body)), int64(len(data))); err != nil {
		return err
	}
	_, err := z.out.Write(body)
	return err
}

// addStored writes one entry of size bytes read from r, stored as is;
// crc is the CRC-32 of those bytes.
func (z *zipWriter) addStored(name string, mod time.Time, r io.Reader, size int64, crc uint32) error {
	if err := z.header(name, mod, 0, crc, size, size); err != nil {
		return err
	}
	n, err := io.Copy(z.out, io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("zip entry %s: %d of %d bytes", name, n, size)
	}
	return err
}

func dosTime(t time.Time) (date, tm uint16) {
	t = t.UTC()
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if t.Year() > 2107 {
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
	}
	return uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day()), uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2)
}

// zipEntry holds the fields a local header and its central directory entry
// share.
type zipEntry struct {
	version, flags, method, tm, date uint16
	crc                              uint32
	csize, usize                     int64
	big                              bool // the sizes are in the Zip64 extra field
}

// append appends version needed, flags, method, time, date, CRC-32 and the
// sizes (0xffffffff when big), in the order both records hold them.
func (e *zipEntry) append(b []byte) []byte {
	le := binary.LittleEndian
	b = le.AppendUint16(b, e.version)
	b = le.AppendUint16(b, e.flags)
	b = le.AppendUint16(b, e.method)
	b = le.AppendUint16(b, e.tm)
	b = le.AppendUint16(b, e.date)
	b = le.AppendUint32(b, e.crc)
	if e.big {
		b = le.AppendUint32(b, max32)
		return le.AppendUint32(b, max32)
	}
	b = le.AppendUint32(b, uint32(e.csize))
	return le.AppendUint32(b, uint32(e.usize))
}

// header writes the local header and spools the central directory entry.
func (z *zipWriter) header(name string, mod time.Time, method uint16, crc uint32, csize, usize int64) error {
	if len(name) > max16 {
		return fmt.Errorf("zip entry name of %d bytes", len(name))
	}
	off := z.offset()
	date, tm := dosTime(mod)
	big := csize >= max32 || usize >= max32
	version := uint16(20)
	if big || off >= max32 {
		version = 45
	}
	e := zipEntry{version: version, method: method, tm: tm, date: date, crc: crc, csize: csize, usize: usize, big: big}
	if !isASCII(name) {
		e.flags |= zipFlagUTF8
	}
	le := binary.LittleEndian
	// Local header: sizes go to the Zip64 extra field when they do not fit.
	h := z.hdr[:0]
	h = le.AppendUint32(h, zipLocalSig)
	h = e.append(h)
	h = le.AppendUint16(h, uint16(len(name)))
	if big {
		h = le.AppendUint16(h, 20)
	} else {
		h = le.AppendUint16(h, 0)
	}
	h = append(h, name...)
	if big {
		h = le.AppendUint16(h, 1)
		h = le.AppendUint16(h, 16)
		h = le.AppendUint64(h, uint64(usize))
		h = le.AppendUint64(h, uint64(csize))
	}
	if _, err := z.out.Write(h); err != nil {
		return err
	}
	// Central directory entry: the Zip64 extra holds, in this order, the
	// fields marked 0xffffffff.
	var extra []byte
	if big {
		extra = le.AppendUint64(extra, uint64(usize))
		extra = le.AppendUint64(extra, uint64(csize))
	}
	if off >= max32 {
		extra = le.AppendUint64(extra, uint64(off))
	}
	c := h[len(h):]
	c = le.AppendUint32(c, zipCentralSig)
	c = le.AppendUint16(c, 3<<8|45) // made by Unix, 4.5
	c = e.append(c)
	c = le.AppendUint16(c, uint16(len(name)))
	if len(extra) > 0 {
		c = le.AppendUint16(c, uint16(4+len(extra)))
	} else {
		c = le.AppendUint16(c, 0)
	}
	c = le.AppendUint16(c, 0)            // comment
	c = le.AppendUint16(c, 0)            // disk
	c = le.AppendUint16(c, 0)            // internal attributes
	c = le.AppendUint32(c, 0o100644<<16) // regular file, rw-r--r--
	if off >= max32 {
		c = le.AppendUint32(c, max32)
	} else {
		c = le.AppendUint32(c, uint32(off))
	}
	c = append(c, name...)
	if len(extra) > 0 {
		c = le.AppendUint16(c, 1)
		c = le.AppendUint16(c, uint16(len(extra)))
		c = append(c, extra...)
	}
	z.hdr = h[:0]
	if _, err := z.cdw.Write(c); err != nil {
		return fmt.Errorf("zip central directory spool: %w", err)
	}
	z.cdSize += int64(len(c))
	z.entries++
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// close writes the central directory and the end records, flushes the
// output and drops the spool.
func (z *zipWriter) close() error {
	defer z.cd.Close()
	if err := z.cdw.Flush(); err != nil {
		return fmt.Errorf("zip central directory spool: %w", err)
	}
	if _, err := z.cd.Seek(0, io.SeekStart); err != nil {
		return err
	}
	cdOff := z.offset()
	if _, err := io.Copy(z.out, z.cd); err != nil {
		return err
	}
	le := binary.LittleEndian
	var b []byte
	if z.entries >= max16 || cdOff >= max32 || z.cdSize >= max32 {
		end64 := z.offset()
		b = le.AppendUint32(b, zip64EndSig)
		b = le.AppendUint64(b, 44)
		b = le.AppendUint16(b, 3<<8|45)
		b = le.AppendUint16(b, 45)
		b = le.AppendUint32(b, 0)
		b = le.AppendUint32(b, 0)
		b = le.AppendUint64(b, z.entries)
		b = le.AppendUint64(b, z.entries)
		b = le.AppendUint64(b, uint64(z.cdSize))
		b = le.AppendUint64(b, uint64(cdOff))
		b = le.AppendUint32(b, zip64LocatorSig)
		b = le.AppendUint32(b, 0)
		b = le.AppendUint64(b, uint64(end64))
		b = le.AppendUint32(b, 1)
	}
	b = le.AppendUint32(b, zipEndSig)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint16(b, uint16(min(z.entries, max16)))
	b = le.AppendUint16(b, uint16(min(z.entries, max16)))
	b = le.AppendUint32(b, uint32(min(z.cdSize, max32)))
	b = le.AppendUint32(b, uint32(min(cdOff, max32)))
	b = le.AppendUint16(b, 0)
	if _, err := z.out.Write(b); err != nil {
		return err
	}
	return z.out.Flush()
}

// abort drops the spool without finishing the archive.
func (z *zipWriter) abort() { z.cd.Close() }

// zipPath makes an archive path component of a folder or mailbox name:
// no empty, "." or ".." components, no characters that Windows refuses in
// file names, no control characters.
func zipPath(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		p = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f || strings.ContainsRune(`\:*?"<>|`, r) {
				return '_'
			}
			return r
		}, p)
		if p == "" || p == "." || p == ".." {
			p = "_" + p
		}
		parts[i] = p
	}
	return strings.Join(parts, "/")
}

// ZipStreamCounter follows a ZIP archive written by an export as it
// streams past and counts its entries, so a client can show progress in
// messages without buffering anything. Write never fails; Entries counts
// entries whose name ends in suffix (all when suffix is empty).
type ZipStreamCounter struct {
	Suffix  string
	Entries int
	skip    int64
	hdr     []byte
	done    bool
}

func (c *ZipStreamCounter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && !c.done {
		if c.skip > 0 {
			k := min(c.skip, int64(len(p)))
			c.skip -= k
			p = p[k:]
			continue
		}
		need := 30
		if len(c.hdr) >= 30 {
			need += int(binary.LittleEndian.Uint16(c.hdr[26:])) + int(binary.LittleEndian.Uint16(c.hdr[28:]))
		}
		k := min(need-len(c.hdr), len(p))
		c.hdr = append(c.hdr, p[:k]...)
		p = p[k:]
		if len(c.hdr) < 30 {
			continue
		}
		if binary.LittleEndian.Uint32(c.hdr) != zipLocalSig {
			c.done = true // the central directory: no more entries
			break
		}
		full := 30 + int(binary.LittleEndian.Uint16(c.hdr[26:])) + int(binary.LittleEndian.Uint16(c.hdr[28:]))
		if len(c.hdr) < full {
			continue
		}
		nameLen := int(binary.LittleEndian.Uint16(c.hdr[26:]))
		name := c.hdr[30 : 30+nameLen]
		size := int64(binary.LittleEndian.Uint32(c.hdr[18:]))
		if size == max32 && full >= 30+nameLen+20 {
			size = int64(binary.LittleEndian.Uint64(c.hdr[30+nameLen+12:]))
		}
		if bytes.HasSuffix(name, []byte(c.Suffix)) {
			c.Entries++
		}
		c.skip = size
		c.hdr = c.hdr[:0]
	}
	return n, nil
}

// MboxStreamCounter counts the messages of an mboxrd stream as it streams
// past: every line starting with "From " is a separator, as the writer
// quotes such lines inside messages.
type MboxStreamCounter struct {
	Messages int
	tail     []byte
	started  bool
}

func (c *MboxStreamCounter) Write(p []byte) (int, error) {
	if !c.started {
		c.tail, c.started = append(c.tail[:0], '\n'), true // the stream starts a line
	}
	sep := []byte("\nFrom ")
	// A separator lies within p or straddles the last bytes before it (at
	// most 5 kept) and the first 5 of p: neither part holds a whole one.
	var edge [10]byte
	e := append(append(edge[:0], c.tail...), p[:min(5, len(p))]...)
	c.Messages += bytes.Count(p, sep) + bytes.Count(e, sep)
	if len(p) >= 5 {
		c.tail = append(c.tail[:0], p[len(p)-5:]...)
	} else {
		e = append(append(edge[:0], c.tail...), p...)
		c.tail = append(c.tail[:0], e[max(0, len(e)-5):]...)
	}
	return len(p), nil
}
