package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/conf"
	"github.com/mailvault/mailvault/cputime"
	"github.com/mailvault/mailvault/mailgen"
	"github.com/mailvault/mailvault/server"
	"github.com/mailvault/mailvault/store"
)

func cmdBench(ctx context.Context, args []string) error {
	op, args, err := sub(args, "ingest, export")
	if err != nil {
		return err
	}
	if op == "export" {
		return cmdBenchExport(ctx, args)
	}
	if op != "ingest" {
		return fmt.Errorf("unknown benchmark %q: want ingest or export", op)
	}
	fs := newFlags("bench ingest", "bench ingest [-n N] [-workers W] [-size BYTES] [-dir DIR] [-config FILE]")
	n := fs.Int("n", 20000, "messages to archive")
	workers := fs.Int("workers", 64, "concurrent ingest calls (an SMTP endpoint or import has many in flight)")
	size := fs.Int("size", 30<<10, "average message size in bytes")
	dir := fs.String("dir", "", "data directory (default: a temporary one, removed afterwards)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile (after the run) to this file")
	config := fs.String("config", "", "configuration file whose blob store ([store] blobs, [store.s3]) the run archives to; MAILVAULT_STORE_* variables apply too")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := conf.Load(*config, os.Environ())
	if err != nil {
		return err
	}
	s3, err := server.S3Options(cfg.Store)
	if err != nil {
		return err
	}
	serverGC() // measure what serve runs
	res, err := BenchIngest(ctx, BenchOptions{N: *n, Workers: *workers, Size: *size, Dir: *dir, CPUProfile: *cpuProfile, MemProfile: *memProfile, S3: s3})
	if err != nil {
		return err
	}
	fmt.Print(res)
	return nil
}

// BenchOptions configure BenchIngest.
type BenchOptions struct {
	N, Workers, Size int
	Dir              string
	CPUProfile       string // covers archiving and index catch-up, not generation
	MemProfile       string
	// S3 archives the blobs to an object store instead of pack files.
	S3 *store.S3Config
}

// BenchResult holds the figures of an ingest benchmark.
type BenchResult struct {
	Messages        int
	RawBytes        int64
	Archive, Index  time.Duration
	StoredBytes     int64
	HeapPerMsg      float64
	RSSPerMsg       float64
	BlobBytes       int64
	IndexBytes      int64
	MetaBytes       int64
	SummaryLogBytes int64
	CPUPerMsg       time.Duration // user+system time of the process over the run
	S3              string        // endpoint/bucket of the blobs; empty: packs
}

func (r *BenchResult) String() string {
	total := r.Archive + r.Index
	mb := float64(r.RawBytes) / 1e6
	where := "pack files"
	if r.S3 != "" {
		where = "object store " + r.S3 + " (blob bytes not counted below)"
	}
	return fmt.Sprintf(`ingest benchmark: %d messages, %.1f MB raw, average %d bytes, blobs in %s
  archived durable:        %8.0f messages/s  (%.1f MB/s, %s)
  archived and indexed:    %8.0f messages/s  (%s incl. index catch-up)
  stored bytes / raw:      %8.1f %%  (blobs %.1f MB, summaries %.1f MB, metadata %.1f MB, index %.1f MB)
  RAM per message:         %8.0f bytes heap, %.0f bytes RSS (growth over the run / messages, after GC)
  CPU per message:         %8.0f µs (user+system, archive and index)
`, r.Messages, mb, r.RawBytes/int64(max(r.Messages, 1)), where,
		float64(r.Messages)/r.Archive.Seconds(), mb/r.Archive.Seconds(), r.Archive.Round(time.Millisecond),
		float64(r.Messages)/total.Seconds(), total.Round(time.Millisecond),
		100*float64(r.StoredBytes)/float64(r.RawBytes), float64(r.BlobBytes)/1e6, float64(r.SummaryLogBytes)/1e6, float64(r.MetaBytes)/1e6, float64(r.IndexBytes)/1e6,
		r.HeapPerMsg, r.RSSPerMsg, float64(r.CPUPerMsg.Nanoseconds())/1e3)
}

// BenchIngest archives generated mail through the real pipeline (hash,
// dedup, parse, zstd, AES-GCM, fsynced group commits, index) and measures
// it. Generation happens before the clock starts.
func BenchIngest(ctx context.Context, o BenchOptions) (*BenchResult, error) {
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "mailvault-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	log := newLogger("warn", "text", os.Stderr)
	p, err := backend.Open(backend.Options{DataDir: dir, Logger: log, CommitDelay: time.Millisecond, S3: o.S3})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if _, err := p.CreateTenant(ctx, "bench", []string{"acme.example", "partner.example"}, backend.Quotas{}); err != nil {
		return nil, err
	}
	t, err := p.Tenant(ctx, "bench")
	if err != nil {
		return nil, err
	}
	g := mailgen.New(42, []string{"acme.example", "partner.example"}, 40)
	g.AvgSize = o.Size
	for _, person := range g.People {
		if strings.HasSuffix(person.Address, "@acme.example") {
			if _, err := t.CreateMailbox(ctx, backend.MailboxSpec{Kind: backend.KindUser, Address: person.Address}); err != nil {
				return nil, err
			}
		}
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	rssBefore := rss()
	msgs := make([][]byte, o.N)
	res := &BenchResult{Messages: o.N}
	if o.S3 != nil {
		res.S3 = o.S3.Endpoint + "/" + o.S3.Bucket
	}
	var input offHeap
	defer input.free()
	for i := range msgs {
		if msgs[i], err = input.copy(g.Next().Raw); err != nil {
			return nil, err
		}
		res.RawBytes += int64(len(msgs[i]))
	}
	runtime.GC()
	fmt.Fprintf(os.Stderr, "generated %d messages (%.1f MB); archiving with %d workers...\n", o.N, float64(res.RawBytes)/1e6, o.Workers)
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	cpuBefore := cputime.Process()
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < o.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(msgs) {
					return
				}
				if _, err := t.Ingest(ctx, msgs[i], backend.Source{}); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	res.Archive = time.Since(start)
	if err := t.WaitIndexed(ctx); err != nil {
		return nil, err
	}
	res.Index = time.Since(start) - res.Archive
	res.CPUPerMsg = (cputime.Process() - cpuBefore) / time.Duration(o.N)
	msgs = nil
	input.free()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapPerMsg = (float64(ms.HeapAlloc) - float64(before.HeapAlloc)) / float64(o.N)
	if o.MemProfile != "" {
		f, err := os.Create(o.MemProfile)
		if err != nil {
			return nil, err
		}
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	res.RSSPerMsg = float64(rss()-rssBefore) / float64(o.N)
	tdir := filepath.Join(dir, "tenants", "bench")
	res.BlobBytes = dirSize(filepath.Join(tdir, "packs"))
	res.IndexBytes = dirSize(filepath.Join(tdir, "index"))
	res.MetaBytes = dirSize(filepath.Join(tdir, "meta.db"))
	res.SummaryLogBytes = dirSize(filepath.Join(tdir, "summaries.log"))
	res.StoredBytes = res.BlobBytes + res.MetaBytes + res.SummaryLogBytes
	return res, nil
}

// offHeap keeps the generated messages outside the Go heap. A server holds
// only the messages in flight; gigabytes of test input on the heap would
// raise the garbage collector's goal with them, and every cycle would then
// hand the ingest path fresh, unfaulted memory that a server never sees.
type offHeap struct {
	chunks [][]byte
	cur    []byte
}

func (a *offHeap) copy(b []byte) ([]byte, error) {
	if len(a.cur)+len(b) > cap(a.cur) {
		m, err := syscall.Mmap(-1, 0, max(256<<20, len(b)), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			return nil, fmt.Errorf("memory for the generated messages: %w", err)
		}
		a.chunks = append(a.chunks, m)
		a.cur = m[:0]
	}
	n := len(a.cur)
	a.cur = append(a.cur, b...)
	return a.cur[n:len(a.cur):len(a.cur)], nil
}

func (a *offHeap) free() {
	for _, c := range a.chunks {
		syscall.Munmap(c)
	}
	a.chunks, a.cur = nil, nil
}

func dirSize(path string) int64 {
	var n int64
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// rss reads the resident set size from /proc (0 where unavailable).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
