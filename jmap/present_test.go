package jmap

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/mailvault/mailvault/backend"
)

// TestBodyValueLineEnds: a text body value has LF line ends (RFC 8621
// 4.1.4) and quoted-printable loses the blanks that end its encoded lines
// (RFC 2045 6.7), while encoded blanks stay.
func TestBodyValueLineEnds(t *testing.T) {
	f := newFixture(t, 0)
	raw := "From: bob@acme.example\r\nTo: alice@acme.example\r\nSubject: qp\r\nMessage-ID: <qp@acme.example>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"caf=C3=A9 \t\r\nkeep=20\r\nsoft=  \r\nbreak\r\n"
	mid := f.ingest(t, f.acme, []byte(raw), backend.Source{Mailbox: alice, Folder: "QP"})
	c := f.client(t, alice)
	acct := f.account(t, f.acme, alice)
	r := c.api(call{"Email/get", map[string]any{"accountId": acct, "ids": ids([]uint64{mid}),
		"properties": []string{"bodyValues"}, "fetchAllBodyValues": true}, "g"})["g"].ok(t)
	got := list(t, r)
	if len(got) != 1 {
		t.Fatalf("Email/get: %v", r)
	}
	values, _ := got[0]["bodyValues"].(map[string]any)
	v, _ := values["1"].(map[string]any)
	if want := "café\nkeep \nsoftbreak\n"; v["value"] != want {
		t.Errorf("body value %q, want %q", v["value"], want)
	}
}

// TestThreadTableReleased: the thread table of a tenant is freed when the
// tenant closes for idleness, and built again when it is used again.
func TestThreadTableReleased(t *testing.T) {
	ctx := context.Background()
	p, err := backend.Open(backend.Options{DataDir: t.TempDir(), Logger: testLogger(t), CommitDelay: time.Millisecond, IdleClose: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.CreateTenant(ctx, "acme", []string{"acme.example"}, backend.Quotas{}); err != nil {
		t.Fatal(err)
	}
	tn, err := p.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	// Open until the table is built, however slow the machine.
	release := tn.Hold()
	if _, err := tn.CreateUser(ctx, backend.UserSpec{Login: alice, Password: pw, Mailbox: true}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		raw := "From: bob@acme.example\r\nTo: alice@acme.example\r\nSubject: t\r\nMessage-ID: <" + string(rune('a'+i)) + "@acme.example>\r\n\r\nhello\r\n"
		if _, err := tn.Ingest(ctx, []byte(raw), backend.Source{Mailbox: alice}); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := tn.WaitIndexed(wctx); err != nil {
		t.Fatal(err)
	}
	h := New(p, "", testLogger(t))
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	f := &fixture{p: p, h: h, srv: srv, acme: tn}
	c := f.client(t, alice)
	acct := f.account(t, tn, alice)
	q := c.api(call{"Email/query", map[string]any{"accountId": acct, "collapseThreads": true}, "q"})["q"].ok(t)
	if n := len(strs(t, q["ids"])); n != 20 {
		t.Fatalf("Email/query: %d threads, want 20", n)
	}
	tt, err := h.threadsOf(ctx, tn)
	if err != nil {
		t.Fatal(err)
	}
	table := weak.Make(tt)
	tt = nil
	h.mu.Lock()
	cached := len(h.marks)
	h.mu.Unlock()
	if cached == 0 {
		t.Fatal("the query left no folder cache to release")
	}
	release()
	select {
	case <-tn.Closed():
	case <-time.After(30 * time.Second):
		t.Fatal("the idle tenant was not closed")
	}
	deadline := time.Now().Add(10 * time.Second)
	for table.Value() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the thread table of the closed tenant is still referenced")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	// The folder caches of the closed tenant go with it.
	for {
		h.mu.Lock()
		n := 0
		for k := range h.marks {
			if k.tenant == "acme" {
				n++
			}
		}
		h.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d folder caches of the closed tenant are still held", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Used again: the tenant reopens and threads are answered as before.
	q = c.api(call{"Email/query", map[string]any{"accountId": acct, "collapseThreads": true}, "q"})["q"].ok(t)
	if n := len(strs(t, q["ids"])); n != 20 {
		t.Errorf("Email/query after reopening: %d threads, want 20", n)
	}
	if r, _ := c.do("GET", sessionPath, nil); r.StatusCode != http.StatusOK {
		t.Errorf("session after reopening: %d", r.StatusCode)
	}
}
