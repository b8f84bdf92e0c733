package jmap

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/mailgen"
)

// BenchmarkQueryGet measures what a script does most: Email/query with a
// text filter sorted by receivedAt, limit 50, and Email/get of those 50
// (subject, from, preview) in one HTTP request, over loopback, with the
// archive of one user holding MAILVAULT_JMAP_BENCH_MSGS messages (default
// 2000) of about MAILVAULT_JMAP_BENCH_SIZE bytes (default 4096).
// MAILVAULT_JMAP_BENCH_DIR keeps the archive between runs, as building a
// large one takes long:
//
//	MAILVAULT_JMAP_BENCH_MSGS=100000 MAILVAULT_JMAP_BENCH_DIR=$HOME/jmap-bench \
//	  go test -run='^$' -bench=QueryGet -benchtime=400x ./jmap/
//
// "newest" is that request; the common words match nearly every message,
// the rare ones (unique tokens) one. "total" adds calculateTotal, which
// makes the index visit every match, for comparison.
func BenchmarkQueryGet(b *testing.B) {
	t := benchArchive(b)
	h := New(benchData.p, "", testLogger(b))
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	acct := accountID(t.Readable(alice)[0].ID)
	n := int(t.MessageCount())
	words := []string{"invoice", "Rechnung", "budget meeting", "Köln", "contract", "Lieferung", "review", "Zahlung",
		fmt.Sprintf("token%06d", n/3), fmt.Sprintf("token%06d", n/2)}
	const common = 8 // words[:common] match nearly every message
	request := func(i int, total bool) []byte {
		q := map[string]any{"accountId": acct, "filter": map[string]any{"text": words[i%len(words)]},
			"sort": []any{map[string]any{"property": "receivedAt", "isAscending": false}}, "limit": 50, "calculateTotal": total}
		g := map[string]any{"accountId": acct, "#ids": map[string]any{"resultOf": "q", "name": "Email/query", "path": "/ids"},
			"properties": []string{"subject", "from", "preview"}}
		out, _ := json.Marshal(map[string]any{"using": []string{capCore, capMail},
			"methodCalls": []any{[]any{"Email/query", q, "q"}, []any{"Email/get", g, "g"}}})
		return out
	}
	run := func(b *testing.B, i int, total bool) {
		req, _ := http.NewRequest("POST", srv.URL+apiPath, bytes.NewReader(request(i, total)))
		req.SetBasicAuth(alice, pw)
		resp, err := srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var res struct {
			MethodResponses [][3]json.RawMessage `json:"methodResponses"`
		}
		err = json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(res.MethodResponses) != 2 || string(res.MethodResponses[1][0]) != `"Email/get"` {
			b.Fatalf("status %d: %v %s", resp.StatusCode, err, res.MethodResponses)
		}
		var g struct{ List []map[string]any }
		json.Unmarshal(res.MethodResponses[1][1], &g)
		if want := 50; n >= 1000 && (i%len(words) < common && len(g.List) != want || i%len(words) >= common && len(g.List) != 1) {
			b.Fatalf("%d emails for %q", len(g.List), words[i%len(words)])
		}
	}
	for i := range len(words) {
		run(b, i, false) // the password check, the first segment reads
	}
	for _, total := range []bool{false, true} {
		name := map[bool]string{false: "newest", true: "total"}[total]
		b.Run(name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				run(b, i, total)
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(float64(len(lat))*p))] }
			b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
			fmt.Printf("jmap query+get (%s), %d messages: p50 %v, p99 %v, max %v over %d requests\n", name, n,
				pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond), len(lat))
		})
	}
}

// benchData is the benchmark's archive, built once per process: the
// benchmark function runs more than once.
var benchData struct {
	once sync.Once
	p    *backend.Provider
	t    *backend.Tenant
	dir  string
}

func benchArchive(b *testing.B) *backend.Tenant {
	benchData.once.Do(func() {
		n := envInt(b, "MAILVAULT_JMAP_BENCH_MSGS", 2000)
		size := envInt(b, "MAILVAULT_JMAP_BENCH_SIZE", 4096)
		dir := os.Getenv("MAILVAULT_JMAP_BENCH_DIR")
		if dir == "" {
			d, err := os.MkdirTemp("", "jmap-bench-")
			if err != nil {
				b.Fatal(err)
			}
			dir, benchData.dir = d, d
		}
		ctx := context.Background()
		p, err := backend.Open(backend.Options{DataDir: dir, Logger: testLogger(b), CommitDelay: 2 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		t, err := p.Tenant(ctx, "bench")
		if err != nil {
			t = newTenant(b, p, "bench", "acme.example", []backend.UserSpec{{Login: alice, Password: pw, Mailbox: true}})
		}
		if have := int(t.MessageCount()); have < n {
			start := time.Now()
			benchIngest(b, t, have, n, size)
			b.Logf("archived %d messages in %v", n-have, time.Since(start).Round(time.Second))
		}
		start := time.Now()
		if err := t.WaitIndexed(ctx); err != nil {
			b.Fatal(err)
		}
		b.Logf("index ready after %v", time.Since(start).Round(time.Millisecond))
		benchData.p, benchData.t = p, t
	})
	if benchData.t == nil {
		b.Fatal("benchmark archive not built")
	}
	return benchData.t
}

// benchIngest archives messages from..to of a fixed generator into alice's
// mailbox, many at a time so that commits are shared.
func benchIngest(b *testing.B, t *backend.Tenant, from, to, size int) {
	g := mailgen.New(42, []string{"acme.example"}, 40)
	g.AvgSize = size
	for range from {
		g.Next()
	}
	work := make(chan mailgen.Message, 256)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for m := range work {
				if _, err := t.Ingest(context.Background(), m.Raw, backend.Source{Mailbox: alice, Received: m.Date}); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := from; i < to; i++ {
		work <- g.Next()
	}
	close(work)
	wg.Wait()
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
