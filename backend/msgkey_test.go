package backend

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/store"
)

// sealedCopy is a message's pack record as a copy of the pack file taken
// earlier holds it, and the key file of that moment.
type sealedCopy struct {
	key    string // blob name
	sealed []byte
	keys   []byte // keys.dat
}

func copySealed(t *testing.T, tn *Tenant, mid uint64) sealedCopy {
	t.Helper()
	key := tn.seal.BlobKey(tn.msgs[mid-1].sum)
	path, off, n, ok := tn.blobs.(*store.PackBlobs).Locate(key)
	if !ok {
		t.Fatalf("message %d: no pack record", mid)
	}
	pack, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := os.ReadFile(filepath.Join(tn.dir, "keys.dat"))
	if err != nil {
		t.Fatal(err)
	}
	return sealedCopy{key: key, sealed: bytes.Clone(pack[off : off+int64(n)]), keys: keys}
}

// openWith opens the copied record with the tenant's key and the wrapped
// message key found at mid's slot of keys (a key file's bytes).
func (c sealedCopy) openWith(tn *Tenant, keys []byte, mid uint64) ([]byte, error) {
	off := int(mid-1) * store.WrappedKeySize
	if off+store.WrappedKeySize > len(keys) || bytes.Equal(keys[off:off+store.WrappedKeySize], make([]byte, store.WrappedKeySize)) {
		return nil, ErrKeyGone
	}
	var aad [20]byte
	ms, err := tn.seal.UnwrapDataKey(keys[off:off+store.WrappedKeySize], messageKeyAAD(&aad, mid))
	if err != nil {
		return nil, err
	}
	return ms.Open(c.sealed, []byte(c.key))
}

func TestDeletionDestroysMessageKey(t *testing.T) {
	f := newRetentionFixture(t)
	defer func() { f.p.Close() }()
	ctx := context.Background()
	f.policies(t, []Policy{
		{Name: "short", Mailboxes: []string{"alice@acme.example"}, Min: Period{Years: 1}, Max: &Period{Years: 2}, MaxAction: ActionDelete},
		DefaultPolicy(),
	})
	own := f.mail(t, "x@outside.example", "alice@acme.example", "own", date(2020, 1, 10), Source{})
	kept := f.mail(t, "x@outside.example", "bob@acme.example", "kept", date(2020, 1, 11), Source{})
	f.indexed(t)
	raw, err := f.tn.RawMessage(ctx, own)
	if err != nil {
		t.Fatal(err)
	}
	before := copySealed(t, f.tn, own)
	// The tenant's key alone does not open a new message's blob; its own
	// key, unwrapped by the tenant's key, does.
	if _, err := f.tn.seal.Open(before.sealed, []byte(before.key)); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("the tenant key opens a new message's blob: %v", err)
	}
	if got, err := before.openWith(f.tn, before.keys, own); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("the copied record does not open with its message key: %v", err)
	}

	f.clock.Set(date(2022, 1, 11))
	rep, err := f.tn.RunRetention(ctx)
	if err != nil || rep.Messages != 1 {
		t.Fatalf("run %+v %v", rep, err)
	}
	now, err := os.ReadFile(filepath.Join(f.tn.dir, "keys.dat"))
	if err != nil {
		t.Fatal(err)
	}
	// The pack bytes copied before the deletion open no more: neither with
	// the tenant's key nor with the key file as it is now.
	if _, err := f.tn.seal.Open(before.sealed, []byte(before.key)); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("the tenant key opens the deleted message's copied blob: %v", err)
	}
	if _, err := before.openWith(f.tn, now, own); !errors.Is(err, ErrKeyGone) {
		t.Fatalf("the deleted message's key is still in the key file: %v", err)
	}
	// The limit docs/retention.md states: a copy of the key file taken
	// before the deletion (a backup) still holds the key.
	if got, err := before.openWith(f.tn, before.keys, own); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("an old copy of the key file: %v", err)
	}
	if !f.gone(t, own) {
		t.Fatal("the deleted message is still readable")
	}
	if _, err := f.tn.RawMessage(ctx, kept); err != nil {
		t.Fatalf("the message kept: %v", err)
	}
	f.verifyClean(t)
	f.reopen(t)
	f.verifyClean(t)

	// An older copy of keys.dat put back (a restore of that file alone)
	// brings the key back: verify names it and destroys it.
	if err := f.p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "tenants", "acme", "keys.dat"), before.keys, 0o600); err != nil {
		t.Fatal(err)
	}
	f.open(t)
	f.tenant(t)
	vr, err := f.tn.Verify(ctx, nil)
	if err != nil || len(vr.Problems) != 1 || vr.Problems[0].Kind != "deletion-incomplete" || vr.Problems[0].MID != own {
		t.Fatalf("verify with the deleted key put back: %+v %v", vr, err)
	}
	f.verifyClean(t)
	now, _ = os.ReadFile(filepath.Join(f.tn.dir, "keys.dat"))
	if _, err := before.openWith(f.tn, now, own); !errors.Is(err, ErrKeyGone) {
		t.Fatalf("verify left the deleted message's key: %v", err)
	}
	if _, err := f.tn.RawMessage(ctx, kept); err != nil {
		t.Fatalf("the message kept, after verify destroyed a key: %v", err)
	}
}

// TestMixedArchive: messages archived before message keys existed (sealed
// with the tenant's key, record tag "1") keep opening beside new ones,
// verify passes them, and deleting one still destroys its bytes.
func TestMixedArchive(t *testing.T) {
	f := newRetentionFixture(t)
	defer func() { f.p.Close() }()
	ctx := context.Background()
	f.policies(t, []Policy{
		{Name: "short", Mailboxes: []string{"alice@acme.example"}, Min: Period{Years: 1}, Max: &Period{Years: 2}, MaxAction: ActionDelete},
		DefaultPolicy(),
	})
	old := f.mail(t, "x@outside.example", "alice@acme.example", "legacy", date(2020, 1, 10), Source{})
	oldKept := f.mail(t, "x@outside.example", "bob@acme.example", "legacy kept", date(2020, 1, 10), Source{})
	// Make them what the previous version wrote: the blob sealed with the
	// tenant's key, no key slot, a record tagged "1".
	for _, mid := range []uint64{old, oldKept} {
		raw, err := f.tn.RawMessage(ctx, mid)
		if err != nil {
			t.Fatal(err)
		}
		m := f.tn.msgs[mid-1]
		key := f.tn.seal.BlobKey(m.sum)
		if err := f.tn.blobs.Put(ctx, key, f.tn.seal.Seal(raw, []byte(key))); err != nil {
			t.Fatal(err)
		}
		if err := f.tn.keys.Destroy([]uint64{mid}); err != nil {
			t.Fatal(err)
		}
		m.ownKey = false
		if err := f.tn.db.Update(func(tx *buntdb.Tx) error {
			_, _, err := tx.Set(msgKey(mid), encodeMsg(&m), nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.tn.blobs.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	f.reopen(t)
	if f.tn.msgs[old-1].ownKey {
		t.Fatal("the legacy record reads as one with its own key")
	}
	fresh := f.mail(t, "x@outside.example", "alice@acme.example", "fresh", date(2020, 1, 12), Source{})
	if !f.tn.msgs[fresh-1].ownKey {
		t.Fatal("a new message has no key of its own")
	}
	for _, mid := range []uint64{old, oldKept, fresh} {
		if _, err := f.tn.RawMessage(ctx, mid); err != nil {
			t.Fatalf("message %d: %v", mid, err)
		}
	}
	f.indexed(t)
	f.verifyClean(t)
	legacy := copySealed(t, f.tn, old)
	f.clock.Set(date(2022, 1, 13))
	if rep, err := f.tn.RunRetention(ctx); err != nil || rep.Messages != 2 {
		t.Fatalf("run %+v %v", rep, err)
	}
	if !f.gone(t, old) || !f.gone(t, fresh) || f.gone(t, oldKept) {
		t.Fatal("wrong messages deleted")
	}
	// A legacy blob has no key to destroy: its bytes are shredded in
	// place, which is all the live files can give (docs/retention.md).
	path, _, _, ok := f.tn.blobs.(*store.PackBlobs).Locate(legacy.key)
	if ok {
		t.Fatalf("the legacy blob is still stored in %s", path)
	}
	packs, _ := filepath.Glob(filepath.Join(f.tn.dir, "packs", "*"))
	for _, p := range packs {
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, legacy.sealed[:64]) {
			t.Fatalf("the legacy blob's sealed bytes are still in %s", p)
		}
	}
	f.verifyClean(t)
}

// copyTree copies a data directory as a kill -9 leaves it: every byte
// written is in the page cache, which outlives the process.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKillBetweenKeyDestructionAndShred: the process dies after a
// deletion destroyed the message keys and before it shredded the bytes.
// The copy of the data directory taken at that moment opens consistent:
// the deleted messages are gone, their keys stay gone, the open shreds
// their bytes, everything else is whole and verify is clean.
func TestKillBetweenKeyDestructionAndShred(t *testing.T) {
	f := newRetentionFixture(t)
	ctx := context.Background()
	f.policies(t, []Policy{
		{Name: "short", Mailboxes: []string{"alice@acme.example"}, Min: Period{Years: 1}, Max: &Period{Years: 2}, MaxAction: ActionDelete},
		DefaultPolicy(),
	})
	var doomed, kept []uint64
	for i := range 20 {
		to := "alice@acme.example"
		if i%2 == 1 {
			to = "bob@acme.example"
		}
		mid := f.mail(t, "x@outside.example", to, "message "+string(rune('a'+i)), date(2020, 1, 10+i), Source{})
		if i%2 == 1 {
			kept = append(kept, mid)
		} else {
			doomed = append(doomed, mid)
		}
	}
	f.indexed(t)
	copies := map[uint64]sealedCopy{}
	for _, mid := range doomed {
		copies[mid] = copySealed(t, f.tn, mid)
	}
	crashed := filepath.Join(t.TempDir(), "data")
	var keysAtCrash []byte
	f.tn.keysDestroyed = func() {
		if keysAtCrash != nil {
			return
		}
		// The bytes are still there, the keys are not.
		for _, mid := range doomed {
			if _, _, _, ok := f.tn.blobs.(*store.PackBlobs).Locate(copies[mid].key); !ok {
				t.Errorf("message %d shredded before its key was destroyed", mid)
			}
		}
		copyTree(t, f.dir, crashed)
		keysAtCrash, _ = os.ReadFile(filepath.Join(crashed, "tenants", "acme", "keys.dat"))
	}
	f.clock.Set(date(2022, 3, 1))
	if rep, err := f.tn.RunRetention(ctx); err != nil || rep.Messages != len(doomed) {
		t.Fatalf("run %+v %v", rep, err)
	}
	f.p.Close()
	if keysAtCrash == nil {
		t.Fatal("the deletion destroyed no keys")
	}

	// Restart on the data as the kill left it.
	f.dir = crashed
	f.open(t)
	defer func() { f.p.Close() }()
	f.tenant(t)
	for _, mid := range doomed {
		c := copies[mid]
		if _, err := c.openWith(f.tn, keysAtCrash, mid); !errors.Is(err, ErrKeyGone) {
			t.Fatalf("message %d: its key survived the crash: %v", mid, err)
		}
		if !f.gone(t, mid) {
			t.Fatalf("message %d is readable after the restart", mid)
		}
		if _, _, _, ok := f.tn.blobs.(*store.PackBlobs).Locate(c.key); ok {
			t.Fatalf("message %d: the open did not shred its blob", mid)
		}
	}
	packs, _ := filepath.Glob(filepath.Join(f.tn.dir, "packs", "*"))
	for _, p := range packs {
		b, _ := os.ReadFile(p)
		for _, mid := range doomed {
			if bytes.Contains(b, copies[mid].sealed[:64]) {
				t.Fatalf("message %d: its sealed bytes are still in %s", mid, p)
			}
		}
	}
	for _, mid := range kept {
		if _, err := f.tn.RawMessage(ctx, mid); err != nil {
			t.Fatalf("message %d, not deleted, after the restart: %v", mid, err)
		}
	}
	rep := f.verifyClean(t)
	if rep.Deleted != len(doomed) || rep.Messages != len(kept) {
		t.Fatalf("verify counts %d messages, %d deleted", rep.Messages, rep.Deleted)
	}
}
