package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	"golang.org/x/sys/unix"
)

// Shredding makes a deleted blob's bytes unreadable in place. A record is
// first marked (its header's magic becomes shredMagic, its key is zeroed)
// and that mark is flushed; then its data is punched out of the file (or
// overwritten with zeros where the filesystem cannot punch holes) and
// flushed; last the mark becomes shreddedMagic. A crash at any point leaves
// either the unmarked record, which the caller shreds again, or a marked
// one, which the scan at open finishes. Live records are never moved, so
// no live byte is at risk.
const (
	shredMagic    = "MVBX" // marked; its data may still be there
	shreddedMagic = "MVB0" // its data is gone
)

// Shred removes the blobs of keys and destroys their bytes on disk before
// it returns. Keys that do not exist are skipped.
func (b *PackBlobs) Shred(ctx context.Context, keys []string) error {
	type target struct {
		f   *os.File
		loc packLoc
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var ts []target
	for _, key := range keys {
		k, err := parseKey(key)
		if err != nil {
			return err
		}
		loc, ok := b.index[k]
		if !ok {
			continue
		}
		ts = append(ts, target{b.files[loc.pack], loc})
	}
	if len(ts) == 0 {
		return nil
	}
	files := map[*os.File]bool{}
	for _, t := range ts {
		if err := writeShredHeader(t.f, t.loc.off-packHeader, t.loc.n, shredMagic); err != nil {
			return err
		}
		files[t.f] = true
	}
	if err := syncFiles(files); err != nil {
		return err
	}
	// From here on the records are gone for readers.
	for _, key := range keys {
		if k, err := parseKey(key); err == nil {
			delete(b.index, k)
		}
	}
	for _, t := range ts {
		if err := punch(t.f, t.loc.off, int64(t.loc.n)); err != nil {
			return err
		}
	}
	if err := syncFiles(files); err != nil {
		return err
	}
	for _, t := range ts {
		if err := writeShredHeader(t.f, t.loc.off-packHeader, t.loc.n, shreddedMagic); err != nil {
			return err
		}
	}
	return nil
}

// finishShreds punches the data of records the scan found marked but not
// yet shredded (a crash during Shred) and marks them shredded.
func (b *PackBlobs) finishShreds(pending []shredPending) error {
	if len(pending) == 0 {
		return nil
	}
	files := map[*os.File]bool{}
	for _, p := range pending {
		if err := punch(p.f, p.off+packHeader, int64(p.n)); err != nil {
			return err
		}
		files[p.f] = true
	}
	if err := syncFiles(files); err != nil {
		return err
	}
	for _, p := range pending {
		if err := writeShredHeader(p.f, p.off, p.n, shreddedMagic); err != nil {
			return err
		}
	}
	b.log.Info("finished shredding blobs an interrupted deletion had marked", "records", len(pending))
	return nil
}

type shredPending struct {
	f   *os.File
	off int64 // of the record header
	n   uint32
}

func writeShredHeader(f *os.File, off int64, n uint32, magic string) error {
	var h [packHeader]byte
	copy(h[:], magic)
	binary.LittleEndian.PutUint32(h[36:40], n)
	if _, err := f.WriteAt(h[:], off); err != nil {
		return fmt.Errorf("shred record at %d of %s: %w", off, f.Name(), err)
	}
	return nil
}

// punch frees [off, off+n) of f; the filesystem reads zeros there after.
// Where holes are not supported the range is overwritten with zeros.
func punch(f *os.File, off, n int64) error {
	if n == 0 {
		return nil
	}
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("punch %d bytes at %d of %s: %w", n, off, f.Name(), err)
	}
	return zeroRange(f, off, n)
}

func zeroRange(f *os.File, off, n int64) error {
	zeros := make([]byte, min(n, 1<<20))
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:k], off); err != nil {
			return fmt.Errorf("zero %d bytes at %d of %s: %w", k, off, f.Name(), err)
		}
		off, n = off+k, n-k
	}
	return nil
}

func syncFiles(files map[*os.File]bool) error {
	for f := range files {
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return fmt.Errorf("flush %s: %w", f.Name(), err)
		}
	}
	return nil
}

// Wipe overwrites the records at offs with zeros of the same length (with
// the checksum of zeros, so the log still reads as whole) and flushes the
// log: the records' content is gone, every other record stays where it is.
func (l *RecordLog) Wipe(offs []int64) error {
	if len(offs) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var zeros []byte
	for _, off := range offs {
		var h [recHeader]byte
		if _, err := l.f.ReadAt(h[:], off); err != nil {
			return fmt.Errorf("wipe record at %d: %w", off, err)
		}
		n := int64(binary.LittleEndian.Uint32(h[:4]))
		if off+recHeader+n > l.size {
			return fmt.Errorf("wipe record at %d: length %d beyond end: %w", off, n, ErrCorrupt)
		}
		if int64(len(zeros)) < n {
			zeros = make([]byte, n)
		}
		binary.LittleEndian.PutUint32(h[4:], crc32.Checksum(zeros[:n], castagnoli))
		if _, err := l.f.WriteAt(zeros[:n], off+recHeader); err != nil {
			return fmt.Errorf("wipe record at %d: %w", off, err)
		}
		if _, err := l.f.WriteAt(h[:], off); err != nil {
			return fmt.Errorf("wipe record at %d: %w", off, err)
		}
	}
	return l.Sync()
}
