package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/store"
)

// BackupFile is one file of a consistent cut: Name is its path inside the
// data directory ("tenants/acme/packs/00000000.pack"); the first Size
// bytes of File (opened at the cut; nil: open Path) are the file as it
// was at the cut.
type BackupFile struct {
	Name string
	Path string
	Size int64
	File *os.File
}

// BackupCut is a tenant's state at one moment: every file of the archive
// (the index aside, which a restore rebuilds) as prefixes that commits do
// not change afterwards. Release it when copied.
type BackupCut struct {
	Tenant string
	// Messages and Chain are the committed state at the cut: every
	// message acknowledged before it is in the copy.
	Messages uint64
	Chain    string
	Audit    uint64
	At       time.Time
	Files    []BackupFile
	// Paused is how long writers waited for the cut.
	Paused time.Duration

	release func()
}

// Release closes the cut's files and lets the tenant close.
func (c *BackupCut) Release() {
	if c.release != nil {
		c.release()
		c.release = nil
	}
}

// BackupCut takes a consistent cut of the tenant while mail keeps
// arriving. Writers (commits, administrative changes, audit entries) are
// paused only while the files are opened and their lengths taken: meta.db
// (buntdb's append-only log; its length is taken between two of its
// transactions, and a compaction replaces the file, not the one opened),
// the packs, the summary log and the anchor log only grow, and the key
// file changes in place only for messages past the cut or by a deletion
// (which waits for the copy), so their
// prefixes up to those lengths are copied afterwards without holding the
// pause. Blobs of ingests still in flight may lie within those prefixes;
// they are orphans, which verify names as harmless.
func (t *Tenant) BackupCut(ctx context.Context, actor string) (*BackupCut, error) {
	if err := t.checkOpen(); err != nil {
		return nil, err
	}
	packs, ok := t.blobs.(*store.PackBlobs)
	if !ok {
		return nil, fmt.Errorf("backup of tenant %q: blob store %T has no consistent extents", t.Name, t.blobs)
	}
	t.Audit(ctx, actor, "backup", "consistent cut for a backup")
	hold := t.Hold()
	// Deletions destroy bytes in place: not in the files being copied.
	t.inPlace.RLock()
	cut := &BackupCut{Tenant: t.Name}
	cut.release = func() {
		defer t.inPlace.RUnlock()
		for _, f := range cut.Files {
			if f.File != nil {
				f.File.Close()
			}
		}
		hold()
	}
	rel := func(path string) string {
		r, err := filepath.Rel(t.p.opt.DataDir, path)
		if err != nil || strings.HasPrefix(r, "..") {
			return filepath.Join("tenants", t.Name, filepath.Base(path))
		}
		return filepath.ToSlash(r)
	}
	open := func(e store.FileExtent) error {
		f, err := os.Open(e.Path)
		if err != nil {
			return err
		}
		cut.Files = append(cut.Files, BackupFile{Name: rel(e.Path), Path: e.Path, Size: e.Size, File: f})
		return nil
	}

	start := time.Now()
	t.wmu.Lock()
	err := t.db.View(func(tx *buntdb.Tx) error {
		// No buntdb transaction is being written while this one is open.
		path := filepath.Join(t.dir, "meta.db")
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		cut.Files = append(cut.Files, BackupFile{Name: rel(path), Path: path, Size: st.Size(), File: f})
		return nil
	})
	var pexts []store.FileExtent
	if err == nil {
		pexts, err = packs.Extents()
	}
	var kext store.FileExtent
	if err == nil {
		kext, err = t.keys.Extent()
	}
	for _, e := range append([]store.FileExtent{t.sums.Extent(), t.anchors.Extent(), kext}, pexts...) {
		if err == nil {
			err = open(e)
		}
	}
	t.mu.RLock()
	cut.Messages, cut.Chain, cut.Audit = t.state.Messages, fmt.Sprintf("%x", t.lastChain), t.state.Audit
	t.mu.RUnlock()
	cut.At = time.Now().UTC()
	t.wmu.Unlock()
	cut.Paused = time.Since(start)
	if err != nil {
		cut.Release()
		return nil, fmt.Errorf("backup of tenant %q: %w", t.Name, err)
	}
	cut.Files = append(cut.Files, t.backupTimestamps(cut.Messages, cut.Audit)...)
	t.log.Info("backup cut taken", "messages", cut.Messages, "writers_paused", cut.Paused.Round(time.Microsecond),
		"meta_bytes", cut.Files[0].Size, "packs", len(pexts))
	return cut, nil
}

// ProviderRecords returns the provider registry's records of the named
// tenants (every tenant when names is empty): each tenant's entry with its
// wrapped data key, its domains and its directory profiles. A restore
// writes them into a new provider.db.
func (p *Provider) ProviderRecords(names []string) (map[string]string, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]string{}
	err := p.db.View(func(tx *buntdb.Tx) error {
		return tx.Ascend("", func(k, v string) bool {
			var tenant string
			switch {
			case strings.HasPrefix(k, "tenant:"):
				tenant = strings.TrimPrefix(k, "tenant:")
			case strings.HasPrefix(k, "domain:"):
				tenant = v
			case strings.HasPrefix(k, dirProfilePrefix):
				tenant, _, _ = strings.Cut(strings.TrimPrefix(k, dirProfilePrefix), "/")
			default:
				return true
			}
			if len(want) == 0 || want[tenant] {
				out[k] = v
			}
			return true
		})
	})
	return out, err
}

// WriteProviderRecords creates the provider registry of a restored data
// directory from ProviderRecords.
func WriteProviderRecords(dataDir string, recs map[string]string) error {
	db, err := store.OpenKV(filepath.Join(dataDir, "provider.db"))
	if err != nil {
		return err
	}
	err = db.Update(func(tx *buntdb.Tx) error {
		for k, v := range recs {
			if _, _, err := tx.Set(k, v, nil); err != nil {
				return err
			}
		}
		return nil
	})
	return errors.Join(err, db.Close())
}

// CheckMasterKey tells whether master unwraps the data key of every tenant
// in recs.
func CheckMasterKey(master []byte, recs map[string]string) error {
	for k, v := range recs {
		name, ok := strings.CutPrefix(k, "tenant:")
		if !ok {
			continue
		}
		var info TenantInfo
		if err := json.Unmarshal([]byte(v), &info); err != nil {
			return fmt.Errorf("tenant %q record: %w", name, err)
		}
		if _, err := store.UnwrapKey(master, info.WrappedKey, name); err != nil {
			return err
		}
	}
	return nil
}

// backupTimestamps lists the TSA tokens over chain heads the cut holds
// (files are written whole and renamed into place, never changed).
func (t *Tenant) backupTimestamps(messages, audit uint64) []BackupFile {
	names, _ := filepath.Glob(filepath.Join(t.timestampDir(), "*.tsr"))
	var out []BackupFile
	for _, path := range names {
		kind, seqs, ok := strings.Cut(strings.TrimSuffix(filepath.Base(path), ".tsr"), "-")
		seq, err := strconv.ParseUint(seqs, 10, 64)
		if !ok || err != nil || (kind == ChainMessages && seq > messages) || (kind == ChainAudit && seq > audit) {
			continue
		}
		st, err := os.Stat(path)
		if err != nil {
			continue
		}
		out = append(out, BackupFile{Name: "tenants/" + t.Name + "/timestamps/" + filepath.Base(path), Path: path, Size: st.Size()})
	}
	return out
}
