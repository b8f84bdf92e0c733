package web

import (
	"archive/zip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/dirsync"
	"github.com/mailvault/mailvault/pull"
)

const (
	alice = "alice@acme.example"
	bob   = "bob@acme.example"
	carol = "carol@acme.example"
	dave  = "dave@acme.example" // admin, no archive mailbox
	eve   = "eve@globex.example"
	pw    = "correct horse battery"
)

// htmlMail has an HTML body with a script, an event handler and a remote
// image, and an attachment.
const htmlMail = "From: Mallory <mallory@evil.example>\r\nTo: alice@acme.example\r\nSubject: Quarterly zebrafish report\r\n" +
	"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n" +
	"--b1\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n" +
	"--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe zebrafish numbers are in.\r\n" +
	"--b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>The <b>zebrafish</b> numbers</p><script>alert(1)</script><img src=\"http://remote.example/track.png\" onerror=\"alert(2)\">\r\n" +
	"--b2--\r\n--b1\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IK\r\n--b1--\r\n"

type fixture struct {
	dataDir string
	p       *backend.Provider
	dir     *dirsync.Syncer
	pull    *pull.Puller
	h       *Handler
	srv     *httptest.Server
	acme    *backend.Tenant
	globe   *backend.Tenant
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dataDir := t.TempDir()
	p, err := backend.Open(backend.Options{DataDir: dataDir, Logger: slog.New(slog.DiscardHandler), CommitDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{p: p, dataDir: dataDir}
	t.Cleanup(func() {
		f.srv.Close()
		if f.h != nil {
			f.h.Close()
		}
		p.Close()
	})
	mk := func(name, domain string, users ...string) *backend.Tenant {
		if _, err := p.CreateTenant(ctx, name, []string{domain}, backend.Quotas{}); err != nil {
			t.Fatal(err)
		}
		tn, err := p.Tenant(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			if _, err := tn.CreateUser(ctx, backend.UserSpec{Login: u, Password: pw, Mailbox: true}); err != nil {
				t.Fatal(err)
			}
		}
		return tn
	}
	f.acme = mk("acme", "acme.example", alice, bob)
	if _, err := f.acme.CreateUser(ctx, backend.UserSpec{Login: carol, Password: pw, Roles: []backend.Role{backend.RoleCompliance}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.acme.CreateUser(ctx, backend.UserSpec{Login: dave, Password: pw, Roles: []backend.Role{backend.RoleAdmin}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.acme.CreateMailbox(ctx, backend.MailboxSpec{Kind: backend.KindShared, Address: "sales@acme.example"}); err != nil {
		t.Fatal(err)
	}
	f.globe = mk("globex", "globex.example", eve)
	for _, m := range []struct {
		tn  *backend.Tenant
		raw string
		mb  string
	}{
		{f.acme, htmlMail, alice},
		{f.acme, "From: x@partner.example\r\nTo: sales@acme.example\r\nSubject: Sales secret\r\n\r\nOnly sales readers.\r\n", "sales@acme.example"},
		{f.globe, "From: y@partner.example\r\nTo: eve@globex.example\r\nSubject: Globex note\r\n\r\nHello Eve.\r\n", eve},
	} {
		if _, err := m.tn.Ingest(ctx, []byte(m.raw), backend.Source{Mailbox: m.mb, Folder: "INBOX"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tn := range []*backend.Tenant{f.acme, f.globe} {
		if err := tn.WaitIndexed(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	f.dir = dirsync.New(slog.New(slog.DiscardHandler))
	f.dir.Attach(p)
	f.pull = pull.New(p, slog.New(slog.DiscardHandler))
	f.h = New(p, slog.New(slog.DiscardHandler), Options{Directory: f.dir, Pull: f.pull})
	mux.Handle(Prefix, f.h)
	f.srv = httptest.NewServer(mux)
	return f
}

// inbox is the INBOX folder ID of a mailbox.
func inbox(t testing.TB, tn *backend.Tenant, login, address string) uint64 {
	t.Helper()
	for _, mb := range tn.Readable(login) {
		if mb.Address != address {
			continue
		}
		fs, err := tn.Folders(login, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.Name == "INBOX" {
				return f.ID
			}
		}
	}
	t.Fatalf("no INBOX of %s for %s", address, login)
	return 0
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t *testing.T
	c *http.Client
	f *fixture
}

func (f *fixture) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, f: f, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, form url.Values, hdr ...string) (int, http.Header, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.f.srv.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

func (b *browser) login(login string) {
	b.t.Helper()
	code, h, _ := b.do("POST", "/web/login", url.Values{"login": {login}, "password": {pw}})
	if code != http.StatusSeeOther || h.Get("Location") != "/web/mail" {
		b.t.Fatalf("login %s: %d %v", login, code, h)
	}
	c := h.Get("Set-Cookie")
	if !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Strict") || strings.Contains(c, "Secure") {
		b.t.Fatalf("session cookie over plain HTTP: %s", c)
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestLoginListSearchView(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	if code, h, _ := b.do("GET", "/web/mail", nil); code != http.StatusSeeOther || h.Get("Location") != "/web/login" {
		t.Fatalf("no session: %d %s", code, h.Get("Location"))
	}
	if code, _, body := b.do("POST", "/web/login", url.Values{"login": {alice}, "password": {"wrong"}}); code != http.StatusUnauthorized || !strings.Contains(body, "Wrong login") {
		t.Fatalf("wrong password: %d", code)
	}
	b.login(alice)
	fid := inbox(t, f.acme, alice, alice)
	_, _, body := b.do("GET", "/web/mail", nil)
	if !strings.Contains(body, `href="/web/mail?folder=`+strconv.FormatUint(fid, 10)+`"`) || strings.Contains(body, "sales@") {
		t.Fatalf("folder tree: %s", body)
	}
	list := "/web/mail?folder=" + strconv.FormatUint(fid, 10)
	if _, _, body = b.do("GET", list, nil); !strings.Contains(body, "Quarterly zebrafish report") {
		t.Fatalf("list: %s", body)
	}
	if _, _, body = b.do("GET", list+"&q=zebrafish&from=mallory", nil); !strings.Contains(body, "Quarterly zebrafish report") || !strings.Contains(body, "1 hits") || !strings.Contains(body, "<mark>zebrafish</mark>") {
		t.Fatalf("search: %s", body)
	}
	if _, _, body = b.do("GET", "/web/mail?att=1", nil); !strings.Contains(body, "Quarterly zebrafish report") || !strings.Contains(body, "1 hits") {
		t.Fatalf("attachment filter: %s", body)
	}
	if _, _, body = b.do("GET", list+"&q=zebrafish&before=2022-12-31", nil); strings.Contains(body, "Quarterly zebrafish") {
		t.Fatalf("date filter ignored: %s", body)
	}
	msg := "/web/msg/" + strconv.FormatUint(fid, 10) + "/1"
	if _, _, body = b.do("GET", msg, nil); !strings.Contains(body, "The zebrafish numbers are in.") || !strings.Contains(body, `sandbox=""`) || !strings.Contains(body, "report.pdf") {
		t.Fatalf("view: %s", body)
	}
	_, h, body := b.do("GET", msg+"/html", nil)
	if h.Get("Content-Security-Policy") != frameCSP || strings.Contains(body, "<script") || strings.Contains(body, "onerror") || !strings.Contains(body, "<b>zebrafish</b>") {
		t.Fatalf("html body %v: %s", h, body)
	}
	if _, h, body = b.do("GET", msg+"/raw?download=1", nil); body != htmlMail || !strings.Contains(h.Get("Content-Disposition"), "attachment") {
		t.Fatalf(".eml not byte-exact: %v", h)
	}
	if _, _, body = b.do("GET", msg+"/part/2", nil); body != "%PDF-1.4\n%\xc7\xec\x8f\xa2\n" {
		t.Fatalf("attachment: %q", body)
	}
	// German from the browser's languages, and by the switch.
	if _, _, body = b.do("GET", list, nil, "Accept-Language", "de-DE,de;q=0.9,en;q=0.5"); !strings.Contains(body, "Betreff") {
		t.Fatal("no German from Accept-Language")
	}
	if code, h, _ := b.do("POST", "/web/lang", url.Values{"lang": {"de"}, "back": {list}}); code != http.StatusSeeOther || h.Get("Location") != list {
		t.Fatalf("language switch: %d", code)
	}
	if _, _, body = b.do("GET", list, nil); !strings.Contains(body, "Abmelden") {
		t.Fatal("switch to German not kept")
	}
}

// TestCSRFRefused: a POST without the session's token, or from another
// origin, changes nothing; the login form refuses other origins.
func TestCSRFRefused(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.login(alice)
	_, _, body := b.do("GET", "/web/mail", nil)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token in the page")
	}
	if code, _, _ := b.do("POST", "/web/logout", url.Values{}); code != http.StatusForbidden {
		t.Fatalf("logout without token: %d", code)
	}
	if code, _, _ := b.do("POST", "/web/logout", url.Values{"csrf": {"forged"}}); code != http.StatusForbidden {
		t.Fatalf("logout with a forged token: %d", code)
	}
	if code, _, _ := b.do("POST", "/web/logout", url.Values{"csrf": {m[1]}}, "Origin", "http://evil.example"); code != http.StatusForbidden {
		t.Fatalf("logout from another origin: %d", code)
	}
	if code, _, _ := b.do("POST", "/web/login", url.Values{"login": {alice}, "password": {pw}}, "Origin", "http://evil.example"); code != http.StatusForbidden {
		t.Fatalf("login from another origin: %d", code)
	}
	if code, _, _ := b.do("POST", "/web/logout", url.Values{"csrf": {m[1]}}, "Sec-Fetch-Site", "cross-site", "Origin", f.srv.URL); code != http.StatusForbidden {
		t.Fatalf("logout the browser calls cross-site: %d", code)
	}
	if code, _, _ := b.do("GET", "/web/mail", nil); code != http.StatusOK {
		t.Fatalf("session gone after refused POSTs: %d", code)
	}
	if code, _, _ := b.do("POST", "/web/logout", url.Values{"csrf": {m[1]}}, "Origin", f.srv.URL); code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	if code, _, _ := b.do("GET", "/web/mail", nil); code != http.StatusSeeOther {
		t.Fatalf("still logged in after logout: %d", code)
	}
}

// TestAccessRefused: a user reaches only folders backend lets them read,
// whatever ID the URL names.
func TestAccessRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	aliceInbox := strconv.FormatUint(inbox(t, f.acme, alice, alice), 10)
	// The shared mailbox's folder ID, learnt through a grant taken back.
	if err := f.acme.Grant(ctx, "sales@acme.example", bob); err != nil {
		t.Fatal(err)
	}
	salesInbox := strconv.FormatUint(inbox(t, f.acme, bob, "sales@acme.example"), 10)
	if err := f.acme.Revoke(ctx, "sales@acme.example", bob); err != nil {
		t.Fatal(err)
	}

	bobB := f.browser(t)
	bobB.login(bob)
	for _, path := range []string{"/web/mail?folder=" + aliceInbox, "/web/msg/" + aliceInbox + "/1", "/web/msg/" + aliceInbox + "/1/raw?download=1", "/web/msg/" + aliceInbox + "/1/part/2", "/web/mail?folder=" + salesInbox, "/web/msg/" + salesInbox + "/1/raw"} {
		code, _, body := bobB.do("GET", path, nil)
		if code != http.StatusNotFound || strings.Contains(body, "zebrafish") || strings.Contains(body, "Sales secret") {
			t.Fatalf("bob without a grant: %s: %d", path, code)
		}
	}
	if err := f.acme.Grant(ctx, "sales@acme.example", bob); err != nil {
		t.Fatal(err)
	}
	if _, _, body := bobB.do("GET", "/web/mail?folder="+salesInbox, nil); !strings.Contains(body, "Sales secret") {
		t.Fatal("bob with a grant cannot list sales@")
	}

	eveB := f.browser(t)
	eveB.login(eve)
	for _, path := range []string{"/web/msg/" + aliceInbox + "/1", "/web/msg/" + aliceInbox + "/1/raw", "/web/mail?folder=" + aliceInbox, "/web/msg/" + salesInbox + "/1/raw"} {
		_, _, body := eveB.do("GET", path, nil)
		if strings.Contains(body, "zebrafish") || strings.Contains(body, "Sales secret") {
			t.Fatalf("eve of globex read acme mail at %s", path)
		}
	}
}

// TestRetentionPage: the user sees the policy and the holds of a message
// in a folder they read, and nothing of one they do not.
func TestRetentionPage(t *testing.T) {
	f := newFixture(t)
	h, err := f.acme.PlaceHold(context.Background(), carol, backend.Hold{Case: "C-7", Reason: "litigation", Mailboxes: []string{alice}})
	if err != nil {
		t.Fatal(err)
	}
	page := "/web/msg/" + strconv.FormatUint(inbox(t, f.acme, alice, alice), 10) + "/1/retention"
	b := f.browser(t)
	b.login(alice)
	code, _, body := b.do("GET", page, nil)
	if code != http.StatusOK || !strings.Contains(body, h.ID) || !regexp.MustCompile(`id="deletable">no<`).MatchString(body) || !strings.Contains(body, `id="minuntil">`) {
		t.Fatalf("retention page %d: %s", code, body)
	}
	other := f.browser(t)
	other.login(bob)
	if code, _, body := other.do("GET", page, nil); code != http.StatusNotFound || strings.Contains(body, h.ID) {
		t.Fatalf("bob sees alice's retention: %d", code)
	}
}

// TestExportSearch: a compliance user who reads the mailbox exports a
// search result as a ZIP holding the hit byte-exact; a reader may not.
func TestExportSearch(t *testing.T) {
	f := newFixture(t)
	if err := f.acme.Grant(context.Background(), alice, carol); err != nil {
		t.Fatal(err)
	}
	fid := strconv.FormatUint(inbox(t, f.acme, carol, alice), 10)
	form := func(b *browser) url.Values {
		_, _, body := b.do("GET", "/web/mail?folder="+fid+"&q=zebrafish", nil)
		m := csrfRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatal("no CSRF token")
		}
		return url.Values{"csrf": {m[1]}, "folder": {fid}, "q": {"zebrafish"}, "format": {"eml"}}
	}
	c := f.browser(t)
	c.login(carol)
	if _, _, body := c.do("GET", "/web/mail?folder="+fid, nil); !strings.Contains(body, `id="export"`) {
		t.Fatal("no export form for a compliance user")
	}
	code, h, body := c.do("POST", "/web/export", form(c))
	if code != http.StatusOK || h.Get("Content-Type") != "application/zip" {
		t.Fatalf("export: %d %v %s", code, h, body)
	}
	zr, err := zip.NewReader(strings.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 {
		t.Fatalf("zip has %d files, want the one hit", len(zr.File))
	}
	rc, _ := zr.File[0].Open()
	got, _ := io.ReadAll(rc)
	if string(got) != htmlMail {
		t.Fatalf("%s is not the message byte-exact", zr.File[0].Name)
	}

	a := f.browser(t)
	a.login(alice)
	aliceInbox := strconv.FormatUint(inbox(t, f.acme, alice, alice), 10)
	if _, _, body := a.do("GET", "/web/mail?folder="+aliceInbox, nil); strings.Contains(body, `id="export"`) {
		t.Fatal("export offered to a reader")
	}
	fa := form(a)
	fa.Set("folder", aliceInbox)
	if code, _, body := a.do("POST", "/web/export", fa); code != http.StatusForbidden || strings.Contains(body, "zebrafish") {
		t.Fatalf("a reader exported: %d", code)
	}
}

// TestSearchEverywhere: a search without a folder covers every mailbox the
// user reads, and only those.
func TestSearchEverywhere(t *testing.T) {
	f := newFixture(t)
	if err := f.acme.Grant(context.Background(), "sales@acme.example", bob); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.login(bob)
	_, _, body := b.do("GET", "/web/mail?q=sales", nil)
	if !strings.Contains(body, "Sales secret") || !strings.Contains(body, "sales@acme.example/INBOX") || !strings.Contains(body, "<mark>") {
		t.Fatalf("bob's search of all mailboxes: %s", body)
	}
	if _, _, body := b.do("GET", "/web/mail?att=1", nil); strings.Contains(body, "Sales secret") || !strings.Contains(body, "0 hits") {
		t.Fatalf("attachment filter let a message without one through: %s", body)
	}
	a := f.browser(t)
	a.login(alice)
	if _, _, body := a.do("GET", "/web/mail?q=sales", nil); strings.Contains(body, "Sales secret") {
		t.Fatal("alice's search found a mailbox she may not read")
	}
	if _, _, body := a.do("GET", "/web/mail?subject=zebrafish", nil); !strings.Contains(body, "Quarterly zebrafish report") || !strings.Contains(body, "1 hits") {
		t.Fatalf("alice's search of all mailboxes: %s", body)
	}
}
