package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

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
	b.shredMu.Lock()
	defer b.shredMu.Unlock()
	// From the index the records go at once: readers get ErrNotFound. The
	// rest needs no lock: Put appends past every record, and Compact waits
	// for shredMu.
	b.mu.Lock()
	var ts []target
	for _, key := range keys {
		k, err := parseKey(key)
		if err != nil {
			b.mu.Unlock()
			return err
		}
		loc, ok := b.index[k]
		if !ok {
			continue
		}
		ts = append(ts, target{b.files[loc.pack], loc})
		b.dead[loc.pack] += packHeader + int64(loc.n)
		delete(b.index, k)
	}
	b.mu.Unlock()
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

// Compact gives back the space of shredded records: each pack whose
// shredded records make up at least minDead of it is copied without them
// to a new file, flushed, and renamed over the old one, so a crash leaves
// either the old pack or the whole new one; no live record is ever
// written in place. The newest pack is first closed for appends (a new
// one is started) if it qualifies. A pack with damage found at open is
// left alone, so verify still sees it. It returns the bytes given back.
func (b *PackBlobs) Compact(ctx context.Context, minDead float64) (int64, error) {
	b.shredMu.Lock()
	defer b.shredMu.Unlock()
	b.mu.Lock()
	damaged := map[string]bool{}
	for _, d := range b.damage {
		damaged[d.Pack] = true
	}
	qualifies := func(p uint32, size int64) bool {
		return b.dead[p] > 0 && size > 0 && float64(b.dead[p]) >= minDead*float64(size) && !damaged[filepath.Base(b.files[p].Name())]
	}
	newest := uint32(len(b.files) - 1)
	if qualifies(newest, b.size) {
		if err := b.newPack(); err != nil {
			b.mu.Unlock()
			return 0, err
		}
	}
	var todo []uint32
	for p := range uint32(len(b.files) - 1) {
		st, err := b.files[p].Stat()
		if err == nil && qualifies(p, st.Size()) {
			todo = append(todo, p)
		}
	}
	b.mu.Unlock()
	var total int64
	for _, p := range todo {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := b.compactPack(p)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// compactPack rewrites one finished pack with its live records only. Live
// records of a finished pack never change (Put appends to the newest pack,
// Shred waits for shredMu), so they are copied without holding mu.
// retireAfter is how long a replaced pack file stays open for readers that
// took it before the swap (a read takes milliseconds).
const retireAfter = 5 * time.Second

func (b *PackBlobs) compactPack(p uint32) (int64, error) {
	type rec struct {
		key [32]byte
		loc packLoc
	}
	b.mu.RLock()
	old := b.files[p]
	var recs []rec
	for k, loc := range b.index {
		if loc.pack == p {
			recs = append(recs, rec{k, loc})
		}
	}
	b.mu.RUnlock()
	sort.Slice(recs, func(i, j int) bool { return recs[i].loc.off < recs[j].loc.off })
	st, err := old.Stat()
	if err != nil {
		return 0, err
	}
	name := packName(b.dir, p)
	tmp := name + ".compact"
	nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("compact pack: %w", err)
	}
	fail := func(err error) (int64, error) {
		nf.Close()
		os.Remove(tmp)
		return 0, fmt.Errorf("compact pack %s: %w", name, err)
	}
	newOff := make([]int64, len(recs))
	var off int64
	buf := make([]byte, 0, 1<<20)
	for i, r := range recs {
		n := packHeader + int(r.loc.n)
		buf = slices.Grow(buf[:0], n)[:n]
		// The record as it lies, header and all: a damaged checksum
		// stays for verify to see.
		if _, err := old.ReadAt(buf, r.loc.off-packHeader); err != nil {
			return fail(err)
		}
		if _, err := nf.WriteAt(buf, off); err != nil {
			return fail(err)
		}
		newOff[i] = off
		off += int64(n)
	}
	if err := unix.Fdatasync(int(nf.Fd())); err != nil {
		return fail(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := os.Rename(tmp, name); err != nil {
		nf.Close()
		os.Remove(tmp)
		return 0, fmt.Errorf("compact pack %s: %w", name, err)
	}
	if err := SyncDir(b.dir); err != nil {
		// Either name is a whole pack; the new one is in use from here.
		b.log.Error("flushing the directory after a pack compaction", "err", err)
	}
	for i, r := range recs {
		if cur := b.index[r.key]; cur == r.loc {
			b.index[r.key] = packLoc{pack: p, n: r.loc.n, off: newOff[i] + packHeader}
		}
	}
	b.files[p] = nf
	// A reader that took the old file before the swap may still be
	// reading it; its space is given back when it is closed.
	b.retired = append(b.retired, old)
	time.AfterFunc(retireAfter, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if i := slices.Index(b.retired, old); i >= 0 {
			b.retired = slices.Delete(b.retired, i, i+1)
			old.Close()
		}
	})
	b.dead[p] = 0
	b.log.Info("compacted pack", "pack", filepath.Base(name), "bytes_before", st.Size(), "bytes_after", off)
	return st.Size() - off, nil
}
