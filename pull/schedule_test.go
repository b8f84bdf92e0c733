package pull

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
)

// TestSchedule: a saved profile is not pulled on its own before its first
// run on demand; once it has run, the scheduler runs it when it is due.
func TestSchedule(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := backend.Open(backend.Options{DataDir: filepath.Join(t.TempDir(), "data"), Logger: log, CommitDelay: time.Millisecond})
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
	if _, err := tn.CreateMailbox(ctx, backend.MailboxSpec{Address: "bob@acme.example"}); err != nil {
		t.Fatal(err)
	}
	// A server that accepts and hangs up: every run fails, but is counted.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var contacted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			contacted.Add(1)
			c.Close()
		}
	}()
	s := New(p, log)
	prof := Profile{Name: "bob", Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Security: SecurityNone,
		Login: "bob", Password: "pw", Mailbox: "bob@acme.example", Interval: Duration(time.Hour)}
	if err := s.PutProfile(ctx, "acme", prof); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Schedule(sctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(500 * time.Millisecond)
	if n := contacted.Load(); n != 0 {
		t.Fatalf("a profile that never ran was pulled %d times by the schedule", n)
	}
	if rep, err := s.Run(ctx, "acme", "bob"); err == nil || rep.Error == "" {
		t.Fatalf("run against a server that hangs up: %v", err)
	}
	if contacted.Load() != 1 {
		t.Fatalf("contacted %d times, want 1", contacted.Load())
	}
	// Make the last run two hours old: due now.
	st, err := loadState(tn, "bob")
	if err != nil {
		t.Fatal(err)
	}
	st.LastRun = time.Now().Add(-2 * time.Hour)
	if err := saveState(ctx, tn, "bob", st); err != nil {
		t.Fatal(err)
	}
	s.poke()
	deadline := time.Now().Add(10 * time.Second)
	for contacted.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the scheduler did not run the due profile")
		}
		time.Sleep(20 * time.Millisecond)
	}
	in, err := s.Profile(ctx, "acme", "bob")
	if err != nil {
		t.Fatal(err)
	}
	for in.State.LastRun.Before(time.Now().Add(-time.Minute)) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		in, _ = s.Profile(ctx, "acme", "bob")
	}
	if in.State.Error == "" || in.State.LastRun.Before(time.Now().Add(-time.Minute)) {
		t.Fatalf("state after the scheduled run: %+v", in.State)
	}
}
