package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestPackShred(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key := func(i int) string { return fmt.Sprintf("%064x", i+1) }
	data := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 10000+i) }
	b, err := OpenPackBlobs(dir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := b.Put(ctx, key(i), data(i)); err != nil {
			t.Fatal(err)
		}
	}
	path, off1, n1, _ := b.Locate(key(1))
	_, off2, n2, _ := b.Locate(key(2))
	if err := b.Shred(ctx, []string{key(1), "00" + key(9)[2:]}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, key(1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("shredded blob: %v", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := raw[off1 : off1+int64(n1)]; !bytes.Equal(got, make([]byte, n1)) {
		t.Fatal("shredded data still on disk")
	}
	if h := raw[off1-packHeader : off1]; string(h[:4]) != shreddedMagic || !bytes.Equal(h[4:36], make([]byte, 32)) {
		t.Fatalf("shredded header %q", h[:4])
	}
	// A crash after the mark: the next open finishes the shred.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeShredHeader(f, off2-packHeader, uint32(n2), shredMagic); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b.Close()
	b, err = OpenPackBlobs(dir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := range 4 {
		got, err := b.Get(ctx, key(i))
		if i == 1 || i == 2 {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("blob %d after reopen: %v", i, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, data(i)) {
			t.Fatalf("live blob %d damaged: %v", i, err)
		}
	}
	raw, _ = os.ReadFile(path)
	if !bytes.Equal(raw[off2:off2+int64(n2)], make([]byte, n2)) || string(raw[off2-packHeader:off2-packHeader+4]) != shreddedMagic {
		t.Fatal("interrupted shred not finished at open")
	}
	if d := b.Damage(); len(d) != 0 {
		t.Fatalf("shredded records reported as damage: %+v", d)
	}
}

func TestRecordLogWipe(t *testing.T) {
	l, err := OpenRecordLog(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	offs, err := l.Append([][]byte{[]byte("first secret"), []byte("second")})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Wipe(offs[:1]); err != nil {
		t.Fatal(err)
	}
	got, err := l.Read(offs[0])
	if err != nil || !bytes.Equal(got, make([]byte, len("first secret"))) {
		t.Fatalf("wiped record %q %v", got, err)
	}
	if got, err := l.Read(offs[1]); err != nil || string(got) != "second" {
		t.Fatalf("other record %q %v", got, err)
	}
}

func TestPackCompact(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key := func(i int) string { return fmt.Sprintf("%064x", i+1) }
	data := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, 20000+i) }
	b, err := OpenPackBlobs(dir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	b.maxBytes = 100 << 10 // several packs
	for i := range 20 {
		if err := b.Put(ctx, key(i), data(i)); err != nil {
			t.Fatal(err)
		}
	}
	var gone []string
	for i := 0; i < 20; i += 3 {
		gone = append(gone, key(i))
	}
	if err := b.Shred(ctx, gone); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		var n int64
		names, _ := filepath.Glob(filepath.Join(dir, "*.pack"))
		for _, name := range names {
			st, _ := os.Stat(name)
			n += st.Size()
		}
		return n
	}
	before := size()
	n, err := b.Compact(ctx, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	if n < int64(len(gone))*20000 || size() != before-n {
		t.Fatalf("compaction gave back %d bytes (%d -> %d), want the %d shredded records", n, before, size(), len(gone))
	}
	check := func(b *PackBlobs) {
		for i := range 20 {
			got, err := b.Get(ctx, key(i))
			if i%3 == 0 {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("shredded blob %d: %v", i, err)
				}
				continue
			}
			if err != nil || !bytes.Equal(got, data(i)) {
				t.Fatalf("live blob %d after compaction: %v", i, err)
			}
		}
	}
	check(b)
	// New blobs go on after it.
	if err := b.Put(ctx, key(30), data(30)); err != nil {
		t.Fatal(err)
	}
	b.Close()
	// A compaction a crash cut off leaves its copy: the open removes it.
	os.WriteFile(filepath.Join(dir, "00000000.pack.compact"), []byte("partial"), 0o600)
	b, err = OpenPackBlobs(dir, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	check(b)
	if got, err := b.Get(ctx, key(30)); err != nil || !bytes.Equal(got, data(30)) {
		t.Fatalf("blob written after the compaction: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "00000000.pack.compact")); !os.IsNotExist(err) {
		t.Fatal("unfinished compaction copy left")
	}
	if d := b.Damage(); len(d) != 0 {
		t.Fatalf("damage after compaction: %+v", d)
	}
}
