package backend

import (
	"context"
	"testing"
	"time"

	"github.com/mailvault/mailvault/index"
)

// TestReindex: a rebuild re-reads every message from the archive and the
// index answers as before; it starts from watermark 0, so a restart in the
// middle goes on with it.
func TestReindex(t *testing.T) {
	dir := t.TempDir()
	p := openProvider(t, dir)
	tn := newTenant(t, p, "acme", "acme.example")
	ctx := context.Background()
	const n = 50
	for i := 1; i <= n; i++ {
		if _, err := tn.Ingest(ctx, floorMessage(i, 2000), Source{}); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := tn.WaitIndexed(wctx); err != nil {
		t.Fatal(err)
	}
	if got := tn.Reindex(ctx); got != n {
		t.Fatalf("reindex queued %d, want %d", got, n)
	}
	if s := tn.Stats(); s.IndexPending != n {
		t.Fatalf("right after Reindex %d messages pending, want %d", s.IndexPending, n)
	}
	// Closed before the rebuild could finish, and reopened.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = openProvider(t, dir)
	defer p.Close()
	tn, err := p.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.WaitIndexed(wctx); err != nil {
		t.Fatal(err)
	}
	if s := tn.Stats(); s.IndexPending != 0 || s.Indexed != n {
		t.Fatalf("after the rebuild: %d pending, %d indexed", s.IndexPending, s.Indexed)
	}
	var folders []uint64
	tn.mu.RLock()
	for id := range tn.folders {
		folders = append(folders, id)
	}
	tn.mu.RUnlock()
	mids, _, err := tn.ix.Find(ctx, folders, index.Text(index.FieldSubject, "uniq7q"), nil, 0, -1)
	if err != nil || len(mids) != 1 || mids[0] != 7 {
		t.Fatalf("search after the rebuild: %v %v", mids, err)
	}
}
