package backend

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mailvault/mailvault/cputime"
	"github.com/mailvault/mailvault/mailgen"
)

// BenchmarkEnvelope reads the stored envelope of every message of a folder,
// as an IMAP client's first listing does (FETCH 1:* ENVELOPE): one by one
// (Envelope) and in the chunks imapd lists a folder in (ListMessages).
func BenchmarkEnvelope(b *testing.B) {
	p := openProvider(b, b.TempDir())
	defer p.Close()
	tn := newTenant(b, p, "acme", "acme.example")
	ctx := context.Background()
	g := mailgen.New(1, []string{"acme.example"}, 20)
	g.AvgSize = 4 << 10
	const n = 3000
	for i := 0; i < n; i++ {
		if _, err := tn.Ingest(ctx, g.Next().Raw, Source{Mailbox: "alice@acme.example"}); err != nil {
			b.Fatal(err)
		}
	}
	if err := tn.WaitIndexed(ctx); err != nil {
		b.Fatal(err)
	}
	snap, err := tn.Snapshot("alice@acme.example", folderID(b, tn, "alice@acme.example", FolderInbox))
	if err != nil {
		b.Fatal(err)
	}
	// The machine may be shared: CPU time per envelope is steadier than
	// wall time.
	report := func(b *testing.B, cpu0 time.Duration) {
		n := float64(b.N * len(snap.MIDs))
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n/1000, "µs/envelope")
		b.ReportMetric(float64((cputime.Process()-cpu0).Nanoseconds())/n/1000, "cpu-µs/envelope")
	}
	b.Run("one", func(b *testing.B) {
		cpu0 := cputime.Process()
		for i := 0; i < b.N; i++ {
			for _, mid := range snap.MIDs {
				if _, err := tn.Envelope(ctx, mid); err != nil {
					b.Fatal(err)
				}
			}
		}
		report(b, cpu0)
	})
	b.Run("listing", func(b *testing.B) {
		const chunk = 256
		cpu0 := cputime.Process()
		for i := 0; i < b.N; i++ {
			for lo := 0; lo < len(snap.MIDs); lo += chunk {
				l, err := tn.ListMessages(ctx, snap.MIDs[lo:min(lo+chunk, len(snap.MIDs))])
				if err != nil {
					b.Fatal(err)
				}
				for _, m := range l {
					if m.Err != nil {
						b.Fatal(m.Err)
					}
				}
			}
		}
		report(b, cpu0)
	})
}

// BenchmarkBackupCut measures how long a backup pauses a tenant's writers
// (meta.db written to a copy, file lengths taken) for a tenant of
// MAILVAULT_BENCH_CUT_MESSAGES messages (default 20,000).
func BenchmarkBackupCut(b *testing.B) {
	n := envInt("MAILVAULT_BENCH_CUT_MESSAGES", 20000)
	p := openProvider(b, b.TempDir())
	defer p.Close()
	tn := newTenant(b, p, "acme", "acme.example")
	ctx := context.Background()
	g := mailgen.New(1, []string{"acme.example"}, 20)
	g.AvgSize = 2 << 10
	msgs := make(chan []byte, 64)
	go func() {
		for i := 0; i < n; i++ {
			msgs <- g.Next().Raw
		}
		close(msgs)
	}()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for raw := range msgs {
				if _, err := tn.Ingest(ctx, raw, Source{}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var paused time.Duration
	var meta int64
	b.ResetTimer()
	for b.Loop() {
		cut, err := tn.BackupCut(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		paused += cut.Paused
		meta = cut.Files[0].Size
		cut.Release()
	}
	b.ReportMetric(float64(paused.Microseconds())/float64(b.N)/1000, "ms-paused/cut")
	b.ReportMetric(float64(meta)/float64(n), "meta-bytes/message")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
