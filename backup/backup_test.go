package backup

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
)

// archive makes a data directory with two tenants holding a few messages
// and returns a backup of it (zstd when compressed) and its master key.
func archive(t *testing.T, compressed bool, tenants ...string) ([]byte, []byte) {
	t.Helper()
	dir := t.TempDir()
	p, err := backend.Open(backend.Options{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	for _, name := range []string{"acme", "globex"} {
		if _, err := p.CreateTenant(ctx, name, []string{name + ".example"}, backend.Quotas{}); err != nil {
			t.Fatal(err)
		}
		tn, err := p.Tenant(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			raw := fmt.Sprintf("From: a@%s.example\r\nTo: b@%s.example\r\nSubject: %d\r\n\r\nbody %d\r\n", name, name, i, i)
			if _, err := tn.Ingest(ctx, []byte(raw), backend.Source{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var buf bytes.Buffer
	if _, err := Write(ctx, &buf, p, Options{Tenants: tenants, Zstd: compressed, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), key
}

func TestRestoreChecksEverything(t *testing.T) {
	for _, compressed := range []bool{false, true} {
		t.Run(fmt.Sprintf("zstd=%v", compressed), func(t *testing.T) {
			b, key := archive(t, compressed, "acme")
			m, err := Read(bytes.NewReader(b), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Tenants) != 1 || m.Tenants[0].Name != "acme" || m.Tenants[0].Messages != 5 {
				t.Fatalf("manifest tenants %+v", m.Tenants)
			}

			// Cut short anywhere: no manifest, no restore, nothing left.
			dir := filepath.Join(t.TempDir(), "data")
			for _, n := range []int{len(b) / 3, len(b) - 600} {
				if _, err := Restore(bytes.NewReader(b[:n]), dir, key); err == nil {
					t.Fatalf("restore of the first %d of %d bytes succeeded", n, len(b))
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Fatalf("failed restore left %d entries", len(ents))
				}
			}
			// Another master key opens nothing.
			other := []byte(strings.Repeat("ab", 32))
			if _, err := Restore(bytes.NewReader(b), dir, other); err == nil || !strings.Contains(err.Error(), "master key") {
				t.Fatalf("restore with another master key: %v", err)
			}
			if _, err := Restore(bytes.NewReader(b), dir, key); err != nil {
				t.Fatal(err)
			}
			// The restored directory opens and holds the tenant whole, and
			// only it.
			p, err := backend.Open(backend.Options{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			infos, _ := p.Tenants()
			if len(infos) != 1 || infos[0].Name != "acme" {
				t.Fatalf("restored tenants %v", infos)
			}
			tn, err := p.Tenant(context.Background(), "acme")
			if err != nil {
				t.Fatal(err)
			}
			rep, err := tn.Verify(context.Background(), nil)
			if err != nil || !rep.Clean() || rep.Messages != 5 {
				t.Fatalf("verify of the restore: %+v %v", rep, err)
			}
		})
	}
}

// TestReadNamesDamage flips one byte in a pack's data: the manifest's
// SHA-256 no longer matches.
func TestReadNamesDamage(t *testing.T) {
	b, _ := archive(t, false)
	i := bytes.Index(b, []byte("MVB1"))
	if i < 0 {
		t.Fatal("no pack record in the stream")
	}
	b[i+60] ^= 1
	_, err := Read(bytes.NewReader(b), nil)
	if err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), ".pack") {
		t.Fatalf("damaged pack: %v", err)
	}
}

// TestWriteWhileIngesting backs a tenant up while messages keep arriving:
// the restore holds exactly the cut's messages, among them every message
// acknowledged before the backup began.
func TestWriteWhileIngesting(t *testing.T) {
	dir := t.TempDir()
	p, err := backend.Open(backend.Options{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	if _, err := p.CreateTenant(ctx, "acme", nil, backend.Quotas{}); err != nil {
		t.Fatal(err)
	}
	tn, err := p.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				raw := fmt.Sprintf("From: a@acme\r\nSubject: %d/%d\r\n\r\n%s\r\n", w, i, strings.Repeat("x", i%500))
				if _, err := tn.Ingest(ctx, []byte(raw), backend.Source{}); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked++
				mu.Unlock()
			}
		}()
	}
	for {
		mu.Lock()
		n := acked
		mu.Unlock()
		if n >= 100 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	before := acked
	mu.Unlock()
	var buf bytes.Buffer
	m, err := Write(ctx, &buf, p, Options{Actor: "test"})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Tenants[0].Messages; got < uint64(before) || got > uint64(acked) {
		t.Fatalf("cut holds %d messages; %d were acknowledged before the backup, %d in all", got, before, acked)
	}
	key, _ := os.ReadFile(filepath.Join(dir, "master.key"))
	rdir := t.TempDir()
	if _, err := Restore(&buf, rdir, key); err != nil {
		t.Fatal(err)
	}
	rp, err := backend.Open(backend.Options{DataDir: rdir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	rt, err := rp.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := rt.Verify(ctx, nil)
	if err != nil || !rep.Clean() || uint64(rep.Messages) != m.Tenants[0].Messages {
		t.Fatalf("restored: %d messages, cut %d, clean %v, problems %+v, %v", rep.Messages, m.Tenants[0].Messages, rep.Clean(), rep.Problems, err)
	}
}
