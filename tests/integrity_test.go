package tests

import (
	"bytes"
	"context"
	endian "encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/mailgen"
)

// TestDamageNamedByVerify damages a stopped archive as a bad disk and a
// hostile operator would: a bit flipped in the header of a pack record in
// the middle of the newest pack, and the last message records (with their
// placements) removed from meta.db. After a restart every message that is
// left is readable byte for byte, nothing more was dropped, and `mailvault
// verify` names both and exits non-zero, again after another restart.
func TestDamageNamedByVerify(t *testing.T) {
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "a-long-password")
	g := mailgen.New(9, []string{"acme.example"}, 10)
	g.AvgSize = 8 << 10
	const n = 300
	dir := t.TempDir()
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = g.Next().Raw
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%04d.eml", i)), msgs[i], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in.mustCLI("import", "-tenant", "acme", "-mailbox", "alice@acme.example", dir)
	in.stop()

	tenantDir := filepath.Join(in.dataDir, "tenants", "acme")
	flipPackHeader(t, filepath.Join(tenantDir, "packs", "00000000.pack"), n/2)
	const removed = 5
	db, err := buntdb.Open(filepath.Join(tenantDir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *buntdb.Tx) error {
		var keys []string
		tx.AscendKeys("mem:*", func(k, v string) bool {
			if mid, _ := strconv.ParseUint(v, 16, 64); mid > n-removed {
				keys = append(keys, k)
			}
			return true
		})
		for mid := n - removed + 1; mid <= n; mid++ {
			keys = append(keys, fmt.Sprintf("msg:%016x", mid))
		}
		for _, k := range keys {
			if _, err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	for round := 0; round < 2; round++ {
		in.start()
		out, err := in.cli("verify", "-tenant", "acme")
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("round %d: verify exited with %v, want 1:\n%s", round, err, out)
		}
		for _, want := range []string{"records-truncated", "pack-damaged", "record-missing"} {
			if !strings.Contains(out, want) {
				t.Errorf("round %d: verify does not name %s:\n%s", round, want, out)
			}
		}
		in.stop()
	}
	p := openData(t, in.dataDir)
	defer p.Close()
	tn, err := p.Tenant(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	readable := 0
	for mid := uint64(1); mid <= n; mid++ {
		raw, err := tn.RawMessage(context.Background(), mid)
		if err != nil {
			continue
		}
		if !containsMessage(msgs, raw) {
			t.Fatalf("message %d altered", mid)
		}
		readable++
	}
	if readable != n-removed {
		t.Errorf("%d messages readable, want every one of the %d left", readable, n-removed)
	}
}

// flipPackHeader flips a bit in the magic of the i-th record of a pack.
func flipPackHeader(t *testing.T, path string, i int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var h [44]byte
	off := int64(0)
	for ; i > 0; i-- {
		if _, err := f.ReadAt(h[:], off); err != nil {
			t.Fatal(err)
		}
		off += 44 + int64(endian.LittleEndian.Uint32(h[36:40]))
	}
	if _, err := f.ReadAt(h[:1], off); err != nil {
		t.Fatal(err)
	}
	h[0] ^= 0x08
	if _, err := f.WriteAt(h[:1], off); err != nil {
		t.Fatal(err)
	}
}

func containsMessage(msgs [][]byte, raw []byte) bool {
	for _, m := range msgs {
		if bytes.Equal(m, raw) {
			return true
		}
	}
	return false
}
