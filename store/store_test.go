package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestSealRoundTripAndTamper(t *testing.T) {
	s, err := NewSealer(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	random := make([]byte, 5000)
	rand.Read(random)
	for _, plain := range [][]byte{nil, []byte("short"), bytes.Repeat([]byte("compressible mail body "), 500), random} {
		var pooled [][]byte // WithSealed reuses its buffer: seal twice, keep copies
		for range 2 {
			s.WithSealed(plain, []byte("k1"), func(sealed []byte) error {
				pooled = append(pooled, bytes.Clone(sealed))
				return nil
			})
		}
		for _, sealed := range append([][]byte{s.Seal(plain, []byte("k1")), s.SealUncompressed(plain, []byte("k1"))}, pooled...) {
			got, err := s.Open(sealed, []byte("k1"))
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("round trip of %d bytes: %v", len(plain), err)
			}
			if _, err := s.Open(sealed, []byte("k2")); !errors.Is(err, ErrCorrupt) {
				t.Fatal("sealed data moved to another key name was accepted")
			}
			for _, i := range []int{0, 5, len(sealed) / 2, len(sealed) - 1} {
				bad := bytes.Clone(sealed)
				bad[i] ^= 0x40
				if _, err := s.Open(bad, []byte("k1")); err == nil {
					t.Fatalf("flipped byte %d of %d not detected", i, len(sealed))
				}
			}
		}
	}
	big := bytes.Repeat([]byte("x"), 10000)
	if len(s.Seal(big, nil)) >= len(big) {
		t.Fatal("compressible data not compressed")
	}
}

func TestWrapKeyBoundToTenant(t *testing.T) {
	master, data := NewKey(), NewKey()
	w, err := WrapKey(master, data, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := UnwrapKey(master, w, "acme"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := UnwrapKey(master, w, "globex"); err == nil {
		t.Fatal("a wrapped key opened for another tenant")
	}
	if _, err := UnwrapKey(NewKey(), w, "acme"); err == nil {
		t.Fatal("a wrapped key opened with another master key")
	}
}

func TestMasterKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "master.key")
	k1, created, err := LoadOrCreateMasterKey(p)
	if err != nil || !created {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("master key mode %v", fi.Mode())
	}
	k2, created, err := LoadOrCreateMasterKey(p)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatal("master key not read back")
	}
	os.WriteFile(p, []byte("not hex"), 0o600)
	if _, _, err := LoadOrCreateMasterKey(p); err == nil {
		t.Fatal("a damaged master key file was accepted")
	}
}

func TestRecordLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	l, err := OpenRecordLog(p)
	if err != nil {
		t.Fatal(err)
	}
	offs, err := l.Append([][]byte{[]byte("one"), {}, []byte("three")})
	if err != nil || l.Sync() != nil {
		t.Fatal(err)
	}
	l.Close()
	// A torn append at a crash: garbage after the last record.
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{0xff, 0xff, 0, 0, 1})
	f.Close()
	l, err = OpenRecordLog(p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	more, err := l.Append([][]byte{[]byte("four")})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"one", "", "three"} {
		if got, err := l.Read(offs[i]); err != nil || string(got) != want {
			t.Fatalf("record %d: %q %v", i, got, err)
		}
	}
	if got, err := l.Read(more[0]); err != nil || string(got) != "four" {
		t.Fatalf("record after torn tail: %q %v", got, err)
	}
	// Flip a byte inside a record: the checksum names it.
	f, _ = os.OpenFile(p, os.O_WRONLY, 0)
	f.WriteAt([]byte{'X'}, offs[2]+recHeader+1)
	f.Close()
	if _, err := l.Read(offs[2]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("altered record read without error: %v", err)
	}
}

func TestFSBlobsAndLock(t *testing.T) {
	dir := t.TempDir()
	b, err := NewFSBlobs(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := "0123456789abcdef0123456789abcdef"
	if err := b.Put(ctx, key, []byte("data")); err != nil || b.Sync(ctx) != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, key); err != nil || string(got) != "data" {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "ffffffffffffffff"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing blob: %v", err)
	}
	if err := b.Put(ctx, "../../etc/passwd", nil); err == nil {
		t.Fatal("a key with a path was accepted")
	}
	var keys []string
	b.List(ctx, func(k string) error { keys = append(keys, k); return nil })
	if len(keys) != 1 || keys[0] != key {
		t.Fatalf("list %v", keys)
	}
	l, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDir(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	l.Unlock()
	l2, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	l2.Unlock()
}

func TestPackBlobs(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := OpenPackBlobs(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	b.maxBytes = 300 // roll over to new packs quickly
	ctx := context.Background()
	key := func(i int) string { return fmt.Sprintf("%064x", i+1) }
	want := map[string][]byte{}
	for i := 0; i < 20; i++ {
		data := bytes.Repeat([]byte{byte('a' + i)}, 10+i*7)
		if err := b.Put(ctx, key(i), data); err != nil {
			t.Fatal(err)
		}
		want[key(i)] = data
	}
	if err := b.Delete(ctx, key(3)); err != nil {
		t.Fatal(err)
	}
	delete(want, key(3))
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "not-a-key", nil); err == nil {
		t.Fatal("a malformed key was accepted")
	}
	b.Close()
	packs, _ := filepath.Glob(filepath.Join(dir, "*.pack"))
	if len(packs) < 3 {
		t.Fatalf("%d pack files; the size limit should have started new ones", len(packs))
	}
	// A torn record at the end of the newest pack (crash before the flush).
	last := packs[len(packs)-1]
	f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("MVB1 torn"))
	f.Close()

	b, err = OpenPackBlobs(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for k, data := range want {
		got, err := b.Get(ctx, k)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("blob %s after reopen: %v", k[60:], err)
		}
	}
	if _, err := b.Get(ctx, key(3)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted blob: %v", err)
	}
	n := 0
	b.List(ctx, func(string) error { n++; return nil })
	if n != len(want) {
		t.Fatalf("list has %d keys, want %d", n, len(want))
	}
	// Writing continues after the cut tail, and a flipped byte is caught.
	if err := b.Put(ctx, key(99), []byte("after the crash")); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, key(99)); err != nil || string(got) != "after the crash" {
		t.Fatalf("put after torn tail: %q %v", got, err)
	}
	path, off, _, ok := b.Locate(key(5))
	if !ok {
		t.Fatal("locate")
	}
	f, _ = os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt([]byte{'#'}, off+2)
	f.Close()
	if _, err := b.Get(ctx, key(5)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("altered blob read without error: %v", err)
	}
}

// Sync drops the flushed pack bytes from the page cache; bytes written
// into the same page after a Sync, and into packs started between two
// Syncs, must read back whole, before and after a reopen.
func TestPackBlobsSyncDropsCacheKeepsData(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := OpenPackBlobs(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	b.maxBytes = 20 << 10
	ctx := context.Background()
	key := func(i int) string { return fmt.Sprintf("%064x", i+1) }
	data := func(i int) []byte { return bytes.Repeat([]byte{byte(i), byte(i >> 8), 0xA5}, 500+i*37) }
	check := func(b *PackBlobs, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			got, err := b.Get(ctx, key(i))
			if err != nil || !bytes.Equal(got, data(i)) {
				t.Fatalf("blob %d: %v", i, err)
			}
		}
	}
	// Written and synced, not yet read: no page of the finished packs and
	// at most the partly written last page of the newest stays cached.
	for i := 0; i < 30; i++ {
		if err := b.Put(ctx, key(i), data(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if cacheDroppable(t, dir) {
		packs, _ := filepath.Glob(filepath.Join(dir, "*.pack"))
		for i, p := range packs {
			limit := 0
			if i == len(packs)-1 {
				limit = 1
			}
			if n := residentPages(t, p); n > limit {
				t.Errorf("%s: %d pages still cached after Sync, want at most %d", filepath.Base(p), n, limit)
			}
		}
	}
	check(b, 30)
	for i := 30; i < 60; i++ {
		if err := b.Put(ctx, key(i), data(i)); err != nil {
			t.Fatal(err)
		}
		if i%3 != 1 { // some Syncs cover several records and packs
			if err := b.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
		check(b, i+1)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if packs, _ := filepath.Glob(filepath.Join(dir, "*.pack")); len(packs) < 3 {
		t.Fatalf("%d packs; the test wants Syncs across pack boundaries", len(packs))
	}
	b, err = OpenPackBlobs(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	check(b, 60)
}

// cacheDroppable tells whether dir's filesystem keeps file data apart from
// the page cache; on tmpfs the cache is the data and cannot be dropped.
func cacheDroppable(t *testing.T, dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Type != unix.TMPFS_MAGIC
}

// residentPages counts the pages of a file held in the page cache.
func residentPages(t *testing.T, path string) int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.Size() == 0 {
		return 0
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	// x/sys has no Mincore wrapper on Linux.
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestPackDamageKeepsReadableRecords flips bits in the headers of records
// of the newest pack, as a bad disk or a hostile operator might: every
// record that still checks out must stay readable, a record whose data is
// whole is recovered, and only a stretch with nothing whole after it at
// the very end is cut, its bytes saved beside the pack.
func TestPackDamageKeepsReadableRecords(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	key := func(i int) string { return fmt.Sprintf("%064x", i+1) }
	data := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, 100+i*13) }
	const n = 40
	fill := func(t *testing.T) (string, *PackBlobs) {
		dir := t.TempDir()
		b, err := OpenPackBlobs(dir, log)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if err := b.Put(ctx, key(i), data(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		return dir, b
	}
	flip := func(t *testing.T, path string, off int64, bit byte) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var c [1]byte
		f.ReadAt(c[:], off)
		c[0] ^= bit
		f.WriteAt(c[:], off)
	}
	readable := func(t *testing.T, b *PackBlobs, skip map[int]bool) {
		t.Helper()
		for i := 0; i < n; i++ {
			got, err := b.Get(ctx, key(i))
			if skip[i] {
				if err == nil {
					t.Errorf("record %d read back although its bytes are damaged", i)
				}
				continue
			}
			if err != nil || !bytes.Equal(got, data(i)) {
				t.Errorf("record %d after reopen: %v", i, err)
			}
		}
	}
	for _, tc := range []struct {
		name      string
		rec       int   // record whose header is hit
		field     int64 // byte within the header
		bit       byte
		lost      map[int]bool
		recovered bool
	}{
		{"magic in the middle", 10, 1, 0x04, nil, true},
		{"length in the middle", 10, 37, 0x01, nil, true},
		{"length high bits in the middle", 20, 39, 0x40, nil, true},
		{"length shorter in the middle", 10, 36, 0x02, nil, true},
		{"length of the last record", n - 1, 37, 0x01, nil, true},
		{"magic of the last record", n - 1, 0, 0x01, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, b := fill(t)
			path, off, _, _ := b.Locate(key(tc.rec))
			b.Close()
			flip(t, path, off-packHeader+tc.field, tc.bit)
			size := fileSize(t, path)
			b, err := OpenPackBlobs(dir, log)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			readable(t, b, tc.lost)
			d := b.Damage()
			if len(d) != 1 || d[0].Recovered != tc.recovered || d[0].Tail {
				t.Fatalf("damage %+v, want one stretch, recovered=%v", d, tc.recovered)
			}
			if got := fileSize(t, path); got != size {
				t.Errorf("pack cut from %d to %d bytes", size, got)
			}
			// New records go after the old ones and read back.
			if err := b.Put(ctx, key(99), []byte("after")); err != nil {
				t.Fatal(err)
			}
			b.Close()
			if b, err = OpenPackBlobs(dir, log); err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			readable(t, b, tc.lost)
			if got, err := b.Get(ctx, key(99)); err != nil || string(got) != "after" {
				t.Errorf("record written after the damage: %q %v", got, err)
			}
		})
	}
	t.Run("zeroed header and crc", func(t *testing.T) {
		dir, b := fill(t)
		path, off, _, _ := b.Locate(key(10))
		crcPath, crcOff, _, _ := b.Locate(key(30))
		b.Close()
		f, _ := os.OpenFile(path, os.O_RDWR, 0)
		f.WriteAt(make([]byte, packHeader), off-packHeader)
		f.Close()
		flip(t, crcPath, crcOff-4, 0x08)
		b, err := OpenPackBlobs(dir, log)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		readable(t, b, map[int]bool{10: true, 30: true})
		if d := b.Damage(); len(d) != 1 || d[0].Recovered || d[0].Offset != off-packHeader {
			t.Fatalf("damage %+v, want the zeroed record's stretch", d)
		}
		// A hit CRC leaves the bytes to the caller to authenticate.
		got, err := b.Get(ctx, key(30))
		if !errors.Is(err, ErrChecksum) || !errors.Is(err, ErrCorrupt) || !bytes.Equal(got, data(30)) {
			t.Errorf("record with a hit CRC: %v, %d bytes", err, len(got))
		}
	})
	t.Run("torn tail", func(t *testing.T) {
		dir, b := fill(t)
		path, _, _, _ := b.Locate(key(0))
		b.Close()
		size := fileSize(t, path)
		torn := []byte("MVB1" + strings.Repeat("k", 32) + "\x00\x10\x00\x00half a record")
		f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		f.Write(torn)
		f.Close()
		b, err := OpenPackBlobs(dir, log)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		readable(t, b, nil)
		d := b.Damage()
		if len(d) != 1 || !d[0].Tail || d[0].Offset != size {
			t.Fatalf("damage %+v, want the torn tail at %d", d, size)
		}
		if got := fileSize(t, path); got != size {
			t.Errorf("pack is %d bytes after the cut, want %d", got, size)
		}
		saved, err := os.ReadFile(filepath.Join(dir, d[0].SavedTo))
		if err != nil || !bytes.Equal(saved, torn) {
			t.Errorf("saved tail %q %v, want the cut bytes", saved, err)
		}
	})
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
