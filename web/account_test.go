package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/mailvault/mailvault/backend"
)

var secretRE = regexp.MustCompile(`<code id="app-secret">([^<]+)</code>`)

// TestAppPasswords: a user makes an app password, sees it once, and a
// mail client's login (MailLogin, as IMAP and JMAP log in) takes it while
// the browser login does not; revoked, it is refused; both are audited.
func TestAppPasswords(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b := f.browser(t)
	b.login(alice)
	if code, _, _ := b.do("POST", "/web/account/app-passwords", url.Values{"name": {"Thunderbird"}}); code != http.StatusForbidden {
		t.Fatalf("app password without CSRF token: %d", code)
	}
	code, _, body := b.post("/web/account/app-passwords", url.Values{"name": {"Thunderbird"}})
	m := secretRE.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		t.Fatalf("make app password: %d %s", code, body)
	}
	secret := m[1]
	aps, _ := f.acme.AppPasswords(alice)
	if len(aps) != 1 || aps[0].Name != "Thunderbird" || aps[0].Hash != "" || !strings.HasPrefix(secret, aps[0].ID+"-") {
		t.Fatalf("app passwords: %+v", aps)
	}
	if !audited(t, f.acme, alice, "app-password-create", aps[0].ID) {
		t.Fatal("app-password-create not audited")
	}
	if _, _, body = b.do("GET", "/web/account", nil); strings.Contains(body, secret) || !strings.Contains(body, `data-id="`+aps[0].ID+`"`) {
		t.Fatal("the app password is shown again, or not listed")
	}
	if _, u, err := f.p.MailLogin(ctx, alice, secret); err != nil || u.Login != alice {
		t.Fatalf("mail client login with the app password: %v", err)
	}
	if _, _, err := f.p.MailLogin(ctx, alice, pw); err != nil {
		t.Fatalf("mail client login with the account password: %v", err)
	}
	if _, _, err := f.p.MailLogin(ctx, bob, secret); !errors.Is(err, backend.ErrAuthFailed) {
		t.Fatalf("bob logged in with alice's app password: %v", err)
	}
	if code := f.browser(t).loginAs(alice, secret); code != http.StatusUnauthorized {
		t.Fatalf("browser login with an app password: %d", code)
	}
	if _, _, err := f.p.Login(ctx, alice, secret); !errors.Is(err, backend.ErrAuthFailed) {
		t.Fatalf("Login took an app password: %v", err)
	}
	// Another user cannot revoke it.
	o := f.browser(t)
	o.login(bob)
	if code, _, _ := o.post("/web/account/app-passwords/revoke", url.Values{"id": {aps[0].ID}}); code != http.StatusNotFound {
		t.Fatalf("bob revoked alice's app password: %d", code)
	}
	if code, _, _ := b.post("/web/account/app-passwords/revoke", url.Values{"id": {aps[0].ID}}); code != http.StatusSeeOther {
		t.Fatalf("revoke: %d", code)
	}
	if _, _, err := f.p.MailLogin(ctx, alice, secret); !errors.Is(err, backend.ErrAuthFailed) {
		t.Fatalf("revoked app password still logs in: %v", err)
	}
	if !audited(t, f.acme, alice, "app-password-revoke", aps[0].ID) {
		t.Fatal("app-password-revoke not audited")
	}
	// A disabled user's app passwords stop too.
	_, secret2, err := f.acme.CreateAppPassword(ctx, alice, "phone")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.acme.SetDisabled(ctx, alice, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.p.MailLogin(ctx, alice, secret2); !errors.Is(err, backend.ErrAuthFailed) {
		t.Fatalf("disabled user's app password logs in: %v", err)
	}
	for _, u := range f.acme.Users() {
		for _, a := range u.AppPasswords {
			if a.Hash != "" {
				t.Fatal("Users lists app password hashes")
			}
		}
	}
}
