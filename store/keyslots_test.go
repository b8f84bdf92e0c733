package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestMessageKeys: a blob sealed with a message's own key opens with that
// key, unwrapped from the key file, and with nothing else once the slot is
// destroyed; the slot is zeros on disk afterwards.
func TestMessageKeys(t *testing.T) {
	s, err := NewSealer(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	path := filepath.Join(t.TempDir(), "keys.dat")
	ks, err := OpenKeySlots(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	plain := bytes.Repeat([]byte("a message to be shredded\r\n"), 100)
	k := NewDataKey()
	ms, err := s.ForKey(&k)
	if err != nil {
		t.Fatal(err)
	}
	sealed := ms.Seal(plain, []byte("blob"))
	if _, err := s.Open(sealed, []byte("blob")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("the tenant key opens a message's blob: %v", err)
	}
	wrapped := s.AppendWrapDataKey(nil, &k, []byte("message 7"))
	if len(wrapped) != WrappedKeySize {
		t.Fatalf("wrapped key of %d bytes", len(wrapped))
	}
	// Message 7 beside message 3, a hole (a tenant-key message) between.
	if err := ks.Put(7, wrapped); err != nil {
		t.Fatal(err)
	}
	if err := ks.Put(3, s.AppendWrapDataKey(nil, &k, []byte("message 3"))); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, WrappedKeySize)
	for n, want := range map[uint64]bool{1: false, 3: true, 5: false, 7: true, 9: false} {
		if ok, err := ks.Get(n, buf); err != nil || ok != want {
			t.Fatalf("slot %d: %v %v, want %v", n, ok, err, want)
		}
	}
	ks.Get(7, buf)
	if _, err := s.UnwrapDataKey(buf, []byte("message 3")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a wrapped key opened for another message: %v", err)
	}
	k7, err := s.UnwrapDataKey(buf, []byte("message 7"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k7.Open(sealed, []byte("blob")); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open with the unwrapped key: %v", err)
	}
	if err := ks.Destroy([]uint64{7, 12}); err != nil {
		t.Fatal(err)
	}
	if ok, err := ks.Get(7, buf); err != nil || ok {
		t.Fatalf("destroyed slot: %v %v", ok, err)
	}
	if ok, _ := ks.Get(3, buf); !ok {
		t.Fatal("destroying slot 7 hit slot 3")
	}
	disk, _ := os.ReadFile(path)
	if bytes.Contains(disk, wrapped) || !bytes.Equal(disk[6*WrappedKeySize:7*WrappedKeySize], make([]byte, WrappedKeySize)) {
		t.Fatal("the destroyed key is still in the file")
	}
	if len(disk) != 7*WrappedKeySize {
		t.Fatalf("destroying a slot past the end grew the file to %d bytes", len(disk))
	}
}

// BenchmarkMessageKeyNew is what a message key adds to the ingest of a
// new message: a random key, its cipher set up, the key wrapped.
// BenchmarkSeal30K is the seal of a message of about 30 KB (the ingest
// benchmark's average) for comparison.
func BenchmarkMessageKeyNew(b *testing.B) {
	s, _ := NewSealer(NewKey())
	var w [WrappedKeySize]byte
	b.ReportAllocs()
	for b.Loop() {
		k := NewDataKey()
		if _, err := s.ForKey(&k); err != nil {
			b.Fatal(err)
		}
		s.AppendWrapDataKey(w[:0], &k, []byte("message key 12345678"))
	}
}

// BenchmarkMessageKeyOpen is what it adds to reading a message: the key
// unwrapped and its cipher set up.
func BenchmarkMessageKeyOpen(b *testing.B) {
	s, _ := NewSealer(NewKey())
	k := NewDataKey()
	w := s.AppendWrapDataKey(nil, &k, []byte("message key 12345678"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.UnwrapDataKey(w, []byte("message key 12345678")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeal30K(b *testing.B) {
	s, _ := NewSealer(NewKey())
	var m bytes.Buffer
	for i := 0; m.Len() < 30000; i++ {
		m.WriteString("Line ")
		m.WriteString(string(rune('a' + i%26)))
		m.WriteString(" of a business letter with some varying words in it, number ")
		m.WriteByte(byte('0' + i%10))
		m.WriteString("\r\n")
	}
	plain := m.Bytes()
	buf := make([]byte, 0, 2*len(plain))
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		buf = s.AppendSeal(buf[:0], plain, []byte("blob"))
	}
}
