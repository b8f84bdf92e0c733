package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
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

// Read returns the record at off.
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
		return nil, fmt.Errorf("read record at %d: checksum mismatch: %w", off, ErrCorrupt)
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
