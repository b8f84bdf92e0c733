package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/dirsync"
	"github.com/mailvault/mailvault/pull"
)

// token is the CSRF token of the browser's session, read from a page.
func (b *browser) token() string {
	b.t.Helper()
	_, _, body := b.do("GET", "/web/mail", nil)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatal("no CSRF token in the page")
	}
	return m[1]
}

// post sends a form with the session's CSRF token.
func (b *browser) post(path string, form url.Values) (int, http.Header, string) {
	b.t.Helper()
	form.Set("csrf", b.token())
	return b.do("POST", path, form)
}

// audited finds the newest audit entry of action by actor whose detail
// holds detail.
func audited(t *testing.T, tn *backend.Tenant, actor, action, detail string) bool {
	t.Helper()
	es, _, err := tn.AuditPage(backend.AuditFilter{Actor: actor, Action: action, Text: detail}, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	return len(es) == 1
}

func (b *browser) loginAs(login, password string) int {
	b.t.Helper()
	code, _, _ := b.do("POST", "/web/login", url.Values{"login": {login}, "password": {password}})
	return code
}

// TestAdminRefused: a reader, a compliance user and an auditor account
// cannot reach the admin console, nor change anything through it.
func TestAdminRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.acme.CreateAuditor(ctx, "", backend.AuditorSpec{Login: "audit@acme.example", Password: pw, All: true, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{alice, carol, "audit@acme.example"} {
		b := f.browser(t)
		b.login(who)
		for _, path := range []string{"/web/admin", "/web/admin/users", "/web/admin/groups", "/web/admin/mailboxes"} {
			if code, _, body := b.do("GET", path, nil); code != http.StatusForbidden || strings.Contains(body, "nu-login") || strings.Contains(body, bob) {
				t.Fatalf("%s GET %s: %d", who, path, code)
			}
		}
		if _, _, body := b.do("GET", "/web/mail", nil); strings.Contains(body, `id="nav-admin"`) {
			t.Fatalf("%s is offered the admin console", who)
		}
		login := "x-" + strings.Split(who, "@")[0] + "@acme.example"
		if code, _, _ := b.post("/web/admin/users", url.Values{"login": {login}, "password": {pw}, "role": {"admin"}}); code != http.StatusForbidden {
			t.Fatalf("%s added a user: %d", who, code)
		}
		if _, err := f.acme.User(login); err == nil {
			t.Fatalf("%s added a user", who)
		}
		if code, _, _ := b.post("/web/admin/mailboxes/grants", url.Values{"mailbox": {"sales@acme.example"}, "who": {who}}); code != http.StatusForbidden {
			t.Fatalf("%s granted themselves sales@: %d", who, code)
		}
	}
	// An admin of another tenant changes nothing here: the session's
	// tenant is its own.
	if _, err := f.globe.CreateUser(ctx, backend.UserSpec{Login: "root@globex.example", Password: pw, Roles: []backend.Role{backend.RoleAdmin}}); err != nil {
		t.Fatal(err)
	}
	g := f.browser(t)
	g.login("root@globex.example")
	if code, _, _ := g.post("/web/admin/users/disabled", url.Values{"login": {alice}, "disabled": {"1"}}); code != http.StatusNotFound {
		t.Fatalf("globex admin disabling acme's alice: %d", code)
	}
	if u, _ := f.acme.User(alice); u.Disabled {
		t.Fatal("globex's admin disabled acme's alice")
	}
}

// TestAdminUsers: an admin adds a user, sets their password, disables
// and enables them; each change takes effect at the login gate and is
// audited as the admin; a POST without the CSRF token changes nothing.
func TestAdminUsers(t *testing.T) {
	f := newFixture(t)
	d := f.browser(t)
	d.login(dave)
	if _, _, body := d.do("GET", "/web/mail", nil); !strings.Contains(body, `id="nav-admin"`) {
		t.Fatal("no admin link for an admin")
	}
	const frank = "frank@acme.example"
	form := url.Values{"login": {frank}, "password": {"first-password"}, "role": {"reader"}, "mailbox": {"1"}}
	if code, _, _ := d.do("POST", "/web/admin/users", form); code != http.StatusForbidden {
		t.Fatalf("add user without CSRF token: %d", code)
	}
	if _, err := f.acme.User(frank); err == nil {
		t.Fatal("user added without CSRF token")
	}
	short := url.Values{"login": {frank}, "password": {"short"}}
	if code, _, body := d.post("/web/admin/users", short); code != http.StatusBadRequest || !strings.Contains(body, "at least 8") {
		t.Fatalf("short password: %d %s", code, body)
	}
	if code, h, _ := d.post("/web/admin/users", form); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/web/admin/users") {
		t.Fatalf("add user: %d", code)
	}
	if code, _, _ := d.post("/web/admin/users", form); code != http.StatusConflict {
		t.Fatalf("add the user again: %d", code)
	}
	if !audited(t, f.acme, dave, "user-create", frank) {
		t.Fatal("user-create not audited as dave")
	}
	if _, _, body := d.do("GET", "/web/admin/users?q=frank", nil); !strings.Contains(body, `data-login="frank@acme.example"`) || strings.Contains(body, `data-login="alice@acme.example"`) {
		t.Fatalf("user filter: %s", body)
	}
	fb := f.browser(t)
	if code := fb.loginAs(frank, "first-password"); code != http.StatusSeeOther {
		t.Fatalf("new user cannot log in: %d", code)
	}
	if code, _, _ := d.post("/web/admin/users/password", url.Values{"login": {frank}, "password": {"second-password"}}); code != http.StatusSeeOther {
		t.Fatalf("set password: %d", code)
	}
	if !audited(t, f.acme, dave, "user-password", frank) {
		t.Fatal("user-password not audited")
	}
	if code := f.browser(t).loginAs(frank, "first-password"); code != http.StatusUnauthorized {
		t.Fatalf("old password still works: %d", code)
	}
	if code := f.browser(t).loginAs(frank, "second-password"); code != http.StatusSeeOther {
		t.Fatalf("new password refused: %d", code)
	}
	if code, _, _ := d.post("/web/admin/users/disabled", url.Values{"login": {frank}, "disabled": {"1"}}); code != http.StatusSeeOther {
		t.Fatalf("disable: %d", code)
	}
	if !audited(t, f.acme, dave, "user-disable", frank) {
		t.Fatal("user-disable not audited")
	}
	// The open session of frank ends, and so does a new login.
	if code, _, _ := fb.do("GET", "/web/mail", nil); code != http.StatusSeeOther {
		t.Fatalf("disabled user's session still open: %d", code)
	}
	if code := f.browser(t).loginAs(frank, "second-password"); code != http.StatusUnauthorized {
		t.Fatalf("disabled user logged in: %d", code)
	}
	if _, _, body := d.do("GET", "/web/admin/users?q=frank", nil); !strings.Contains(body, "disabled") {
		t.Fatal("list does not show frank disabled")
	}
	if code, _, _ := d.post("/web/admin/users/disabled", url.Values{"login": {frank}, "disabled": {"0"}}); code != http.StatusSeeOther {
		t.Fatalf("enable: %d", code)
	}
	if code := f.browser(t).loginAs(frank, "second-password"); code != http.StatusSeeOther {
		t.Fatalf("enabled user cannot log in: %d", code)
	}
	if code, _, _ := d.post("/web/admin/users/disabled", url.Values{"login": {dave}, "disabled": {"1"}}); code != http.StatusBadRequest {
		t.Fatalf("an admin disabled themselves: %d", code)
	}
	// Pages of 50.
	for i := range 60 {
		if _, err := f.acme.CreateUser(context.Background(), backend.UserSpec{Login: fmt.Sprintf("p%02d@acme.example", i), Password: pw}); err != nil {
			t.Fatal(err)
		}
	}
	_, _, body := d.do("GET", "/web/admin/users", nil)
	if n := strings.Count(body, "<tr data-login="); n != consolePage || !strings.Contains(body, `rel="next"`) {
		t.Fatalf("first page has %d users", n)
	}
	if _, _, body = d.do("GET", "/web/admin/users?q=&page=2", nil); strings.Count(body, "<tr data-login=") != 65-consolePage {
		t.Fatalf("second page: %d users", strings.Count(body, "<tr data-login="))
	}
}

// TestAdminGroupsMailboxes: groups and members, archive mailboxes,
// aliases and grants to users and groups; a grant opens the mailbox to
// the reader, the admin still reads nothing, and all is audited.
func TestAdminGroupsMailboxes(t *testing.T) {
	f := newFixture(t)
	d := f.browser(t)
	d.login(dave)
	steps := []struct {
		path string
		form url.Values
	}{
		{"/web/admin/groups", url.Values{"name": {"legal-team"}, "role": {"reader"}}},
		{"/web/admin/groups/members", url.Values{"group": {"legal-team"}, "login": {bob}}},
		{"/web/admin/mailboxes", url.Values{"address": {"legal@acme.example"}, "kind": {"shared"}}},
		{"/web/admin/mailboxes/aliases", url.Values{"mailbox": {"legal@acme.example"}, "alias": {"counsel@acme.example"}}},
		{"/web/admin/mailboxes/grants", url.Values{"mailbox": {"legal@acme.example"}, "who": {"legal-team"}}},
		{"/web/admin/mailboxes/grants", url.Values{"mailbox": {"sales@acme.example"}, "who": {alice}}},
	}
	for _, s := range steps {
		if code, _, body := d.post(s.path, s.form); code != http.StatusSeeOther {
			t.Fatalf("%s %v: %d %s", s.path, s.form, code, body)
		}
	}
	for _, a := range [][2]string{{"group-create", "legal-team"}, {"group-member-add", "legal-team " + bob}, {"mailbox-create", "legal@acme.example"},
		{"mailbox-alias", "counsel@acme.example"}, {"grant", "legal@acme.example legal-team"}, {"grant", "sales@acme.example " + alice}} {
		if !audited(t, f.acme, dave, a[0], a[1]) {
			t.Fatalf("%s %s not audited as dave", a[0], a[1])
		}
	}
	if _, _, body := d.do("GET", "/web/admin/groups", nil); !strings.Contains(body, `data-group="legal-team"`) || !strings.Contains(body, bob) {
		t.Fatalf("groups page: %s", body)
	}
	if _, _, body := d.do("GET", "/web/admin/mailboxes?q=counsel", nil); !strings.Contains(body, `data-mailbox="legal@acme.example"`) || !strings.Contains(body, "legal-team") {
		t.Fatalf("mailboxes page: %s", body)
	}
	if code, _, _ := d.post("/web/admin/mailboxes/grants", url.Values{"mailbox": {"legal@acme.example"}, "who": {"nobody@acme.example"}}); code != http.StatusNotFound {
		t.Fatalf("grant to an unknown user: %d", code)
	}
	a := f.browser(t)
	a.login(alice)
	if _, _, body := a.do("GET", "/web/mail?folder="+fmt.Sprint(inbox(t, f.acme, alice, "sales@acme.example")), nil); !strings.Contains(body, "Sales secret") {
		t.Fatal("granted mailbox not readable")
	}
	bb := f.browser(t)
	bb.login(bob)
	if _, _, body := bb.do("GET", "/web/mail", nil); !strings.Contains(body, "legal@acme.example") {
		t.Fatal("group grant not effective")
	}
	// The admin reads no mail by the role.
	if _, _, body := d.do("GET", "/web/mail?q=zebrafish", nil); strings.Contains(body, "zebrafish report") || strings.Contains(body, "sales@acme.example/") {
		t.Fatal("the admin reads mail without a grant")
	}
	if code, _, _ := d.do("GET", "/web/mail?folder="+fmt.Sprint(inbox(t, f.acme, alice, alice)), nil); code != http.StatusNotFound {
		t.Fatalf("the admin opened alice's INBOX: %d", code)
	}
	// Revoke and remove.
	if code, _, _ := d.post("/web/admin/mailboxes/grants", url.Values{"mailbox": {"sales@acme.example"}, "who": {alice}, "revoke": {"1"}}); code != http.StatusSeeOther {
		t.Fatalf("revoke: %d", code)
	}
	if code, _, _ := d.post("/web/admin/groups/members", url.Values{"group": {"legal-team"}, "login": {bob}, "remove": {"1"}}); code != http.StatusSeeOther {
		t.Fatalf("remove member: %d", code)
	}
	if _, _, body := a.do("GET", "/web/mail", nil); strings.Contains(body, "sales@acme.example") {
		t.Fatal("revoked grant still effective")
	}
	if _, _, body := bb.do("GET", "/web/mail", nil); strings.Contains(body, "legal@acme.example") {
		t.Fatal("removed member still reads the group's mailbox")
	}
	if !audited(t, f.acme, dave, "revoke", "sales@acme.example "+alice) || !audited(t, f.acme, dave, "group-member-remove", "legal-team "+bob) {
		t.Fatal("revoke or member removal not audited")
	}
}

// TestAdminOverview: usage against quotas, journal access and the
// directory profiles with "sync now", whose failed run shows in the
// status and the audit log.
func TestAdminOverview(t *testing.T) {
	f := newFixture(t)
	ctx := backend.WithActor(context.Background(), "provider")
	if err := f.acme.AllowJournalNetwork(ctx, "192.0.2.0/24"); err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port 1: the run fails to connect.
	prof := dirsync.Profile{Name: "corp", URL: "ldap://127.0.0.1:1", BindDN: "cn=sync,dc=acme,dc=example", BindPassword: "x",
		BaseDN: "dc=acme,dc=example", Preset: dirsync.PresetOpenLDAP, Domains: []string{"acme.example"}, Timeout: dirsync.Duration(2 * time.Second)}
	if err := f.dir.PutProfile(ctx, "acme", prof); err != nil {
		t.Fatal(err)
	}
	if _, err := f.acme.Verify(ctx, nil); err != nil {
		t.Fatal(err)
	}
	d := f.browser(t)
	d.login(dave)
	_, _, body := d.do("GET", "/web/admin", nil)
	for _, want := range []string{`id="u-users">4<`, `id="u-messages">2<`, "192.0.2.0/24", "corp", "ldap://127.0.0.1:1", "never run", "messages=2 problems=0"} {
		if !strings.Contains(body, want) {
			t.Fatalf("overview lacks %q: %s", want, body)
		}
	}
	if code, _, _ := d.post("/web/admin/dirsync", url.Values{"profile": {"corp"}}); code != http.StatusSeeOther {
		t.Fatalf("sync now: %d", code)
	}
	if _, _, body = d.do("GET", "/web/admin", nil); strings.Contains(body, "never run") || !strings.Contains(body, `<span class="error">`) {
		t.Fatalf("failed run not shown: %s", body)
	}
	if !audited(t, f.acme, dave, "dirsync-run-request", "corp") || !audited(t, f.acme, "dirsync/corp", "dirsync-run-failed", "") {
		t.Fatal("sync now not audited")
	}
	// A pull profile whose server is not there: "pull now" starts it in
	// the background, and the overview shows how it ended.
	if err := f.pull.PutProfile(ctx, "acme", pull.Profile{Name: "old-server", Host: "127.0.0.1", Port: 1, Security: pull.SecurityNone,
		Login: "alice", Password: "x", Mailbox: alice}); err != nil {
		t.Fatal(err)
	}
	if _, _, body = d.do("GET", "/web/admin", nil); !strings.Contains(body, `data-pull="old-server"`) || !strings.Contains(body, "imap://alice@127.0.0.1") {
		t.Fatalf("imports not shown: %s", body)
	}
	if code, _, _ := d.post("/web/admin/pull", url.Values{"profile": {"old-server"}}); code != http.StatusSeeOther {
		t.Fatalf("pull now: %d", code)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, _, body = d.do("GET", "/web/admin", nil); strings.Contains(body, `<td class="pullstatus"><span class="error">`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("failed pull not shown: %s", body)
		}
	}
	if !audited(t, f.acme, dave, "pull-run-request", "old-server") || !audited(t, f.acme, "pull/old-server", "pull-run-failed", "") {
		t.Fatal("pull now not audited")
	}
	if code, _, _ := d.post("/web/admin/pull", url.Values{"profile": {"nope"}}); code != http.StatusNotFound {
		t.Fatalf("pull of an unknown profile: %d", code)
	}
	if code, _, _ := d.post("/web/admin/dirsync", url.Values{"profile": {"nope"}}); code != http.StatusNotFound {
		t.Fatalf("sync of an unknown profile: %d", code)
	}
	// German.
	if _, _, body = d.do("GET", "/web/admin", nil, "Accept-Language", "de"); !strings.Contains(body, "Jetzt abgleichen") || !strings.Contains(body, "Speicher und Nutzung") {
		t.Fatal("overview not in German")
	}
}

// TestCatalogue: every string has both languages.
func TestCatalogue(t *testing.T) {
	for k := range catalogue["en"] {
		if _, ok := catalogue["de"][k]; !ok {
			t.Errorf("%q has no German", k)
		}
	}
	for k := range catalogue["de"] {
		if _, ok := catalogue["en"][k]; !ok {
			t.Errorf("%q has no English", k)
		}
	}
}
