package backend

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

func TestJournalAccess(t *testing.T) {
	ctx := context.Background()
	p := openProvider(t, t.TempDir())
	defer p.Close()
	tn := newTenant(t, p, "acme", "acme.example")
	newTenant(t, p, "globex", "globex.example")

	ip := netip.MustParseAddr("192.0.2.7")
	if ok, err := tn.JournalNetworkAllowed(ip); ok || err != nil {
		t.Fatalf("nothing configured, yet allowed: %v %v", ok, err)
	}
	if err := tn.AllowJournalNetwork(ctx, "192.0.2.0/24"); err != nil {
		t.Fatal(err)
	}
	if err := tn.AllowJournalNetwork(ctx, "2001:db8::1"); err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{"192.0.2.7": true, "::ffff:192.0.2.8": true, "192.0.3.1": false, "2001:db8::1": true, "2001:db8::2": false} {
		if ok, _ := tn.JournalNetworkAllowed(netip.MustParseAddr(addr)); ok != want {
			t.Errorf("%s allowed %v, want %v", addr, ok, want)
		}
	}
	if err := tn.DisallowJournalNetwork(ctx, "192.0.2.0/24"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := tn.JournalNetworkAllowed(ip); ok {
		t.Error("removed network still allowed")
	}
	if err := tn.AllowJournalNetwork(ctx, "not-a-net"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad network: %v", err)
	}

	if err := tn.SetJournalCredential(ctx, "mta@globex.example", "long enough password"); !errors.Is(err, ErrInvalid) {
		t.Errorf("login in another tenant's domain: %v", err)
	}
	if err := tn.SetJournalCredential(ctx, "mta@acme.example", "short"); !errors.Is(err, ErrInvalid) {
		t.Errorf("short password: %v", err)
	}
	if err := tn.SetJournalCredential(ctx, "MTA@acme.example", "long enough password"); err != nil {
		t.Fatal(err)
	}
	if got, err := p.JournalLogin(ctx, "mta@acme.example", "long enough password"); err != nil || got.Name != "acme" {
		t.Fatalf("login: %v %v", got, err)
	}
	for _, bad := range [][2]string{{"mta@acme.example", "wrong password!!"}, {"alice@acme.example", "pw-alice"}, {"mta@nowhere.example", "x"}, {"", ""}} {
		if _, err := p.JournalLogin(ctx, bad[0], bad[1]); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("login %q: %v, want ErrAuthFailed", bad[0], err)
		}
	}
	a, err := tn.JournalAccess()
	if err != nil || len(a.Credentials) != 1 || a.Credentials[0].PasswordHash != "" || len(a.Networks) != 1 {
		t.Errorf("access list %+v %v", a, err)
	}
	if err := tn.DeleteJournalCredential(ctx, "mta@acme.example"); err != nil {
		t.Fatal(err)
	}
	if auth, _ := tn.JournalAuthConfigured(); auth {
		t.Error("deleted login still configured")
	}
	if audit, _ := tn.AuditLog(0, 0); len(audit) < 5 {
		t.Errorf("access changes not audited: %d entries", len(audit))
	}
}

func TestIsJournalAddress(t *testing.T) {
	ctx := context.Background()
	p := openProvider(t, t.TempDir())
	defer p.Close()
	tn := newTenant(t, p, "acme", "acme.example")
	if _, err := tn.CreateMailbox(ctx, MailboxSpec{Kind: KindJournal, Address: "journal@acme.example", Aliases: []string{"archive@acme.example"}}); err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"journal@acme.example": true, "Journal+rcpt=bob=acme.example@ACME.example": true,
		"archive@acme.example": true, "archive+x@acme.example": true,
		"alice@acme.example": false, "journal@globex.example": false, "journalist@acme.example": false, "bad": false,
	} {
		if got := tn.IsJournalAddress(addr); got != want {
			t.Errorf("IsJournalAddress(%q) = %v, want %v", addr, got, want)
		}
	}
}
