package store

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"sync"
)

// RecordLog is an append-only file of length-prefixed, checksummed records.
// Records are addressed by their offset. Bytes after the last committed
// record (a torn append at a crash) are never referenced and are skipped by
// later appends, which always start at the current end of the file.
type RecordLog struct {
	mu   sync.Mutex
	f    *os.File
	size int64
}

const recHeader = 8 // uint32 length, uint32 CRC-32C of the payload

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// OpenRecordLog opens or creates the log at path.
func OpenRecordLog(path string) (*RecordLog, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open record log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open record log: %w", err)
	}
	return &RecordLog{f: f, size: st.Size()}, nil
}

// Append writes records at the end and returns their offsets. They are
// durable only after Sync.
func (l *RecordLog) Append(recs [][]byte) ([]int64, error) {
	n := 0
	for _, r := range recs {
		n += recHeader + len(r)
	}
	buf := make([]byte, 0, n)
	offs := make([]int64, len(recs))
	l.mu.Lock()
	defer l.mu.Unlock()
	off := l.size
	for i, r := range recs {
		offs[i] = off
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(r)))
		buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(r, castagnoli))
		buf = append(buf, r...)
		off += int64(recHeader + len(r))
	}
	if _, err := l.f.WriteAt(buf, l.size); err != nil {
		return nil, fmt.Errorf("append record log: %w", err)
	}
	l.size = off
	return offs, nil
}

// Sync makes appended records durable.
func (l *RecordLog) Sync() error {
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("sync record log: %w", err)
	}
	return nil
}

// Read returns the record at off. On a checksum mismatch it returns the
// bytes with an error that is ErrChecksum.
func (l *RecordLog) Read(off int64) ([]byte, error) {
	var h [recHeader]byte
	if _, err := l.f.ReadAt(h[:], off); err != nil {
		return nil, fmt.Errorf("read record at %d: %w", off, err)
	}
	n := binary.LittleEndian.Uint32(h[:4])
	if int64(n) > l.Size()-off {
		return nil, fmt.Errorf("read record at %d: length %d beyond end: %w", off, n, ErrCorrupt)
	}
	b := make([]byte, n)
	if _, err := l.f.ReadAt(b, off+recHeader); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read record at %d: %w", off, err)
	}
	if crc32.Checksum(b, castagnoli) != binary.LittleEndian.Uint32(h[4:]) {
		// The bytes may be whole and the CRC the damaged part: the caller
		// can authenticate them.
		return b, fmt.Errorf("read record at %d: %w", off, ErrChecksum)
	}
	return b, nil
}

// Batched reads: records at most batchGap apart are read together, in reads
// of up to batchSpan bytes. Copying a few KiB more from the page cache costs
// less than another system call. batchTail is read past the last record of
// a read, enough for most records; a longer one is read on its own.
const (
	batchGap  = 16 << 10
	batchSpan = 1 << 20
	batchTail = 4 << 10
)

// batchBufs holds ReadBatch's buffers: a fresh one of this size is new
// memory the kernel must fault in during the read, which cost more than
// the read itself.
var batchBufs = sync.Pool{New: func() any { return new([]byte) }}

// ReadBatch reads the records at offs in ascending offset order and calls fn
// with each: i is its index in offs, rec is valid only during the call, and
// err says why that one record could not be read (with ErrChecksum, rec
// holds the bytes that did not match). Listing many records
// this way takes few large reads instead of two per record. ReadBatch
// stops at the first error fn returns and returns it.
func (l *RecordLog) ReadBatch(offs []int64, fn func(i int, rec []byte, err error) error) error {
	order := make([]int, len(offs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(offs[a], offs[b]) })
	size := l.Size()
	bp := batchBufs.Get().(*[]byte)
	defer batchBufs.Put(bp)
	buf := *bp
	defer func() { *bp = buf[:0] }()
	for g := 0; g < len(order); {
		start := offs[order[g]]
		e := g + 1
		for e < len(order) && offs[order[e]]-offs[order[e-1]] <= batchGap && offs[order[e]]+batchTail-start <= batchSpan {
			e++
		}
		end := min(offs[order[e-1]]+batchTail, size)
		var rerr error
		if start >= 0 && start < end {
			buf = slices.Grow(buf[:0], int(end-start))[:end-start]
			n, err := l.f.ReadAt(buf, start)
			if err != nil && err != io.EOF {
				rerr = fmt.Errorf("read records at %d: %w", start, err)
			}
			buf = buf[:n]
		} else {
			buf = buf[:0]
		}
		for _, i := range order[g:e] {
			rec, err := l.recordIn(buf, start, offs[i])
			if rec == nil && err == nil {
				if rerr != nil {
					err = rerr
				} else {
					// Not (wholly) in buf: longer than batchTail, or a bad offset.
					rec, err = l.Read(offs[i])
				}
			}
			if err := fn(i, rec, err); err != nil {
				return err
			}
		}
		g = e
	}
	return nil
}

// recordIn returns the record at off from buf, which holds the log from
// start on; nil and no error if buf does not hold all of it.
func (l *RecordLog) recordIn(buf []byte, start, off int64) ([]byte, error) {
	p := off - start
	if p < 0 || p+recHeader > int64(len(buf)) {
		return nil, nil
	}
	n := int64(binary.LittleEndian.Uint32(buf[p:]))
	if p+recHeader+n > int64(len(buf)) {
		return nil, nil
	}
	b := buf[p+recHeader : p+recHeader+n]
	if crc32.Checksum(b, castagnoli) != binary.LittleEndian.Uint32(buf[p+4:]) {
		return b, fmt.Errorf("read record at %d: %w", off, ErrChecksum)
	}
	return b, nil
}

// Size is the current end of the log.
func (l *RecordLog) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// Close closes the file.
func (l *RecordLog) Close() error { return l.f.Close() }

// Extent is the log's records as a file prefix.
func (l *RecordLog) Extent() FileExtent {
	return FileExtent{Path: l.f.Name(), Size: l.Size()}
}
