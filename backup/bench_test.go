package backup

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/mailgen"
)

// BenchmarkWrite streams a backup of a tenant of
// MAILVAULT_BENCH_BACKUP_MESSAGES generated messages (default 20,000, about
// 8 KiB each) to nowhere, plain and zstd-compressed, and reports MB/s of
// archive files read.
func BenchmarkWrite(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("MAILVAULT_BENCH_BACKUP_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	p, err := backend.Open(backend.Options{DataDir: b.TempDir(), Logger: slog.New(slog.DiscardHandler), CommitDelay: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	if _, err := p.CreateTenant(ctx, "acme", []string{"acme.example"}, backend.Quotas{}); err != nil {
		b.Fatal(err)
	}
	tn, err := p.Tenant(ctx, "acme")
	if err != nil {
		b.Fatal(err)
	}
	g := mailgen.New(1, []string{"acme.example"}, 20)
	g.AvgSize = 8 << 10
	msgs := make(chan []byte, 64)
	go func() {
		for range n {
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
				if _, err := tn.Ingest(ctx, raw, backend.Source{}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, z := range []bool{false, true} {
		name := "plain"
		if z {
			name = "zstd"
		}
		b.Run(name, func(b *testing.B) {
			var size int64
			var out countWriter
			for b.Loop() {
				m, err := Write(ctx, &out, p, Options{Zstd: z, Actor: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				size = 0
				for _, f := range m.Files {
					size += f.Size
				}
			}
			b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
			b.ReportMetric(float64(out.n)/float64(b.N)/float64(size), "out/in")
		})
	}
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)
