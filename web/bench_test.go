package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/mailgen"
)

var totalRE = regexp.MustCompile(`<p class="total">([^<]*)</p>`)

// BenchmarkPages times the first page, a middle page and a search of one
// folder of WEB_BENCH_N messages (default 100,000), and the same search
// over every folder, over loopback HTTP:
// time to first byte and to the whole page, p50 and p95.
//
//	go test -run '^$' -bench Pages -benchtime 50x ./web/
func BenchmarkPages(b *testing.B) {
	n := 100000
	if s := os.Getenv("WEB_BENCH_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	p, err := backend.Open(backend.Options{DataDir: b.TempDir(), Logger: slog.New(slog.DiscardHandler), CommitDelay: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if _, err := p.CreateTenant(ctx, "acme", []string{"acme.example"}, backend.Quotas{}); err != nil {
		b.Fatal(err)
	}
	tn, err := p.Tenant(ctx, "acme")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tn.CreateUser(ctx, backend.UserSpec{Login: alice, Password: pw, Mailbox: true}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	const workers = 16
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			g := mailgen.New(uint64(w+1), []string{"acme.example"}, 20)
			g.AvgSize = 1 << 10
			for i := w; i < n; i += workers {
				if _, err := tn.Ingest(ctx, g.Next().Raw, backend.Source{Mailbox: alice, Folder: "INBOX"}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := tn.WaitIndexed(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d messages archived and indexed in %v", n, time.Since(start).Round(time.Millisecond))
	srv := httptest.NewServer(New(p, slog.New(slog.DiscardHandler), Options{}))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	if resp, err := c.PostForm(srv.URL+"/web/login", url.Values{"login": {alice}, "password": {pw}}); err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("login: %v %v", resp, err)
	}
	folder := strconv.FormatUint(inbox(b, tn, alice, alice), 10)
	pages := []struct{ name, path string }{
		{"first", "/web/mail?folder=" + folder},
		{"middle", "/web/mail?folder=" + folder + "&page=" + strconv.Itoa(n/pageSize/2)},
		{"search", "/web/mail?folder=" + folder + "&q=meeting"},
		{"search-all", "/web/mail?q=meeting"},
	}
	for _, pg := range pages {
		resp, err := c.Get(srv.URL + pg.path)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		b.Logf("%s: %s", pg.name, totalRE.FindSubmatch(body)[1])
		b.Run(pg.name, func(b *testing.B) {
			var ttfb, full []time.Duration
			for b.Loop() {
				var first time.Time
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}), "GET", srv.URL+pg.path, nil)
				resp, err := c.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %v %v", pg.path, resp, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ttfb = append(ttfb, first.Sub(t0))
				full = append(full, time.Since(t0))
			}
			q := func(d []time.Duration, f float64) float64 {
				slices.Sort(d)
				return float64(d[int(f*float64(len(d)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(q(ttfb, .5), "ttfb-p50-ms")
			b.ReportMetric(q(ttfb, .95), "ttfb-p95-ms")
			b.ReportMetric(q(full, .5), "page-p50-ms")
			b.ReportMetric(q(full, .95), "page-p95-ms")
		})
	}
}
