package backend

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailvault/mailvault/cputime"
	"github.com/mailvault/mailvault/mailgen"
)

// BenchmarkRetentionRun times one retention run over a tenant of
// MAILVAULT_BENCH_RETENTION_MESSAGES messages (default 20000) of which 10%
// are past a maximum retention that says delete, while ingest keeps
// running; it prints deleted messages per second, CPU per deleted
// message, the disk space the packs gave back and the ingest rate during
// the run:
//
//	MAILVAULT_BENCH_RETENTION_MESSAGES=100000 go test -run='^$' -bench=RetentionRun -benchtime=1x ./backend/
func BenchmarkRetentionRun(b *testing.B) {
	n := 20000
	if s := os.Getenv("MAILVAULT_BENCH_RETENTION_MESSAGES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	for i := 0; i < b.N; i++ {
		benchRetentionRun(b, n)
	}
}

func benchRetentionRun(b *testing.B, n int) {
	b.StopTimer()
	dir := b.TempDir()
	p, err := Open(Options{DataDir: dir, Logger: testLogger(b), CommitDelay: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	tn := newTenant(b, p, "acme", "acme.example")
	if _, err := tn.CreateUser(ctx, UserSpec{Login: "carol@acme.example", Password: "pw-carol-1", Roles: []Role{RoleCompliance}}); err != nil {
		b.Fatal(err)
	}
	if _, err := tn.CreateMailbox(ctx, MailboxSpec{Kind: KindShared, Address: "old@acme.example"}); err != nil {
		b.Fatal(err)
	}
	if _, err := tn.SetRetentionPolicies(ctx, "carol@acme.example", []Policy{
		{Name: "old", Mailboxes: []string{"old@acme.example"}, Min: Period{Years: 1}, Max: &Period{Years: 2}, MaxAction: ActionDelete},
		DefaultPolicy(),
	}); err != nil {
		b.Fatal(err)
	}
	// Parallel writers, as SMTP sessions are, so commits batch.
	const writers = 16
	var wg sync.WaitGroup
	var next atomic.Int64
	long := time.Date(2010, 5, 1, 0, 0, 0, 0, time.UTC)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := mailgen.New(uint64(w+1), []string{"acme.example"}, 20)
			g.AvgSize = 4 << 10
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				src := Source{Mailbox: "alice@acme.example", Received: time.Now()}
				if i%10 == 0 {
					src = Source{Mailbox: "old@acme.example", Received: long}
				}
				if _, err := tn.Ingest(ctx, g.Next().Raw, src); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := tn.WaitIndexed(ctx); err != nil {
		b.Fatal(err)
	}
	packs := filepath.Join(dir, "tenants", "acme", "packs")
	disk0 := dirBlocks(b, packs)

	// Ingest goes on during the run.
	stop := make(chan struct{})
	var ingested atomic.Int64
	var iwg sync.WaitGroup
	for w := range 4 {
		iwg.Add(1)
		go func() {
			defer iwg.Done()
			g := mailgen.New(uint64(1000+w), []string{"acme.example"}, 20)
			g.AvgSize = 4 << 10
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := tn.Ingest(ctx, g.Next().Raw, Source{Mailbox: "alice@acme.example"}); err != nil {
					b.Error(err)
					return
				}
				ingested.Add(1)
			}
		}()
	}
	// The ingest rate without a run, for comparison.
	time.Sleep(2 * time.Second)
	idle := float64(ingested.Load()) / 2
	ingested.Store(0)
	cpu0 := cputime.Process()
	start := time.Now()
	b.StartTimer()
	rep, err := tn.RunRetention(ctx)
	b.StopTimer()
	took := time.Since(start)
	cpu := cputime.Process() - cpu0
	close(stop)
	iwg.Wait()
	if err != nil {
		b.Fatal(err)
	}
	if rep.Messages != n/10 {
		b.Fatalf("deleted %d messages, want %d", rep.Messages, n/10)
	}
	// Closed, the tenant has given back the replaced packs' space.
	p.Close()
	disk1 := dirBlocks(b, packs)
	b.ReportMetric(float64(rep.Messages)/took.Seconds(), "deleted/s")
	// CPU of the whole process, ingest running beside included.
	b.ReportMetric(float64(cpu.Microseconds())/float64(rep.Messages), "cpu-µs/deleted")
	b.ReportMetric(float64(rep.Reclaimed)/(1<<20), "MiB-compacted")
	b.ReportMetric(float64(disk0-disk1)/(1<<20), "MiB-packs-freed")
	b.ReportMetric(float64(ingested.Load())/took.Seconds(), "ingest-msg/s")
	b.ReportMetric(idle, "ingest-idle-msg/s")
	b.Logf("%d messages, %d deleted in %s; packs %d -> %d MiB allocated (ingest added %d messages meanwhile)",
		n, rep.Messages, took.Round(time.Millisecond), disk0>>20, disk1>>20, ingested.Load())
}

// dirBlocks is the disk space allocated to the files below dir.
func dirBlocks(b *testing.B, dir string) int64 {
	var total int64
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				total += st.Blocks * 512
			}
		}
		return nil
	})
	return total
}
