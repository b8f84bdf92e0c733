package imapd

import (
	"context"
	"crypto/tls"
	"fmt"
	"github.com/mailvault/mailvault/tlscert"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/conf"
	"github.com/mailvault/mailvault/mailgen"
)

// TestIsolation: a user sees and opens only archive mailboxes they may
// read, whatever names or UIDs they guess.
func TestIsolation(t *testing.T) {
	f := newFixture(t, 10, false)
	alice := dialRaw(t, f.addr)
	alice.login("alice@acme.example")
	list := strings.Join(alice.OK(`LIST "" "*"`), "\n")
	for _, bad := range []string{"bob@", "globex", "journal", "carol"} {
		if strings.Contains(list, bad) {
			t.Errorf("alice's LIST shows %s:\n%s", bad, list)
		}
	}
	if !strings.Contains(list, `"Archive/sales@acme.example/INBOX"`) {
		t.Errorf("alice's LIST lacks the granted sales@ mailbox:\n%s", list)
	}
	for _, name := range []string{
		"Archive/bob@acme.example/INBOX", "Archive/BOB@acme.example/INBOX", "Archive/zed@globex.example/INBOX",
		"Archive/journal@acme.example/INBOX", "Archive/bob@acme.example", "Archive", "../bob", "Nope",
	} {
		for _, cmd := range []string{"SELECT", "EXAMINE", "STATUS"} {
			full := cmd + " " + quote(name)
			if cmd == "STATUS" {
				full += " (MESSAGES UIDNEXT UNSEEN SIZE)"
			}
			if st := alice.NO(full); !strings.Contains(st, "NONEXISTENT") {
				t.Errorf("%s: %s", full, st)
			}
		}
	}
	// Guessed UIDs beyond alice's INBOX return nothing (bob's INBOX has
	// UIDs of its own, with the same numbers).
	alice.OK("SELECT INBOX")
	if u := alice.OK("UID FETCH 100000:4294967295 (UID BODY.PEEK[])"); len(u) != 0 {
		t.Errorf("guessed UIDs returned %q", u)
	}
	if u := alice.OK("FETCH 1:* (UID)"); len(u) != len(f.inbox) {
		t.Errorf("FETCH 1:* returned %d messages, want %d", len(u), len(f.inbox))
	}

	// Another tenant's user sees only their own.
	zed := dialRaw(t, f.addr)
	zed.login("zed@globex.example")
	zlist := strings.Join(zed.OK(`LIST "" "*"`), "\n")
	if strings.Contains(zlist, "acme") || strings.Contains(zlist, "Archive") {
		t.Errorf("zed's LIST:\n%s", zlist)
	}
	if u := zed.OK("SELECT INBOX"); !strings.Contains(strings.Join(u, "\n"), fmt.Sprintf("* %d EXISTS", len(f.zedbox))) {
		t.Errorf("zed's INBOX: %q", u)
	}
	zed.NO(`SELECT "Archive/alice@acme.example/INBOX"`)

	// A compliance user sees the journal mailbox, and no personal mail
	// without a grant.
	ctx := context.Background()
	if _, err := f.acme.Ingest(ctx, f.inbox[0].raw, backend.Source{Journal: true, Sender: "x@partner.example", Recipients: []string{"nobody@partner.example"}}); err != nil {
		t.Fatal(err)
	}
	carol := dialRaw(t, f.addr)
	carol.login("carol@acme.example")
	clist := strings.Join(carol.OK(`LIST "" "*"`), "\n")
	if !strings.Contains(clist, `"Archive/journal@acme.example/INBOX"`) || strings.Contains(clist, "alice@") {
		t.Errorf("carol's LIST:\n%s", clist)
	}

	// Revoking a grant takes effect on a session that has the folder open.
	alice.OK(`SELECT "Archive/sales@acme.example/INBOX"`)
	alice.OK("FETCH 1 (UID)")
	if err := f.acme.Revoke(ctx, "sales@acme.example", "alice@acme.example"); err != nil {
		t.Fatal(err)
	}
	if st := alice.NO("FETCH 1 (BODY.PEEK[])"); !strings.Contains(st, "NOPERM") {
		t.Errorf("FETCH after revoke: %s", st)
	}
	if list := strings.Join(alice.OK(`LIST "" "*"`), "\n"); strings.Contains(list, "sales@") {
		t.Errorf("LIST after revoke:\n%s", list)
	}
}

// TestReadOnly: every write is refused with a clear answer and nothing in
// the archive changes; the user's flags change only their overlay.
func TestReadOnly(t *testing.T) {
	f := newFixture(t, 12, false)
	c := dialRaw(t, f.addr)
	c.login("alice@acme.example")
	for _, cmd := range []string{
		`CREATE Trash`, `CREATE "Archive/sales@acme.example/x"`, `DELETE INBOX`, `DELETE Sent`, `RENAME INBOX Old`,
		`UNSUBSCRIBE INBOX`,
	} {
		if st := c.NO(cmd); !strings.Contains(st, "[CANNOT]") {
			t.Errorf("%s: %s", cmd, st)
		}
	}
	c.OK("SUBSCRIBE INBOX")
	c.NO("SUBSCRIBE Trash")
	msg := "Subject: x\r\n\r\nappended\r\n"
	if st := c.NO(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(msg), msg)); !strings.Contains(st, "[CANNOT]") {
		t.Errorf("APPEND: %s", st)
	}
	c.OK("SELECT INBOX")
	for _, cmd := range []string{`COPY 1:* Sent`, `UID COPY 1:* Sent`, `MOVE 1 Sent`, `UID MOVE 1:* Sent`,
		`STORE 1 +FLAGS (\Deleted)`, `UID STORE 1:* FLAGS (\Seen \Deleted)`} {
		if st := c.NO(cmd); !strings.Contains(st, "[CANNOT]") {
			t.Errorf("%s: %s", cmd, st)
		}
	}
	c.OK("EXPUNGE")
	c.OK(fmt.Sprintf("UID EXPUNGE 1:%d", f.inbox[len(f.inbox)-1].uid))
	u := c.OK(`STORE 2 +FLAGS (\Flagged)`)
	if len(u) != 1 || !strings.Contains(u[0], `FLAGS (\Flagged \Seen)`) {
		t.Errorf("STORE +FLAGS: %q", u)
	}
	c.OK("CLOSE")
	// EXAMINE: nothing may change, CLOSE succeeds.
	c.OK("EXAMINE INBOX")
	if st := c.NO(`STORE 1 +FLAGS (\Flagged)`); !strings.Contains(st, "EXAMINE") {
		t.Errorf("STORE after EXAMINE: %s", st)
	}
	c.OK("FETCH 1 BODY[]") // no implicit \Seen change after EXAMINE
	c.OK("CLOSE")
	snapshotUnchanged(t, f)

	// Flags are per user: bob's view of the same message is untouched.
	if err := f.acme.Grant(context.Background(), "alice@acme.example", "bob@acme.example"); err != nil {
		t.Fatal(err)
	}
	b := dialRaw(t, f.addr)
	b.login("bob@acme.example")
	b.OK(`EXAMINE "Archive/alice@acme.example/INBOX"`)
	if u := b.OK("FETCH 2 (FLAGS)"); len(u) != 1 || !strings.HasSuffix(u[0], `FLAGS (\Seen))`) {
		t.Errorf("bob sees alice's flags: %q", u)
	}
	// Implicit \Seen: reading a body after SELECT marks it, for alice only.
	c.OK("SELECT INBOX")
	c.OK(`STORE 3 -FLAGS.SILENT (\Seen)`)
	if u := c.OK("SEARCH UNSEEN"); searchResult(t, u)[0] != 3 {
		t.Errorf("UNSEEN: %q", u)
	}
	if u := c.OK("FETCH 3 BODY[TEXT]"); !strings.Contains(u[0], `FLAGS (\Seen)`) {
		t.Errorf("FETCH BODY[] did not report \\Seen: %.200q", u)
	}
	if u := c.OK("SEARCH UNSEEN"); len(searchResult(t, u)) != 0 {
		t.Errorf("UNSEEN after reading: %q", u)
	}
}

// TestIdle: a message arriving while the client idles is announced.
func TestIdle(t *testing.T) {
	f := newFixture(t, 5, false)
	c := dialRaw(t, f.addr)
	c.login("alice@acme.example")
	c.OK("SELECT INBOX")
	fmt.Fprintf(c.Net(), "i1 IDLE\r\n")
	if l := c.Line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	g := mailgen.New(99, []string{"acme.example"}, 3)
	g.AvgSize = 2 << 10
	for range 2 {
		if _, err := f.acme.Ingest(context.Background(), g.Next().Raw, backend.Source{Mailbox: "alice@acme.example", Folder: "INBOX"}); err != nil {
			t.Fatal(err)
		}
	}
	want := fmt.Sprintf("* %d EXISTS", len(f.inbox)+2)
	for l := c.Line(); l != want; l = c.Line() {
		if !strings.HasSuffix(l, "EXISTS") {
			t.Fatalf("during IDLE: %q", l)
		}
	}
	fmt.Fprintf(c.Net(), "DONE\r\n")
	if l := c.Line(); !strings.HasPrefix(l, "i1 OK") {
		t.Fatalf("after DONE: %q", l)
	}
	if u := c.OK("FETCH 1:* (UID)"); len(u) != len(f.inbox)+2 {
		t.Errorf("after IDLE FETCH 1:* gives %d messages", len(u))
	}
	// NOOP announces too.
	if _, err := f.acme.Ingest(context.Background(), g.Next().Raw, backend.Source{Mailbox: "alice@acme.example", Folder: "INBOX"}); err != nil {
		t.Fatal(err)
	}
	if u := c.OK("NOOP"); len(u) != 1 || u[0] != fmt.Sprintf("* %d EXISTS", len(f.inbox)+3) {
		t.Errorf("NOOP: %q", u)
	}
}

// TestTLS: STARTTLS and implicit TLS with the self-signed certificate
// created at first start; plaintext login refused off loopback.
func TestTLS(t *testing.T) {
	f := newFixture(t, 3, false)
	st, err := os.Stat(filepath.Join(f.dir, "data", "tls", tlscert.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("private key has mode %v", st.Mode().Perm())
	}
	cfg := &tls.Config{InsecureSkipVerify: true}

	// Implicit TLS.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go f.srv.TLSListener().Serve(ln)
	conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := rawOn(t, conn, true)
	c.login("alice@acme.example")
	c.OK("SELECT INBOX")

	// Off loopback: no plaintext login, STARTTLS offered.
	ip := nonLoopbackIP(t)
	ln2, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	go f.srv.Serve(ln2)
	c = dialRaw(t, ln2.Addr().String())
	caps := strings.Join(c.OK("CAPABILITY"), " ")
	if !strings.Contains(caps, "LOGINDISABLED") || !strings.Contains(caps, "STARTTLS") {
		t.Errorf("plaintext off loopback: %s", caps)
	}
	if st := c.NO("LOGIN " + quote("alice@acme.example") + " " + quote(password)); !strings.Contains(st, "PRIVACYREQUIRED") {
		t.Errorf("plaintext LOGIN: %s", st)
	}
	c.OK("STARTTLS")
	tc := tls.Client(c.Net(), cfg)
	c = rawOn(t, tc, false)
	c.login("alice@acme.example")

	// The certificate is kept: a second server uses the same one.
	srv2, err := New(f.p, conf.IMAP{}, filepath.Join(f.dir, "data"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	c1, err1 := f.srv.tlsConf.GetCertificate(nil)
	c2, err2 := srv2.tlsConf.GetCertificate(nil)
	if err1 != nil || err2 != nil || string(c1.Certificate[0]) != string(c2.Certificate[0]) {
		t.Errorf("a second start created a new certificate (%v %v)", err1, err2)
	}
}

func nonLoopbackIP(t *testing.T) string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address to test plaintext refusal on")
	return ""
}

// TestAudit: a compliance user's login, folder opens, message reads and
// searches are audited, one entry per command; a reader's are not.
func TestAudit(t *testing.T) {
	f := newFixture(t, 8, false)
	ctx := context.Background()
	for _, m := range f.inbox {
		if _, err := f.acme.Ingest(ctx, m.raw, backend.Source{Journal: true, Sender: "a@partner.example", Recipients: []string{"b@partner.example"}}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := f.acme.AuditLog(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := dialRaw(t, f.addr)
	a.login("alice@acme.example")
	a.OK("SELECT INBOX")
	a.OK("FETCH 1:* (ENVELOPE BODY.PEEK[])")
	c := dialRaw(t, f.addr)
	c.login("carol@acme.example")
	c.OK(`EXAMINE "Archive/journal@acme.example/INBOX"`)
	c.OK("FETCH 1:* (UID FLAGS)") // no content: not a retrieval
	c.OK("UID FETCH 1:* (BODY.PEEK[HEADER] BODYSTRUCTURE)")
	c.OK(`UID SEARCH OR SUBJECT "invoice" NOT BODY "meeting"`)
	after, err := f.acme.AuditLog(before[len(before)-1].Seq, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range after {
		if e.Actor != "carol@acme.example" {
			t.Errorf("audited %s: %+v", e.Actor, e)
		}
		got = append(got, e.Action+" "+e.Detail)
	}
	want := []string{
		"imap-login from 127.0.0.1",
		"imap-open journal@acme.example/INBOX",
		fmt.Sprintf("imap-fetch journal@acme.example/INBOX uids 1:%d BODYSTRUCTURE BODY", len(f.inbox)),
		`imap-search journal@acme.example/INBOX OR (HEADER "Subject" "invoice") (NOT (BODY "meeting")) hits=`,
	}
	if len(got) != len(want) {
		t.Fatalf("audit entries:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("entry %d: got %q, want %q", i, got[i], want[i])
		}
	}
	if bad, err := f.acme.VerifyAudit(); err != nil || len(bad) > 0 {
		t.Errorf("audit chain: %v %v", bad, err)
	}
}
