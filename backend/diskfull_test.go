package backend

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/mailvault/mailvault/mailgen"
)

// TestDiskFull runs the archive on a small tmpfs until the disk is full:
// ingest fails with ENOSPC (which the SMTP endpoint turns into a temporary
// 452), nothing acknowledged is lost, verify stays clean, and once space is
// freed ingest goes on. Needs root to mount; skipped elsewhere.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	p := openProvider(t, dir)
	tn := newTenant(t, p, "acme", "acme.example")
	ctx := context.Background()
	g := mailgen.New(9, []string{"acme.example"}, 4)
	g.AvgSize = 24 << 10
	acked := map[uint64][]byte{}
	var full error
	for i := 0; i < 1000 && full == nil; i++ {
		m := g.Next().Raw
		res, err := tn.Ingest(ctx, m, Source{Mailbox: "alice@acme.example"})
		if err != nil {
			full = err
			break
		}
		acked[res.MID] = m
	}
	if full == nil {
		t.Fatal("the disk never filled up")
	}
	if !errors.Is(full, syscall.ENOSPC) {
		t.Fatalf("a full disk gives %v, want an error wrapping ENOSPC", full)
	}
	t.Logf("disk full after %d messages: %v", len(acked), full)
	// Small messages squeeze into what is left, until the summary log or
	// the metadata file runs out too: each fails as a whole or succeeds.
	for i := 0; i < 2000; i++ {
		m := []byte("From: x@y.example\r\nSubject: small " + g.Next().Subject + "\r\n\r\nx\r\n")
		res, err := tn.Ingest(ctx, m, Source{Mailbox: "alice@acme.example"})
		if err == nil {
			acked[res.MID] = m
		}
	}
	// Everything acknowledged is there, and stays there after a restart.
	check := func(tn *Tenant) {
		t.Helper()
		for mid, raw := range acked {
			got, err := tn.RawMessage(ctx, mid)
			if err != nil || string(got) != string(raw) {
				t.Fatalf("acknowledged message %d damaged by the full disk: %v", mid, err)
			}
		}
		if rep, err := tn.Verify(ctx, nil); err != nil || !rep.Clean() {
			t.Fatalf("verify on a full disk: %v %+v", err, rep)
		}
	}
	check(tn)
	// Free space (the index is rebuildable), restart, archive more.
	if err := p.Close(); err != nil {
		t.Logf("close on a full disk: %v", err)
	}
	if err := os.RemoveAll(dir + "/tenants/acme/index"); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "remount,size=8m", dir).CombinedOutput(); err != nil {
		t.Fatalf("grow tmpfs: %v %s", err, out)
	}
	p = openProvider(t, dir)
	defer p.Close()
	tn, err := p.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	check(tn)
	res, err := tn.Ingest(ctx, g.Next().Raw, Source{Mailbox: "alice@acme.example"})
	if err != nil {
		t.Fatalf("ingest after space was freed: %v", err)
	}
	if res.MID != uint64(len(acked))+1 && res.MID < uint64(len(acked)) {
		t.Fatalf("new message got MID %d after %d", res.MID, len(acked))
	}
}
