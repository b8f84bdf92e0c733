package index

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mailvault/mailvault/cputime"
)

// Benchmarks. The generated index for the search benchmarks holds
// MAILVAULT_BENCH_DOCS messages (default 20000), all in folder 1:
//
//	MAILVAULT_BENCH_DOCS=100000 go test -run='^$' -bench=. -benchtime=200x ./index/
const (
	benchBodyBytes = 4 << 10
	benchBatch     = 1000
)

// BenchmarkPut indexes 1000-message batches of ~4 KB bodies; one op is one
// batch.
func BenchmarkPut(b *testing.B) {
	ix, err := Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	g := newCorpusGen(1)
	batches := make([][]Doc, b.N)
	var mid uint64
	for i := range batches {
		batches[i] = make([]Doc, benchBatch)
		for j := range batches[i] {
			mid++
			batches[i][j] = g.doc(mid, benchBodyBytes)
		}
	}
	ctx := context.Background()
	b.ResetTimer()
	start, cpu := time.Now(), cputime.Process()
	for i := range b.N {
		if err := ix.Put(ctx, batches[i], uint64(i+1)*benchBatch); err != nil {
			b.Fatal(err)
		}
	}
	docs := float64(b.N * benchBatch)
	b.ReportMetric(docs/time.Since(start).Seconds(), "docs/s")
	// CPU per document, background merges included; what two idle cores
	// could sustain is 2000 ms / cpu-ms/doc at best.
	b.ReportMetric(float64((cputime.Process()-cpu).Microseconds())/1000/docs, "cpu-ms/doc")
	b.StopTimer()
	b.ReportMetric(float64(dirSize(b, ix.dir))/float64(b.N*benchBatch), "disk-B/doc")
}

func dirSize(tb testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if info, err := d.Info(); err == nil && !d.IsDir() {
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// benchIndex is the generated index shared by the search benchmarks.
var benchIndex struct {
	once sync.Once
	dir  string
	ix   *Index
	err  error
}

// TestMain removes the benchmarks' index.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchIndex.ix != nil {
		benchIndex.ix.Close()
	}
	if benchIndex.dir != "" {
		os.RemoveAll(benchIndex.dir)
	}
	os.Exit(code)
}

func openBenchIndex(b *testing.B) *Index {
	benchIndex.once.Do(func() {
		n := 20000
		if s := os.Getenv("MAILVAULT_BENCH_DOCS"); s != "" {
			if n, benchIndex.err = strconv.Atoi(s); benchIndex.err != nil {
				return
			}
		}
		dir, err := os.MkdirTemp("", "mailvault-index-bench")
		if err != nil {
			benchIndex.err = err
			return
		}
		benchIndex.dir = dir
		ix, err := Open(dir, nil)
		if err != nil {
			benchIndex.err = err
			return
		}
		benchIndex.ix = ix
		g := newCorpusGen(2)
		start := time.Now()
		batch := make([]Doc, 0, benchBatch)
		for mid := uint64(1); mid <= uint64(n); mid++ {
			batch = append(batch, g.doc(mid, benchBodyBytes))
			if len(batch) == benchBatch || mid == uint64(n) {
				if benchIndex.err = ix.Put(context.Background(), batch, mid); benchIndex.err != nil {
					return
				}
				batch = batch[:0]
			}
		}
		b.Logf("generated %d messages in %v (%.0f docs/s), %d MiB", n, time.Since(start).Round(time.Millisecond),
			float64(n)/time.Since(start).Seconds(), dirSize(b, dir)>>20)
	})
	if benchIndex.err != nil {
		b.Fatal(benchIndex.err)
	}
	return benchIndex.ix
}

// reportLatency reports the median, 90th and 95th percentile of durations.
func reportLatency(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(d[len(d)*9/10].Microseconds())/1000, "p90-ms")
	b.ReportMetric(float64(d[len(d)*95/100].Microseconds())/1000, "p95-ms")
}

type benchQuery struct {
	name string
	q    Query
}

// benchQueries are searches of decreasing selectivity over the generated
// corpus; the rare word is one of the generated tail.
func benchQueries() []benchQuery {
	rare := newCorpusGen(2).vocab[20000]
	return []benchQuery{
		{"common-word", Text(FieldBody, "meeting")},
		{"mid-word", Text(FieldBody, "frist")},
		{"rare-word", Text(FieldBody, rare)},
		{"prefix", Text(FieldBody, "kost")},
		{"two-words", Text(FieldBody, "the report")},
		{"text", Text(FieldText, "invoice")},
		{"from", Text(FieldFrom, "anna müller")},
		{"not", Not(Text(FieldBody, "meeting"))},
		{"all", All()},
	}
}

func BenchmarkSearchFolder(b *testing.B) {
	ix := openBenchIndex(b)
	ctx := context.Background()
	for _, bq := range benchQueries() {
		b.Run(bq.name, func(b *testing.B) {
			var lat []time.Duration
			var hits int
			for b.Loop() {
				start := time.Now()
				uids, err := ix.SearchFolder(ctx, 1, bq.q)
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				hits = len(uids)
			}
			b.ReportMetric(float64(hits), "hits")
			reportLatency(b, lat)
		})
	}
}

// BenchmarkSubstring runs IMAP's searches (Substring, SentDays) beside the
// word search of the same strings, and reports the index size per message.
func BenchmarkSubstring(b *testing.B) {
	ix := openBenchIndex(b)
	ctx := context.Background()
	n, err := ix.Count()
	if err != nil {
		b.Fatal(err)
	}
	perMsg := float64(dirSize(b, ix.dir)) / float64(n)
	g := newCorpusGen(2)
	mid := g.vocab[len(commonWords)+300]                 // a generated word of the upper middle
	inner := string([]rune(mid)[1 : len([]rune(mid))-1]) // without its first and last letter
	// The generated mail is sent from 2015-01-01 on, a message every 7
	// minutes: 100,000 messages reach into May 2016.
	day := func(y int, m time.Month) time.Time { return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC) }
	w1, w2 := g.vocab[150], g.vocab[220] // mid-frequency words: few docs hold them next to each other
	for _, bq := range []benchQuery{
		{"word/" + mid, Text(FieldBody, mid)},
		{"substring/" + inner, Substring(FieldBody, inner)},
		{"substring-common/eit", Substring(FieldBody, "eit")},
		{"word/rechnung", Text(FieldBody, "rechnung")},
		{"substring/echnung", Substring(FieldBody, "echnung")},
		{"words/the-report", Text(FieldBody, "the report")},
		{"phrase/the-report", Substring(FieldBody, "the report")},
		{"phrase/e-report", Substring(FieldBody, "e report")},
		{"words/" + w1 + "-" + w2, Text(FieldBody, w1+" "+w2)},
		{"phrase/" + w1 + "-" + w2, Substring(FieldBody, w1+" "+w2)},
		{"text-substring/nvoic", Substring(FieldText, "nvoic")},
		{"from-substring/ller", Substring(FieldFrom, "ller")},
		{"sent-instant/since-2015-07", SentRange(day(2015, 7), time.Time{})},
		{"sentdays/since-2015-07", SentDays(day(2015, 7), time.Time{})},
		{"sentdays/2015-03..2015-04", SentDays(day(2015, 3), day(2015, 4))},
		{"sentdays+substring", And(SentDays(day(2015, 7), time.Time{}), Substring(FieldBody, "echnung"))},
	} {
		b.Run(bq.name, func(b *testing.B) {
			var lat []time.Duration
			var hits int
			for b.Loop() {
				start := time.Now()
				uids, err := ix.SearchFolder(ctx, 1, bq.q)
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				hits = len(uids)
			}
			b.ReportMetric(float64(hits), "hits")
			b.ReportMetric(perMsg, "index-B/msg")
			reportLatency(b, lat)
		})
	}
}

func BenchmarkFind(b *testing.B) {
	ix := openBenchIndex(b)
	ctx := context.Background()
	folders := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, bq := range benchQueries() {
		for _, sort := range []Sort{{Field: SortReceived, Desc: true}, {Field: SortSubject}} {
			b.Run(bq.name+"/"+sort.Field, func(b *testing.B) {
				var lat []time.Duration
				var total int
				for b.Loop() {
					start := time.Now()
					mids, n, err := ix.Find(ctx, folders, bq.q, []Sort{sort}, 0, 50)
					lat = append(lat, time.Since(start))
					if err != nil {
						b.Fatal(err)
					}
					if len(mids) > 50 {
						b.Fatalf("%d results for limit 50", len(mids))
					}
					total = n
				}
				b.ReportMetric(float64(total), "hits")
				reportLatency(b, lat)
			})
		}
	}
}
