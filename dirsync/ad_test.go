package dirsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/go-ldap/ldap/v3"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/conf"
	"github.com/mailvault/mailvault/imapd"
)

func adProfile(url string) Profile {
	return Profile{
		Name: "corp", URL: url, BindDN: testSvcDN, BindPassword: testSvcPW, BaseDN: testSuffix,
		GroupBaseDN: "ou=groups," + testSuffix, Preset: PresetAD, Domains: []string{"acme.example", "acme-old.example"},
		Roles: map[string][]backend.Role{
			"Compliance Officers":             {backend.RoleCompliance},
			"cn=EMEA,ou=groups," + testSuffix: {backend.RoleAuditor},
			"No Such Group":                   {backend.RoleAdmin},
		},
		Gone: backend.GoneDisable,
	}
}

// journal archives a journaled copy addressed to rcpt and returns the
// number of messages in owner's own INBOX afterwards.
func journal(t *testing.T, tn *backend.Tenant, rcpt, owner, subject string) int {
	t.Helper()
	raw := fmt.Sprintf("From: Partner <x@partner.example>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@partner.example>\r\nDate: Mon, 02 Jun 2025 10:00:00 +0200\r\n\r\nHello.\r\n", rcpt, subject, strings.ReplaceAll(subject, " ", "."))
	if _, err := tn.Ingest(context.Background(), []byte(raw), backend.Source{Sender: "x@partner.example", Recipients: []string{rcpt}, Journal: true}); err != nil {
		t.Fatal(err)
	}
	for _, mb := range tn.Readable(owner) {
		if !mb.Own {
			continue
		}
		f, err := tn.FolderByName(owner, mb.ID, backend.FolderInbox)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := tn.Snapshot(owner, f.ID)
		if err != nil {
			t.Fatal(err)
		}
		return snap.Messages
	}
	t.Fatalf("%s has no own archive mailbox", owner)
	return 0
}

// imapLogin logs in over IMAP and returns the number of messages in INBOX.
func imapLogin(t *testing.T, addr, login, pw string) (int, error) {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(login, pw).Wait(); err != nil {
		return 0, err
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("IMAP SELECT INBOX as %s: %v", login, err)
	}
	c.Logout().Wait()
	return int(sel.NumMessages), nil
}

// TestActiveDirectorySync runs the whole life of an AD-fed tenant against a
// real slapd with 5,000 users: dry run, first sync, logins (backend and
// IMAP), journaling to aliases, renames, deletions, disabled users, group
// changes that do not touch users, a wrong bind password and the directory
// dying in the middle of a read.
func TestActiveDirectorySync(t *testing.T) {
	m := newADModel(5000)
	sl := startSlapd(t, m.ldif(), false)
	a := newArchive(t, "acme.example", "acme-old.example")
	ctx := ctxFor(t)
	tn := a.tn
	if _, err := tn.CreateUser(ctx, backend.UserSpec{Login: "admin@acme.example", Password: "local admin pw", Roles: []backend.Role{backend.RoleAdmin}}); err != nil {
		t.Fatal(err)
	}
	prof := adProfile(sl.url())
	if err := a.s.PutProfile(ctx, "acme", prof); err != nil {
		t.Fatal(err)
	}
	raw, err := tn.GetSetting(profileKey("corp"))
	if err != nil || strings.Contains(string(raw), testSvcPW) {
		t.Fatalf("stored profile holds the bind password in clear: %s %v", raw, err)
	}

	dry := a.run(t, "corp", true)
	if len(tn.Users()) != 1 || len(tn.Groups()) != 0 {
		t.Fatal("dry run changed the tenant")
	}
	rep := a.run(t, "corp", false)
	if !slices.Equal(dry.Changes, rep.Changes) || !slices.Equal(dry.Skipped, rep.Skipped) {
		t.Fatalf("dry run and run differ: %d vs %d changes", len(dry.Changes), len(rep.Changes))
	}
	disabled := 0
	for _, u := range m.users {
		if u.disabled {
			disabled++
		}
	}
	// 5,001 users do not fit into 1000-entry pages of 500: paging happened.
	if rep.Read.Users != len(m.users) || rep.Read.Disabled != disabled || rep.Read.Groups != len(m.groups) || rep.Read.Pages < len(m.users)/500+1 {
		t.Fatalf("read %+v, directory has %d users (%d disabled), %d groups", rep.Read, len(m.users), disabled, len(m.groups))
	}
	if len(rep.Skipped) != 1 || !strings.Contains(rep.Skipped[0], "local user admin@acme.example") {
		t.Fatalf("skipped %v, want the clash with the local admin", rep.Skipped)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "No Such Group") {
		t.Fatalf("warnings %v, want the unknown group of the role mapping", rep.Warnings)
	}
	m.check(t, tn)
	t.Logf("first sync of %d users: %s, %d changes", len(m.users), rep.Duration, len(rep.Changes))

	// Logins: directory password, never stored; local users keep theirs.
	u42, u43 := m.user("Person 0042"), m.user("Person 0003") // 0003 logs in with mail, its UPN is elsewhere
	a.loginOK(t, m.login(u42), u42.password)
	a.loginOK(t, m.login(u43), u43.password)
	if m.login(u43) != "p0003@acme.example" {
		t.Fatalf("login of 0003 is %s", m.login(u43))
	}
	a.loginRefused(t, m.login(u42), u43.password)
	a.loginRefused(t, m.login(u42), "")
	a.loginRefused(t, m.login(m.user("Person 0005")), m.user("Person 0005").password) // disabled
	a.loginOK(t, "admin@acme.example", "local admin pw")
	for _, u := range tn.Users() {
		if u.PasswordHash != "" {
			t.Fatalf("user %s has a password hash", u.Login)
		}
	}

	// Journaled mail to aliases lands in the owner's archive.
	if n := journal(t, tn, "first.last0042@acme.example", "p0042@acme.example", "to alias"); n != 1 {
		t.Fatalf("INBOX of p0042 has %d messages", n)
	}
	if n := journal(t, tn, "P0042@ACME-OLD.example", "p0042@acme.example", "to old domain"); n != 2 {
		t.Fatalf("INBOX of p0042 has %d messages", n)
	}

	srv, err := imapd.New(a.p, conf.IMAP{}, filepath.Join(a.dir, "data"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Not closed: imapd's Close races with the library's Serve under the
	// race detector; the listener goes with the test process.
	go srv.Serve(ln)
	if n, err := imapLogin(t, ln.Addr().String(), "p0042@acme.example", u42.password); err != nil || n != 2 {
		t.Fatalf("IMAP as p0042: %d messages, %v", n, err)
	}
	if _, err := imapLogin(t, ln.Addr().String(), "p0042@acme.example", "wrong"); err == nil {
		t.Fatal("IMAP login with a wrong password succeeded")
	}

	// The directory changes: a rename, a departure, a disabled and a
	// re-enabled user, group membership (no user entry touched), a nested
	// group under a role group, a new user, an alias moving between people.
	l := sl.admin()
	defer l.Close()
	m.rename(t, l, u42, "Person 0042 Married", "p0042.married@acme.example")
	gone := m.user("Person 0100")
	m.remove(t, l, gone)
	m.setDisabled(t, l, m.user("Person 0200"), true)
	m.setDisabled(t, l, m.user("Person 0102"), false) // 102 % 97 == 5
	sales := m.group("Sales")
	left := sales.users[len(sales.users)-1]
	sales.users = sales.users[:len(sales.users)-1]
	m.setMembers(t, l, sales)
	board := &adGroup{cn: "Board", users: []*adUser{m.user("Person 0001")}}
	addEntry(t, l, m.groupEntry(board))
	m.groups = append(m.groups, board)
	co := m.group("Compliance Officers")
	co.groups = append(co.groups, board)
	m.setMembers(t, l, co)
	newbie := newADUser(7000)
	addEntry(t, l, m.userEntry(newbie))
	m.users = append(m.users, newbie)
	loopB := m.group("Loop B")
	if err := l.ModifyDN(ldap.NewModifyDNRequest(loopB.dn(), "cn=Loop Bee", true, "")); err != nil {
		t.Fatal(err)
	}
	loopB.cn = "Loop Bee"
	from, to := m.user("Person 0050"), m.user("Person 0051")
	moved := from.aliases[0]
	m.setAliases(t, l, from, from.aliases[1:])
	m.setAliases(t, l, to, append(to.aliases, moved))

	rep = a.run(t, "corp", false)
	m.check(t, tn)
	for _, c := range []struct{ action, subject string }{
		{"rename-user", "p0042.married@acme.example"}, {"set-primary", "p0042.married@acme.example"},
		{"disable-user", m.login(gone)}, {"disable-user", "p0200@acme.example"}, {"enable-user", "p0102@acme.example"},
		{"remove-member", "sales"}, {"remove-member", "emea"}, {"create-group", "board"}, {"add-member", "compliance-officers"},
		{"create-user", m.login(newbie)}, {"remove-address", m.login(from)}, {"add-address", m.login(to)},
		{"rename-group", "loop-bee"},
	} {
		if !has(rep, c.action, c.subject) {
			t.Errorf("second sync lacks %s %s", c.action, c.subject)
		}
	}
	if t.Failed() {
		t.Fatalf("changes: %v", rep.Changes)
	}
	if slices.Contains(tn.Roles(m.login(left)), backend.RoleAuditor) {
		t.Fatalf("%s left Sales (in EMEA) but keeps EMEA's role", m.login(left))
	}
	if !slices.Contains(tn.Roles("p0001@acme.example"), backend.RoleCompliance) {
		t.Fatal("member of a group nested in Compliance Officers lacks the role")
	}
	a.loginOK(t, "p0042.married@acme.example", u42.password)
	// The old address stays an alias of her mailbox, and every address of
	// a user's own mailbox logs them in.
	if _, u, err := a.p.Login(context.Background(), "p0042@acme.example", u42.password); err != nil || u.Login != "p0042.married@acme.example" {
		t.Fatalf("login with the old address: %v %+v, want the renamed user", err, u)
	}
	a.loginRefused(t, m.login(gone), gone.password)
	a.loginRefused(t, "p0200@acme.example", m.user("Person 0200").password)
	a.loginOK(t, "p0102@acme.example", m.user("Person 0102").password)
	a.loginOK(t, m.login(newbie), newbie.password)
	if n, err := imapLogin(t, ln.Addr().String(), "p0042.married@acme.example", u42.password); err != nil || n != 2 {
		t.Fatalf("IMAP after rename: %d messages, %v", n, err)
	}
	if n := journal(t, tn, moved, m.login(to), "moved alias"); n != 1 {
		t.Fatalf("mail to the moved alias: INBOX of %s has %d", m.login(to), n)
	}

	if rep := a.run(t, "corp", false); len(rep.Changes) != 0 {
		t.Fatalf("unchanged re-sync changed: %v", rep.Changes)
	}

	// A wrong bind password fails the run and changes nothing.
	before := fmt.Sprint(tn.Users(), tn.Mailboxes(), tn.Groups())
	bad := prof
	bad.BindPassword = "wrong"
	if err := a.s.PutProfile(ctx, "acme", bad); err != nil {
		t.Fatal(err)
	}
	rep, err = a.s.Run(ctx, "acme", "corp", false)
	var be *bindError
	if !errors.As(err, &be) || rep == nil || !strings.Contains(rep.Error, "invalid credentials") {
		t.Fatalf("run with a wrong bind password: %v (report %+v)", err, rep)
	}
	if st, _ := a.s.Status(ctx, "acme", "corp"); st.Error == "" || st.LastSuccess.After(st.LastRun) {
		t.Fatalf("status after a failed run: %+v", st)
	}
	if err := a.s.PutProfile(ctx, "acme", prof); err != nil {
		t.Fatal(err)
	}

	// The directory dies in the middle of the read, under the remove
	// policy: a partial read must not remove anybody.
	cut := newCutProxy(t, sl.addr, 256<<10, sl.stop)
	dying := prof
	dying.URL, dying.Gone, dying.PageSize = cut.url(), backend.GoneRemove, 200
	if err := a.s.PutProfile(ctx, "acme", dying); err != nil {
		t.Fatal(err)
	}
	rep, err = a.s.Run(ctx, "acme", "corp", false)
	if !cut.tripped() || !errors.Is(err, errUnreachable) || rep.Read.Users != 0 {
		t.Fatalf("run with the directory dying: tripped %v, err %v, read %+v", cut.tripped(), err, rep.Read)
	}
	if after := fmt.Sprint(tn.Users(), tn.Mailboxes(), tn.Groups()); after != before {
		t.Fatal("a failed run changed the tenant")
	}
	// Directory down: logins fail with a clear log line; local logins and
	// journaling go on.
	if _, _, err := a.p.Login(ctx, "p0102@acme.example", m.user("Person 0102").password); err == nil || errors.Is(err, backend.ErrAuthFailed) {
		t.Fatalf("login with the directory down: %v, want an error other than a wrong password", err)
	}
	if !strings.Contains(a.logs.String(), "directory login impossible: the directory is unreachable") {
		t.Fatal("no log line says the directory is unreachable")
	}
	a.loginOK(t, "admin@acme.example", "local admin pw")
	if n := journal(t, tn, "p0102@acme.example", "p0102@acme.example", "while down"); n != 1 {
		t.Fatalf("journaling with the directory down: %d", n)
	}

	// Back up: the sync finds nothing to change.
	sl.start()
	if err := a.s.PutProfile(ctx, "acme", prof); err != nil {
		t.Fatal(err)
	}
	if rep := a.run(t, "corp", false); len(rep.Changes) != 0 {
		t.Fatalf("sync after the outage changed: %v", rep.Changes)
	}
	a.loginOK(t, "p0102@acme.example", m.user("Person 0102").password)
	if bad, err := tn.VerifyAudit(); err != nil || len(bad) != 0 {
		t.Fatalf("audit chain: %v %v", bad, err)
	}
	entries, _ := tn.AuditLog(0, 0)
	var runs []string
	for _, e := range entries {
		if strings.HasPrefix(e.Action, "dirsync-run") || e.Action == "dirsync-dry-run" {
			runs = append(runs, e.Action)
		}
	}
	want := []string{"dirsync-dry-run", "dirsync-run", "dirsync-run", "dirsync-run", "dirsync-run-failed", "dirsync-run-failed", "dirsync-run"}
	if !slices.Equal(runs, want) {
		t.Fatalf("audited runs %v, want %v", runs, want)
	}
}
