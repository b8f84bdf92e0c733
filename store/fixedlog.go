package store

import (
	"fmt"
	"os"
	"sync"
)

// FixedLog is an append-only file of records of one fixed size, so that
// the newest record is read without scanning. A partial record at the end
// (an append torn by a crash before its flush) is cut off at open.
type FixedLog struct {
	mu   sync.Mutex
	f    *os.File
	size int
	n    int64
}

// OpenFixedLog opens or creates the log at path for records of size bytes
// and returns how many bytes of a torn last record it cut off.
func OpenFixedLog(path string, size int) (*FixedLog, int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("open %s: %w", path, err)
	}
	l := &FixedLog{f: f, size: size, n: st.Size() / int64(size)}
	torn := st.Size() - l.n*int64(size)
	if torn > 0 {
		if err := f.Truncate(l.n * int64(size)); err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("cut torn record of %s: %w", path, err)
		}
	}
	return l, torn, nil
}

// Len is the number of whole records.
func (l *FixedLog) Len() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// Read returns record i (0-based).
func (l *FixedLog) Read(i int64) ([]byte, error) {
	if i < 0 || i >= l.Len() {
		return nil, fmt.Errorf("read record %d of %s: out of range", i, l.f.Name())
	}
	b := make([]byte, l.size)
	if _, err := l.f.ReadAt(b, i*int64(l.size)); err != nil {
		return nil, fmt.Errorf("read record %d of %s: %w", i, l.f.Name(), err)
	}
	return b, nil
}

// Append writes a record at the end; it is durable after Sync (or any
// flush of the filesystem, such as PackBlobs.Sync).
func (l *FixedLog) Append(rec []byte) error {
	if len(rec) != l.size {
		return fmt.Errorf("append to %s: record of %d bytes, want %d", l.f.Name(), len(rec), l.size)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.WriteAt(rec, l.n*int64(l.size)); err != nil {
		return fmt.Errorf("append to %s: %w", l.f.Name(), err)
	}
	l.n++
	return nil
}

// DropLast removes the newest record: one that announced a write which
// then failed, so it describes nothing that happened.
func (l *FixedLog) DropLast() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 {
		return nil
	}
	if err := l.f.Truncate((l.n - 1) * int64(l.size)); err != nil {
		return fmt.Errorf("drop last record of %s: %w", l.f.Name(), err)
	}
	l.n--
	return nil
}

// Sync makes appended records durable.
func (l *FixedLog) Sync() error {
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", l.f.Name(), err)
	}
	return nil
}

// Close closes the file.
func (l *FixedLog) Close() error { return l.f.Close() }

// Extent is the log's whole records as a file prefix.
func (l *FixedLog) Extent() FileExtent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return FileExtent{Path: l.f.Name(), Size: l.n * int64(l.size)}
}
