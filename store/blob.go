package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ErrNotFound is returned for a blob that does not exist.
var ErrNotFound = errors.New("blob not found")

// Blobs stores opaque, immutable byte strings under keys. The filesystem
// implementation is the default; an object store can follow behind the same
// interface.
type Blobs interface {
	// Put stores data under key. When Put returns the data is on stable
	// storage except for the directory entry, which Sync makes durable.
	// Put must not keep data: the caller reuses it.
	Put(ctx context.Context, key string, data []byte) error
	Get(ctx context.Context, key string) ([]byte, error)
	Has(ctx context.Context, key string) (bool, error)
	Delete(ctx context.Context, key string) error
	// List calls fn for every key, in no particular order.
	List(ctx context.Context, fn func(key string) error) error
	// Sync makes every Put that returned before the call durable.
	Sync(ctx context.Context) error
	Close() error
}

// FSBlobs keeps each blob in its own file below a directory, fanned out by
// the first four hex characters of the key. Put does not fsync each file:
// Sync flushes the whole filesystem once (syncfs), which costs one flush per
// commit batch instead of two per blob.
type FSBlobs struct {
	dir string
	seq atomic.Uint64 // names temporary files
}

// NewFSBlobs returns a blob store rooted at dir, creating it if missing.
func NewFSBlobs(dir string) (*FSBlobs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create blob dir: %w", err)
	}
	return &FSBlobs{dir: dir}, nil
}

func (b *FSBlobs) path(key string) (string, error) {
	if len(key) < 8 || strings.ContainsAny(key, `/\.`) {
		return "", fmt.Errorf("invalid blob key %q", key)
	}
	return filepath.Join(b.dir, key[:2], key[2:4], key), nil
}

// Put writes to a temporary file and renames it into place, so a crash
// leaves the whole blob or none, and a blob that is already referenced is
// never seen truncated; it is durable after Sync.
func (b *FSBlobs) Put(ctx context.Context, key string, data []byte) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	tmp := p + ".tmp" + strconv.FormatUint(b.seq.Add(1), 36)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(p), 0o700); err == nil {
			f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		}
	}
	if err != nil {
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	return nil
}

// Close releases nothing: files are opened per call.
func (b *FSBlobs) Close() error { return nil }

// Get reads a blob.
func (b *FSBlobs) Get(ctx context.Context, key string) ([]byte, error) {
	p, err := b.path(key)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("get blob %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get blob %s: %w", key, err)
	}
	return data, nil
}

// Has reports whether a blob exists.
func (b *FSBlobs) Has(ctx context.Context, key string) (bool, error) {
	p, err := b.path(key)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Delete removes a blob; a missing blob is not an error.
func (b *FSBlobs) Delete(ctx context.Context, key string) error {
	p, err := b.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

// List walks the fan-out directories.
func (b *FSBlobs) List(ctx context.Context, fn func(key string) error) error {
	return filepath.WalkDir(b.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.Contains(d.Name(), ".") {
			return nil
		}
		return fn(d.Name())
	})
}

// Sync flushes every blob written before the call, with their directory
// entries, to stable storage.
func (b *FSBlobs) Sync(ctx context.Context) error {
	f, err := os.Open(b.dir)
	if err != nil {
		return fmt.Errorf("sync blobs: %w", err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("sync blobs: %w", err)
	}
	return nil
}

// SyncDir fsyncs a directory so that entries created in it survive a power
// loss.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
