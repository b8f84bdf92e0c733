package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
)

var (
	requestRE = regexp.MustCompile(`name="request" value="([^"]*)"`)
	tokenRE   = regexp.MustCompile(`name="token" value="([^"]*)"`)
)

// TestComplianceRetention: a compliance user places and lifts a hold,
// adds a policy, dry-runs a deletion, sees the hold keep a message, and
// confirms the plan; a confirmation of a plan that changed since is
// refused; all is audited as the compliance user. An admin or a reader
// may do none of it.
func TestComplianceRetention(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	c.login(carol)
	if _, _, body := c.do("GET", "/web/mail", nil); !strings.Contains(body, `id="nav-compliance"`) || !strings.Contains(body, `id="nav-audit"`) {
		t.Fatal("no compliance links for a compliance user")
	}
	if code, _, body := c.post("/web/compliance/holds", url.Values{"case": {"C-1"}, "reason": {"dispute"}, "mailboxes": {"sales@acme.example"}}); code != http.StatusSeeOther {
		t.Fatalf("place hold: %d %s", code, body)
	}
	holds, _ := f.acme.Holds()
	if len(holds) != 1 || holds[0].PlacedBy != carol || !audited(t, f.acme, carol, "hold-place", "C-1") {
		t.Fatalf("hold: %+v", holds)
	}
	if _, _, body := c.do("GET", "/web/compliance", nil); !strings.Contains(body, `data-hold="`+holds[0].ID+`"`) || !strings.Contains(body, "dispute") {
		t.Fatalf("compliance page: %s", body)
	}
	// A policy that lets sales@ mail go at once.
	if code, _, body := c.post("/web/compliance/policies", url.Values{"name": {"sales-short"}, "mailboxes": {"sales@acme.example"}, "min_years": {"0"}, "min_days": {"0"}}); code != http.StatusSeeOther {
		t.Fatalf("add policy: %d %s", code, body)
	}
	ps, _ := f.acme.RetentionPolicies()
	if len(ps.Policies) != 2 || ps.Policies[0].Name != "sales-short" || ps.By != carol || !audited(t, f.acme, carol, "retention-policies", "sales-short") {
		t.Fatalf("policies: %+v", ps)
	}
	dry := func() (string, url.Values) {
		t.Helper()
		code, _, body := c.post("/web/compliance/dry-run", url.Values{"mailboxes": {"sales@acme.example"}})
		if code != http.StatusOK {
			t.Fatalf("dry run: %d %s", code, body)
		}
		form := url.Values{}
		if m := requestRE.FindStringSubmatch(body); m != nil {
			form.Set("request", htmlUnescape(m[1]))
		}
		if m := tokenRE.FindStringSubmatch(body); m != nil {
			form.Set("token", m[1])
		}
		return body, form
	}
	body, _ := dry()
	if !strings.Contains(body, `id="plan-placements">0<`) || !strings.Contains(body, `id="plan-held">1<`) || strings.Contains(body, `id="del-confirm"`) {
		t.Fatalf("a held message planned for deletion: %s", body)
	}
	if code, _, _ := c.post("/web/compliance/holds/lift", url.Values{"id": {holds[0].ID}}); code != http.StatusSeeOther || !audited(t, f.acme, carol, "hold-lift", holds[0].ID) {
		t.Fatalf("lift hold: %d", code)
	}
	body, confirm := dry()
	if !strings.Contains(body, `id="plan-placements">1<`) || !strings.Contains(body, `id="plan-messages">1 `) || confirm.Get("token") == "" {
		t.Fatalf("dry run after the lift: %s", body)
	}
	// A hold placed after the dry run makes its token stale.
	if code, _, _ := c.post("/web/compliance/holds", url.Values{"case": {"C-2"}, "reason": {"again"}}); code != http.StatusSeeOther {
		t.Fatalf("second hold: %d", code)
	}
	if code, _, body := c.post("/web/compliance/delete", confirm); code != http.StatusConflict || !strings.Contains(body, "dry run") {
		t.Fatalf("stale confirmation: %d %s", code, body)
	}
	holds, _ = f.acme.Holds()
	c.post("/web/compliance/holds/lift", url.Values{"id": {holds[1].ID}})
	_, confirm = dry()
	// Neither an admin nor a reader may confirm the plan.
	for _, who := range []string{dave, alice} {
		b := f.browser(t)
		b.login(who)
		for _, path := range []string{"/web/compliance"} {
			if code, _, _ := b.do("GET", path, nil); code != http.StatusForbidden {
				t.Fatalf("%s GET %s: %d", who, path, code)
			}
		}
		form := url.Values{"request": {confirm.Get("request")}, "token": {confirm.Get("token")}}
		if code, _, _ := b.post("/web/compliance/delete", form); code != http.StatusForbidden {
			t.Fatalf("%s confirmed a deletion: %d", who, code)
		}
		if code, _, _ := b.post("/web/compliance/holds", url.Values{"case": {"X"}, "reason": {"x"}}); code != http.StatusForbidden {
			t.Fatalf("%s placed a hold: %d", who, code)
		}
	}
	if code, _, _ := c.do("POST", "/web/compliance/delete", confirm); code != http.StatusForbidden {
		t.Fatalf("confirmation without the CSRF token: %d", code)
	}
	if code, _, body := c.post("/web/compliance/delete", confirm); code != http.StatusOK || !strings.Contains(body, `id="rep-placements">1<`) {
		t.Fatalf("confirmed deletion: %d %s", code, body)
	}
	if f.acme.Stats().Deleted != 1 {
		t.Fatal("the message was not deleted")
	}
	if !audited(t, f.acme, carol, "", "") {
		t.Fatal("nothing audited as carol")
	}
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#34;", `"`, "&quot;", `"`, "&amp;", "&", "&lt;", "<", "&gt;", ">", "&#39;", "'").Replace(s)
}

// TestAuditorAccounts: a compliance user creates an auditor account for
// one mailbox; the auditor sees that mailbox only, on every page, and no
// console, compliance page or audit log; an account whose period ends
// before the mail sees none of it.
func TestAuditorAccounts(t *testing.T) {
	f := newFixture(t)
	c := f.browser(t)
	c.login(carol)
	expires := time.Now().AddDate(0, 0, 7).Format(time.DateOnly)
	if code, _, body := c.post("/web/auditors", url.Values{"login": {"ext@acme.example"}, "password": {pw}, "mailboxes": {"sales@acme.example"}, "expires": {expires}}); code != http.StatusSeeOther {
		t.Fatalf("create auditor: %d %s", code, body)
	}
	if !audited(t, f.acme, carol, "auditor-create", "ext@acme.example mailboxes=sales@acme.example") {
		t.Fatal("auditor-create not audited as carol")
	}
	if _, _, body := c.do("GET", "/web/auditors", nil); !strings.Contains(body, `data-login="ext@acme.example"`) {
		t.Fatalf("auditors page: %s", body)
	}
	if code, _, _ := c.post("/web/auditors", url.Values{"login": {"ext2@acme.example"}, "password": {pw}, "all": {"1"}, "expires": {"2001-01-01"}}); code != http.StatusBadRequest {
		t.Fatalf("auditor expiring in the past: %d", code)
	}
	// A reader may not create one.
	a := f.browser(t)
	a.login(alice)
	if code, _, _ := a.post("/web/auditors", url.Values{"login": {"ext3@acme.example"}, "password": {pw}, "all": {"1"}, "expires": {expires}}); code != http.StatusForbidden {
		t.Fatalf("reader created an auditor: %d", code)
	}

	x := f.browser(t)
	x.login("ext@acme.example")
	_, _, body := x.do("GET", "/web/mail", nil)
	if !strings.Contains(body, "sales@acme.example") || strings.Contains(body, ">"+alice+"<") {
		t.Fatalf("auditor's folders: %s", body)
	}
	salesInbox := fmt.Sprint(inbox(t, f.acme, "ext@acme.example", "sales@acme.example"))
	if _, _, body = x.do("GET", "/web/mail?folder="+salesInbox, nil); !strings.Contains(body, "Sales secret") || strings.Contains(body, `id="export"`) {
		t.Fatalf("auditor's folder: %s", body)
	}
	aliceInbox := fmt.Sprint(inbox(t, f.acme, alice, alice))
	for _, path := range []string{"/web/mail?folder=" + aliceInbox, "/web/msg/" + aliceInbox + "/1", "/web/msg/" + aliceInbox + "/1/raw", "/web/msg/" + aliceInbox + "/1/retention"} {
		if code, _, body := x.do("GET", path, nil); code != http.StatusNotFound || strings.Contains(body, "zebrafish") {
			t.Fatalf("auditor outside the scope %s: %d", path, code)
		}
	}
	if _, _, body = x.do("GET", "/web/mail?q=zebrafish", nil); strings.Contains(body, "Quarterly zebrafish") {
		t.Fatal("auditor's search reached outside the scope")
	}
	for _, path := range []string{"/web/admin", "/web/compliance", "/web/auditors", "/web/audit"} {
		if code, _, _ := x.do("GET", path, nil); code != http.StatusForbidden {
			t.Fatalf("auditor GET %s: %d", path, code)
		}
	}
	if code, _, _ := x.post("/web/export", url.Values{"folder": {salesInbox}, "format": {"eml"}}); code != http.StatusForbidden {
		t.Fatalf("auditor exported from the page: %d", code)
	}
	if code, _, _ := x.post("/web/auditors", url.Values{"login": {"ext4@acme.example"}, "password": {pw}, "all": {"1"}, "expires": {expires}}); code != http.StatusForbidden {
		t.Fatalf("auditor created an auditor: %d", code)
	}
	if !audited(t, f.acme, "ext@acme.example", "web-login", "") {
		t.Fatal("the auditor's login is not audited")
	}
	// A period that ended before the mail arrived: the folder is empty.
	if _, err := f.acme.CreateAuditor(context.Background(), carol, backend.AuditorSpec{Login: "old@acme.example", Password: pw, All: true,
		Until: time.Now().AddDate(-1, 0, 0), Expires: time.Now().AddDate(0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	o := f.browser(t)
	o.login("old@acme.example")
	if _, _, body = o.do("GET", "/web/mail?folder="+salesInbox, nil); strings.Contains(body, "Sales secret") || !strings.Contains(body, "0 messages") {
		t.Fatalf("auditor outside the period: %s", body)
	}
}

// TestAuditLog: the log newest first, filtered by who and what, in pages;
// readers and auditor accounts do not see it, the auditor role does.
func TestAuditLog(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := range 130 {
		f.acme.Audit(ctx, bob, "test-entry", fmt.Sprintf("entry %03d", i))
	}
	f.acme.Audit(ctx, alice, "other-entry", "by alice")
	if _, err := f.acme.CreateUser(ctx, backend.UserSpec{Login: "aud@acme.example", Password: pw, Roles: []backend.Role{backend.RoleAuditor}}); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.login("aud@acme.example")
	_, _, body := b.do("GET", "/web/audit?actor="+url.QueryEscape(bob), nil)
	if n := strings.Count(body, "<tr data-seq="); n != auditShown || strings.Contains(body, "by alice") || !strings.Contains(body, "entry 129") || strings.Contains(body, "entry 029") {
		t.Fatalf("first page: %d rows", n)
	}
	next := regexp.MustCompile(`id="a-next" rel="next" href="([^"]+)"`).FindStringSubmatch(body)
	if next == nil {
		t.Fatal("no next page")
	}
	if _, _, body = b.do("GET", htmlUnescape(next[1]), nil); strings.Count(body, "<tr data-seq=") != 30 || !strings.Contains(body, "entry 000") || strings.Contains(body, "entry 030") {
		t.Fatalf("second page: %s", body)
	}
	if _, _, body = b.do("GET", "/web/audit?action=other-entry", nil); strings.Count(body, "<tr data-seq=") != 1 || !strings.Contains(body, "by alice") {
		t.Fatalf("action filter: %s", body)
	}
	if _, _, body = b.do("GET", "/web/audit?text=ENTRY+12", nil); strings.Count(body, "<tr data-seq=") != 10 {
		t.Fatalf("text filter: %d", strings.Count(body, "<tr data-seq="))
	}
	tomorrow := time.Now().AddDate(0, 0, 1).Format(time.DateOnly)
	if _, _, body = b.do("GET", "/web/audit?since="+tomorrow, nil); strings.Contains(body, "<tr data-seq=") {
		t.Fatal("since filter")
	}
	if _, _, body = b.do("GET", "/web/mail", nil); !strings.Contains(body, `id="nav-audit"`) || strings.Contains(body, `id="nav-admin"`) {
		t.Fatal("auditor role's links")
	}
	a := f.browser(t)
	a.login(alice)
	if code, _, body := a.do("GET", "/web/audit", nil); code != http.StatusForbidden || strings.Contains(body, "entry 1") {
		t.Fatalf("reader reads the audit log: %d", code)
	}
}
