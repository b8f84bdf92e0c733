// Package backup writes consistent online snapshots of the archive as a tar
// stream (optionally zstd-compressed), reads them back, and restores them
// into a fresh data directory.
package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/store"
)

// Format names the layout of a backup stream.
const Format = "mailvault-backup 1"

const (
	providerEntry = "provider.json"
	manifestEntry = "manifest.json"
)

// Manifest is the last entry of a backup: what it holds, so that a reader
// knows the stream is whole.
type Manifest struct {
	Format  string      `json:"format"`
	Created time.Time   `json:"created"`
	Tenants []TenantCut `json:"tenants"`
	Files   []File      `json:"files"`
}

// TenantCut is a tenant's state at its cut: every message acknowledged
// before At is in the backup.
type TenantCut struct {
	Name     string    `json:"name"`
	Messages uint64    `json:"messages"`
	Chain    string    `json:"chain"`
	Audit    uint64    `json:"audit"`
	At       time.Time `json:"at"`
}

// File is one entry with its size and SHA-256.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Options say what to back up and how.
type Options struct {
	// Tenants to back up; empty means every tenant.
	Tenants []string
	// Zstd compresses the stream. Packs are sealed (compressed, then
	// encrypted) and barely shrink; meta.db does.
	Zstd bool
	// Actor is recorded in each tenant's audit log.
	Actor string
}

// Write streams a backup of the provider's tenants to w. Each tenant is cut
// on its own (see backend.Tenant.BackupCut); its files are copied after
// its writers resume.
func Write(ctx context.Context, w io.Writer, p *backend.Provider, opt Options) (*Manifest, error) {
	names := opt.Tenants
	if len(names) == 0 {
		infos, err := p.Tenants()
		if err != nil {
			return nil, err
		}
		for _, info := range infos {
			names = append(names, info.Name)
		}
	}
	recs, err := p.ProviderRecords(names)
	if err != nil {
		return nil, fmt.Errorf("read provider registry: %w", err)
	}
	for _, n := range names {
		if _, ok := recs["tenant:"+n]; !ok {
			return nil, fmt.Errorf("tenant %q: %w", n, backend.ErrNotFound)
		}
	}
	out := w
	var zw *zstd.Encoder
	if opt.Zstd {
		if zw, err = zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest)); err != nil {
			return nil, err
		}
		out = zw
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	tw := tar.NewWriter(bw)
	m := &Manifest{Format: Format, Created: time.Now().UTC()}
	add := func(name string, size int64, r io.Reader) error {
		hdr := &tar.Header{Name: name, Size: size, Mode: 0o600, ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(tw, io.TeeReader(io.LimitReader(r, size), h))
		if err != nil {
			return fmt.Errorf("copy %s: %w", name, err)
		}
		if n != size {
			return fmt.Errorf("copy %s: %d of %d bytes", name, n, size)
		}
		m.Files = append(m.Files, File{Name: name, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
		return nil
	}
	addBytes := func(name string, b []byte) error { return add(name, int64(len(b)), bytes.NewReader(b)) }

	pj, _ := json.MarshalIndent(recs, "", "  ")
	if err := addBytes(providerEntry, pj); err != nil {
		return nil, err
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t, err := p.Tenant(ctx, name)
		if err != nil {
			return nil, err
		}
		cut, err := t.BackupCut(ctx, opt.Actor)
		if err != nil {
			return nil, err
		}
		err = func() error {
			defer cut.Release()
			for _, f := range cut.Files {
				fh := f.File
				if fh == nil {
					if fh, err = os.Open(f.Path); err != nil {
						return err
					}
					defer fh.Close()
				}
				if err := add(f.Name, f.Size, io.NewSectionReader(fh, 0, f.Size)); err != nil {
					return err
				}
			}
			return nil
		}()
		if err != nil {
			return nil, fmt.Errorf("back up tenant %q: %w", name, err)
		}
		m.Tenants = append(m.Tenants, TenantCut{Name: cut.Tenant, Messages: cut.Messages, Chain: cut.Chain, Audit: cut.Audit, At: cut.At})
	}
	mj, _ := json.MarshalIndent(m, "", "  ")
	hdr := &tar.Header{Name: manifestEntry, Size: int64(len(mj)), Mode: 0o600, ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(mj); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Read reads a backup stream (plain or zstd), calls fn for every entry but
// the manifest, and checks at the end that the manifest lists exactly the
// entries read, with their sizes and SHA-256. fn may leave part of r
// unread. A stream cut short has no manifest and fails.
func Read(r io.Reader, fn func(name string, size int64, r io.Reader) error) (*Manifest, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var in io.Reader = br
	if magic, _ := br.Peek(4); bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		in = zr
	}
	tr := tar.NewReader(in)
	got := map[string]File{}
	var m *Manifest
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read backup: %w", err)
		}
		if m != nil {
			return nil, fmt.Errorf("read backup: entry %q after the manifest", hdr.Name)
		}
		if hdr.Name == manifestEntry {
			m = &Manifest{}
			if err := json.NewDecoder(io.LimitReader(tr, 64<<20)).Decode(m); err != nil {
				return nil, fmt.Errorf("read backup manifest: %w", err)
			}
			continue
		}
		if err := checkName(hdr.Name); err != nil {
			return nil, err
		}
		if _, dup := got[hdr.Name]; dup {
			return nil, fmt.Errorf("read backup: %q twice", hdr.Name)
		}
		h := sha256.New()
		tee := io.TeeReader(tr, h)
		if fn != nil {
			if err := fn(hdr.Name, hdr.Size, tee); err != nil {
				return nil, err
			}
		}
		if _, err := io.Copy(io.Discard, tee); err != nil {
			return nil, fmt.Errorf("read backup %s: %w", hdr.Name, err)
		}
		got[hdr.Name] = File{Name: hdr.Name, Size: hdr.Size, SHA256: hex.EncodeToString(h.Sum(nil))}
	}
	if m == nil {
		return nil, errors.New("backup incomplete: no manifest at its end (the stream was cut short)")
	}
	if m.Format != Format {
		return nil, fmt.Errorf("backup format %q, want %q", m.Format, Format)
	}
	for _, f := range m.Files {
		g, ok := got[f.Name]
		if !ok {
			return nil, fmt.Errorf("backup incomplete: %s missing", f.Name)
		}
		if g != f {
			return nil, fmt.Errorf("backup damaged: %s has %d bytes with SHA-256 %s, the manifest says %d bytes, %s", f.Name, g.Size, g.SHA256, f.Size, f.SHA256)
		}
		delete(got, f.Name)
	}
	for name := range got {
		return nil, fmt.Errorf("backup damaged: %s is not in the manifest", name)
	}
	return m, nil
}

// checkName admits the entries a backup writes: the provider records and
// files under tenants/<name>/.
func checkName(name string) error {
	clean := path.Clean(name)
	if clean != name || strings.HasPrefix(name, "/") || strings.Contains(name, "..") ||
		(name != providerEntry && !strings.HasPrefix(name, "tenants/")) {
		return fmt.Errorf("read backup: unexpected entry %q", name)
	}
	return nil
}

// Restore writes the backup read from r into dataDir, which must not exist
// or be empty, with masterKey (the hex key file saved apart from the
// backup) as its master key. The index is not in a backup: the server
// rebuilds it from the archive when it opens each tenant. On failure
// nothing is left in dataDir.
func Restore(r io.Reader, dataDir string, masterKey []byte) (m *Manifest, err error) {
	master, err := parseMasterKey(masterKey)
	if err != nil {
		return nil, err
	}
	if ents, err := os.ReadDir(dataDir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("restore into %s: the directory is not empty", dataDir)
	} else if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			ents, _ := os.ReadDir(dataDir)
			for _, e := range ents {
				os.RemoveAll(filepath.Join(dataDir, e.Name()))
			}
		}
	}()
	var recs map[string]string
	m, err = Read(r, func(name string, size int64, r io.Reader) error {
		if name == providerEntry {
			return json.NewDecoder(r).Decode(&recs)
		}
		dst := filepath.Join(dataDir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return fmt.Errorf("restore %s: %w", name, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	if err != nil {
		return nil, err
	}
	if recs == nil {
		return nil, errors.New("backup holds no provider records")
	}
	if err := backend.CheckMasterKey(master, recs); err != nil {
		return nil, fmt.Errorf("the master key does not open this backup: %w", err)
	}
	if err := backend.WriteProviderRecords(dataDir, recs); err != nil {
		return nil, err
	}
	if err := store.WriteFileAtomic(filepath.Join(dataDir, "master.key"), []byte(hex.EncodeToString(master)+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dataDir, "tenants"), 0o700); err != nil {
		return nil, err
	}
	for _, d := range []string{dataDir, filepath.Join(dataDir, "tenants")} {
		if err := store.SyncDir(d); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func parseMasterKey(b []byte) ([]byte, error) {
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != store.KeySize {
		return nil, fmt.Errorf("master key: want %d hex-encoded bytes (the master.key file)", store.KeySize)
	}
	return k, nil
}
