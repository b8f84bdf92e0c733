package store

import (
	"fmt"
	"os"
	"sync"
)

// KeySlots is a file of wrapped message keys, one slot of WrappedKeySize
// bytes per message number, so that a deletion destroys a key by
// overwriting its slot in place. A slot of zeros holds no key: never
// written (a message sealed with the tenant's key, or a hole in a sparse
// file) or destroyed. The keys live apart from the sealed bytes they open,
// so that a copy of the pack files alone opens nothing once the keys are
// destroyed.
type KeySlots struct {
	mu sync.RWMutex // Destroy against Get of the same slot
	f  *os.File
}

// OpenKeySlots opens or creates the key file at path.
func OpenKeySlots(path string) (*KeySlots, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open key file: %w", err)
	}
	return &KeySlots{f: f}, nil
}

func slotOff(n uint64) int64 { return int64(n-1) * int64(WrappedKeySize) }

// Put writes the wrapped key of message n (n >= 1); it is durable after
// Sync (or a flush of the whole filesystem).
func (k *KeySlots) Put(n uint64, wrapped []byte) error {
	if len(wrapped) != WrappedKeySize || n == 0 {
		return fmt.Errorf("put key %d: %d bytes, want %d", n, len(wrapped), WrappedKeySize)
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if _, err := k.f.WriteAt(wrapped, slotOff(n)); err != nil {
		return fmt.Errorf("put key %d: %w", n, err)
	}
	return nil
}

// Get reads the wrapped key of message n into dst (WrappedKeySize bytes)
// and reports whether the slot holds one.
func (k *KeySlots) Get(n uint64, dst []byte) (bool, error) {
	if len(dst) != WrappedKeySize || n == 0 {
		return false, fmt.Errorf("get key %d: buffer of %d bytes", n, len(dst))
	}
	k.mu.RLock()
	m, err := k.f.ReadAt(dst, slotOff(n))
	k.mu.RUnlock()
	if m < len(dst) {
		// Past the end of the file: never written.
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get key %d: %w", n, err)
	}
	for _, b := range dst {
		if b != 0 {
			return true, nil
		}
	}
	return false, nil
}

// Destroy overwrites the slots of ns with zeros and flushes the file
// before it returns: the keys are gone from the file for good, and what
// they sealed opens no more.
func (k *KeySlots) Destroy(ns []uint64) error {
	var zero [WrappedKeySize]byte
	k.mu.Lock()
	defer k.mu.Unlock()
	st, err := k.f.Stat()
	if err != nil {
		return fmt.Errorf("destroy keys: %w", err)
	}
	for _, n := range ns {
		if n == 0 || slotOff(n) >= st.Size() {
			continue // never written
		}
		if _, err := k.f.WriteAt(zero[:], slotOff(n)); err != nil {
			return fmt.Errorf("destroy key %d: %w", n, err)
		}
	}
	if err := k.f.Sync(); err != nil {
		return fmt.Errorf("destroy keys: %w", err)
	}
	return nil
}

// Sync makes the keys put before it durable.
func (k *KeySlots) Sync() error {
	if err := k.f.Sync(); err != nil {
		return fmt.Errorf("sync key file: %w", err)
	}
	return nil
}

// Close closes the file.
func (k *KeySlots) Close() error { return k.f.Close() }

// Extent is the file as it is now. Slots change in place only when a
// deletion destroys them, which a backup's copy keeps out of (see
// backend.Tenant.BackupCut), or for message numbers past every committed
// one.
func (k *KeySlots) Extent() (FileExtent, error) {
	st, err := k.f.Stat()
	if err != nil {
		return FileExtent{}, fmt.Errorf("key file: %w", err)
	}
	return FileExtent{Path: k.f.Name(), Size: st.Size()}, nil
}
