package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
)

// BenchmarkConsole times console pages of a large tenant over loopback
// HTTP: the user list and the archive mailbox list (first page and a
// filter) of WEB_BENCH_USERS users with their own mailboxes (default
// 20,000, synced from a directory), and the audit log of WEB_BENCH_AUDIT
// entries (default 100,000), newest page and a filter that matches one
// entry at the far end. p50 and p95 of the whole page.
//
//	go test -run '^$' -bench Console -benchtime 30x ./web/
func BenchmarkConsole(b *testing.B) {
	users, entries := 20000, 100000
	if s := os.Getenv("WEB_BENCH_USERS"); s != "" {
		users, _ = strconv.Atoi(s)
	}
	if s := os.Getenv("WEB_BENCH_AUDIT"); s != "" {
		entries, _ = strconv.Atoi(s)
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
	tn, _ := p.Tenant(ctx, "acme")
	if _, err := tn.CreateUser(ctx, backend.UserSpec{Login: dave, Password: pw, Roles: []backend.Role{backend.RoleAdmin}}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := tn.ClaimDirectoryDomains(ctx, "corp", []string{"acme.example"}); err != nil {
		b.Fatal(err)
	}
	snap := &backend.DirectorySnapshot{Source: "corp", Gone: backend.GoneKeep}
	for i := range users {
		snap.Users = append(snap.Users, backend.DirectoryUser{ID: fmt.Sprint(i), Login: fmt.Sprintf("user%06d@acme.example", i)})
	}
	if _, err := tn.SyncDirectory(ctx, snap, false); err != nil {
		b.Fatal(err)
	}
	for i := range entries {
		tn.Audit(ctx, "someone@acme.example", "bench", fmt.Sprintf("entry %d", i))
	}
	b.Logf("%d users and %d audit entries made in %v", users, entries, time.Since(start).Round(time.Millisecond))
	srv := httptest.NewServer(New(p, slog.New(slog.DiscardHandler), Options{}))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	if resp, err := c.PostForm(srv.URL+"/web/login", url.Values{"login": {dave}, "password": {pw}}); err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("login: %v %v", resp, err)
	}
	for _, pg := range []struct{ name, path string }{
		{"users", "/web/admin/users"},
		{"users-filter", "/web/admin/users?q=user01999"},
		{"mailboxes", "/web/admin/mailboxes?page=100"},
		{"audit", "/web/audit"},
		{"audit-filter-far", "/web/audit?text=entry+0%24"},
	} {
		b.Run(pg.name, func(b *testing.B) {
			var full []time.Duration
			for b.Loop() {
				t0 := time.Now()
				resp, err := c.Get(srv.URL + pg.path)
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %v %v", pg.path, resp, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				full = append(full, time.Since(t0))
			}
			slices.Sort(full)
			q := func(f float64) float64 { return float64(full[int(f*float64(len(full)-1))].Microseconds()) / 1000 }
			b.ReportMetric(q(.5), "page-p50-ms")
			b.ReportMetric(q(.95), "page-p95-ms")
		})
	}
}
