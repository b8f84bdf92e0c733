package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/cputime"
	"github.com/mailvault/mailvault/mailgen"
)

func cmdBenchExport(ctx context.Context, args []string) error {
	fs := newFlags("bench export", "bench export [-n N] [-size BYTES] [-dir DIR] [-o FILE] [-format eml|mbox|z3] [-mailboxes N]")
	n := fs.Int("n", 100000, "messages in the archive to export (generated and archived first where the archive has fewer)")
	size := fs.Int("size", 8<<10, "average size of generated messages in bytes")
	dir := fs.String("dir", "", "data directory, kept for the next run (default: a temporary one, removed afterwards)")
	out := fs.String("o", "", "write the export to this file (default: discard it)")
	format := fs.String("format", "eml", "export format")
	nmb := fs.Int("mailboxes", 0, "export only the first N archive mailboxes (0: all), to compare memory across export sizes on one archive")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	f, err := backend.ParseExportFormat(*format)
	if err != nil {
		return err
	}
	serverGC()
	if *dir == "" {
		d, err := os.MkdirTemp("", "mailvault-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	p, err := backend.Open(backend.Options{DataDir: *dir, Logger: newLogger("warn", "text", os.Stderr), CommitDelay: time.Millisecond})
	if err != nil {
		return err
	}
	defer p.Close()
	t, err := benchTenant(ctx, p)
	if err != nil {
		return err
	}
	if have := t.Stats().Messages; have < *n {
		fmt.Fprintf(os.Stderr, "archiving %d generated messages...\n", *n-have)
		if err := benchFill(ctx, t, *n-have, *size, uint64(have)); err != nil {
			return err
		}
	}
	if err := t.WaitIndexed(ctx); err != nil {
		return err
	}
	st := t.Stats()

	var w io.Writer = io.Discard
	if *out != "" {
		file, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer file.Close()
		w = file
	}
	cw := &byteCounter{w: w}
	runtime.GC()
	debug.FreeOSMemory()
	// Peak RSS is measured from here: writing 5 to clear_refs resets it.
	resetPeak := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	rssBefore := rss()
	cpu := cputime.Process()
	start := time.Now()
	scope := backend.ExportScope{All: true}
	if *nmb > 0 {
		scope = backend.ExportScope{}
		for _, mb := range t.Mailboxes()[:min(*nmb, len(t.Mailboxes()))] {
			scope.Mailboxes = append(scope.Mailboxes, mb.Address)
		}
	}
	res, err := t.Export(ctx, backend.ExportRequest{Scope: scope, Format: f, Actor: "bench"}, cw)
	if err != nil {
		return err
	}
	el := time.Since(start)
	cpuUsed := cputime.Process() - cpu
	peak := peakRSS()
	peakNote := "peak RSS during the export"
	if !resetPeak {
		peakNote = "peak RSS of the whole run (clear_refs unavailable)"
	}
	fmt.Printf(`export benchmark (%s): archive of %d messages, %.1f MB raw
  exported:     %d message files (every placement), %.1f MB raw, %.1f MB written
  throughput:   %.1f MB/s raw, %.1f MB/s written, %.0f messages/s, %s
  memory:       RSS %.1f MB before, %.1f MB %s
  CPU:          %.0f µs per message (user+system)
`, f, st.Messages, float64(st.RawBytes)/1e6,
		res.Messages, float64(res.Bytes)/1e6, float64(cw.n)/1e6,
		float64(res.Bytes)/1e6/el.Seconds(), float64(cw.n)/1e6/el.Seconds(), float64(res.Messages)/el.Seconds(), el.Round(time.Millisecond),
		float64(rssBefore)/1e6, float64(peak)/1e6, peakNote,
		float64(cpuUsed.Nanoseconds())/1e3/float64(max(res.Messages, 1)))
	return nil
}

type byteCounter struct {
	w io.Writer
	n int64
}

func (c *byteCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// benchTenant opens the benchmark tenant, creating it with its mailboxes
// in a new archive.
func benchTenant(ctx context.Context, p *backend.Provider) (*backend.Tenant, error) {
	domains := []string{"acme.example", "partner.example"}
	if _, err := p.CreateTenant(ctx, "bench", domains, backend.Quotas{}); err != nil && !errors.Is(err, backend.ErrExists) {
		return nil, err
	}
	t, err := p.Tenant(ctx, "bench")
	if err != nil {
		return nil, err
	}
	g := mailgen.New(42, domains, 40)
	for _, person := range g.People {
		if strings.HasSuffix(person.Address, "@acme.example") {
			_, err := t.CreateMailbox(ctx, backend.MailboxSpec{Kind: backend.KindUser, Address: person.Address})
			if err != nil && !errors.Is(err, backend.ErrExists) {
				return nil, err
			}
		}
	}
	return t, nil
}

// benchFill archives n generated messages, generating them as it goes so
// that no input is held in memory.
func benchFill(ctx context.Context, t *backend.Tenant, n, size int, seed uint64) error {
	g := mailgen.New(42+seed, []string{"acme.example", "partner.example"}, 40)
	g.AvgSize = size
	ch := make(chan []byte, 256)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for raw := range ch {
				if _, err := t.Ingest(ctx, raw, backend.Source{}); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	start := time.Now()
	for i := range n {
		if i > 0 && i%100000 == 0 {
			fmt.Fprintf(os.Stderr, "  %d archived, %.0f messages/s\n", i, float64(i)/time.Since(start).Seconds())
		}
		select {
		case ch <- g.Next().Raw:
		case <-ctx.Done():
			close(ch)
			wg.Wait()
			return ctx.Err()
		}
	}
	close(ch)
	wg.Wait()
	return firstErr
}

// peakRSS reads the peak resident set size (VmHWM) from /proc.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
