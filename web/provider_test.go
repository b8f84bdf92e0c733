package web

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// providerToken reads the token the provider logs in with.
func (f *fixture) providerToken(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dataDir, "provider.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestProviderConsole: the provider logs in with its token, sees every
// tenant's usage, creates a tenant and sets quotas (audited as the API
// does), and reads no mail; tenant users cannot reach the console.
func TestProviderConsole(t *testing.T) {
	f := newFixture(t)
	p := f.browser(t)
	if code, _, _ := p.do("POST", "/web/provider/login", url.Values{"token": {"guess"}}); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	if code, h, _ := p.do("POST", "/web/provider/login", url.Values{"token": {f.providerToken(t)}}); code != http.StatusSeeOther || h.Get("Location") != "/web/provider" {
		t.Fatalf("provider login: %d", code)
	}
	_, _, body := p.do("GET", "/web/provider", nil)
	for _, want := range []string{`data-tenant="acme"`, `data-tenant="globex"`, "acme.example", `class="t-messages">2<`, `class="t-users">4<`, `id="health">OK`} {
		if !strings.Contains(body, want) {
			t.Fatalf("provider page lacks %q: %s", want, body)
		}
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token")
	}
	post := func(path string, form url.Values) int {
		form.Set("csrf", m[1])
		code, _, _ := p.do("POST", path, form)
		return code
	}
	if code := post("/web/provider/tenants", url.Values{"name": {"initech"}, "domains": {"initech.example"}, "users": {"25"}}); code != http.StatusSeeOther {
		t.Fatalf("create tenant: %d", code)
	}
	info, err := f.p.TenantInfo("initech")
	if err != nil || info.Quotas.Users != 25 {
		t.Fatalf("tenant: %+v %v", info, err)
	}
	tn, _ := f.p.Tenant(context.Background(), "initech")
	if !audited(t, tn, "provider", "tenant-create", "initech") {
		t.Fatal("tenant-create not audited")
	}
	if code := post("/web/provider/tenants", url.Values{"name": {"initech"}, "domains": {"other.example"}}); code != http.StatusConflict {
		t.Fatalf("tenant created twice: %d", code)
	}
	if code := post("/web/provider/quotas", url.Values{"tenant": {"acme"}, "users": {"100"}, "gb": {"1.5"}}); code != http.StatusSeeOther {
		t.Fatalf("set quotas: %d", code)
	}
	if info, _ := f.p.TenantInfo("acme"); info.Quotas.Users != 100 || info.Quotas.Bytes != 3<<29 || !audited(t, f.acme, "provider", "tenant-set", "Users:100") {
		t.Fatalf("quotas: %+v", info.Quotas)
	}
	if code, _, _ := p.do("POST", "/web/provider/tenants", url.Values{"name": {"x"}, "domains": {"x.example"}}); code != http.StatusForbidden {
		t.Fatalf("create tenant without CSRF token: %d", code)
	}
	// The provider never sees mail.
	fid := itoa(inbox(t, f.acme, alice, alice))
	for _, path := range []string{"/web/mail", "/web/mail?q=zebrafish", "/web/msg/" + fid + "/1", "/web/msg/" + fid + "/1/raw", "/web/admin", "/web/audit"} {
		if code, _, body := p.do("GET", path, nil); code != http.StatusSeeOther || strings.Contains(body, "zebrafish") {
			t.Fatalf("provider GET %s: %d", path, code)
		}
	}
	// Tenant users, admins included, do not reach the provider console.
	for _, who := range []string{alice, dave} {
		b := f.browser(t)
		b.login(who)
		if code, h, _ := b.do("GET", "/web/provider", nil); code != http.StatusSeeOther || h.Get("Location") != "/web/provider/login" {
			t.Fatalf("%s GET /web/provider: %d", who, code)
		}
		if code, _, _ := b.post("/web/provider/tenants", url.Values{"name": {"evil"}, "domains": {"evil.example"}}); code != http.StatusUnauthorized {
			t.Fatalf("%s created a tenant: %d", who, code)
		}
	}
	if _, err := f.p.TenantInfo("evil"); err == nil {
		t.Fatal("a tenant user created a tenant")
	}
	if code := post("/web/provider/logout", url.Values{}); code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	if code, _, _ := p.do("GET", "/web/provider", nil); code != http.StatusSeeOther {
		t.Fatalf("still logged in: %d", code)
	}
}
