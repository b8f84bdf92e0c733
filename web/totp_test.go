package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/mailvault/mailvault/backend"
)

var totpSecretRE = regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`)

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTOTP: a user sets up two-step login; the next browser login asks
// for a code, opens nothing before it, refuses a wrong or replayed code
// and throttles guessing; mail clients then need an app password; an
// admin removes the factor of a user who lost the device.
func TestTOTP(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.browser(t)
	a.login(alice)
	_, _, body := a.post("/web/account/totp/begin", url.Values{})
	m := totpSecretRE.FindStringSubmatch(body)
	if m == nil || !regexp.MustCompile(`<img id="totp-qr" src="data:image/png;base64,`).MatchString(body) {
		t.Fatalf("set-up page: %s", body)
	}
	secret := m[1]
	if code, _, _ := a.post("/web/account/totp", url.Values{"code": {"000000"}}); code != http.StatusBadRequest || f.acme.HasTOTP(alice) {
		t.Fatalf("set up with a wrong code: %d", code)
	}
	now := time.Now()
	if code, _, body := a.post("/web/account/totp", url.Values{"code": {code(t, secret, now)}}); code != http.StatusSeeOther || !f.acme.HasTOTP(alice) {
		t.Fatalf("set up: %d %s", code, body)
	}
	if !audited(t, f.acme, alice, "totp-enable", alice) {
		t.Fatal("totp-enable not audited")
	}
	if u, _ := f.acme.User(alice); u.TOTP == nil || len(u.TOTP.Sealed) != 0 {
		t.Fatal("User shows the sealed secret")
	}

	b := f.browser(t)
	code0, h, _ := b.do("POST", "/web/login", url.Values{"login": {alice}, "password": {pw}})
	if code0 != http.StatusSeeOther || h.Get("Location") != "/web/login/totp" {
		t.Fatalf("password step: %d %s", code0, h.Get("Location"))
	}
	fid := inbox(t, f.acme, alice, alice)
	for _, path := range []string{"/web/mail", "/web/account", "/web/msg/" + itoa(fid) + "/1/raw"} {
		if code, h, _ := b.do("GET", path, nil); code != http.StatusSeeOther || h.Get("Location") != "/web/login" {
			t.Fatalf("pending session opened %s: %d", path, code)
		}
	}
	_, _, body = b.do("GET", "/web/login/totp", nil)
	tok := csrfRE.FindStringSubmatch(body)
	if tok == nil {
		t.Fatalf("code page: %s", body)
	}
	if code, _, _ := b.do("POST", "/web/login/totp", url.Values{"code": {code(t, secret, now.Add(30*time.Second))}}); code != http.StatusForbidden {
		t.Fatalf("code without CSRF token: %d", code)
	}
	// The code of the set-up is used.
	if code, _, _ := b.do("POST", "/web/login/totp", url.Values{"csrf": {tok[1]}, "code": {code(t, secret, now)}}); code != http.StatusUnauthorized {
		t.Fatalf("replayed code: %d", code)
	}
	next := code(t, secret, now.Add(30*time.Second))
	code1, h, _ := b.do("POST", "/web/login/totp", url.Values{"csrf": {tok[1]}, "code": {next}})
	if code1 != http.StatusSeeOther || h.Get("Location") != "/web/mail" {
		t.Fatalf("code step: %d", code1)
	}
	if code, _, _ := b.do("GET", "/web/mail", nil); code != http.StatusOK {
		t.Fatalf("after both steps: %d", code)
	}
	// The same code again, in another browser: refused.
	c := f.browser(t)
	c.do("POST", "/web/login", url.Values{"login": {alice}, "password": {pw}})
	_, _, body = c.do("GET", "/web/login/totp", nil)
	ctok := csrfRE.FindStringSubmatch(body)[1]
	if code, _, _ := c.do("POST", "/web/login/totp", url.Values{"csrf": {ctok}, "code": {next}}); code != http.StatusUnauthorized {
		t.Fatalf("code used twice: %d", code)
	}
	// Guessing is throttled like passwords.
	var last int
	for range 4 {
		last, _, _ = c.do("POST", "/web/login/totp", url.Values{"csrf": {ctok}, "code": {"123456"}})
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("fifth wrong code: %d", last)
	}

	// Mail clients: app passwords only.
	if _, _, err := f.p.MailLogin(ctx, alice, pw); !errors.Is(err, backend.ErrAuthFailed) {
		t.Fatalf("IMAP login with the account password despite two-step login: %v", err)
	}
	_, app, err := f.acme.CreateAppPassword(ctx, alice, "phone")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.p.MailLogin(ctx, alice, app); err != nil {
		t.Fatalf("app password with two-step login: %v", err)
	}

	// An admin removes it.
	d := f.browser(t)
	d.login(dave)
	if code, _, _ := d.post("/web/admin/users/totp-reset", url.Values{"login": {alice}}); code != http.StatusSeeOther || f.acme.HasTOTP(alice) {
		t.Fatalf("admin reset: %d", code)
	}
	if !audited(t, f.acme, dave, "totp-disable", alice) {
		t.Fatal("reset not audited as the admin")
	}
	if code, h, _ := f.browser(t).do("POST", "/web/login", url.Values{"login": {alice}, "password": {pw}}); code != http.StatusSeeOther || h.Get("Location") != "/web/mail" {
		t.Fatalf("login after the reset: %d %s", code, h.Get("Location"))
	}
	if code, _, _ := a.post("/web/admin/users/totp-reset", url.Values{"login": {bob}}); code != http.StatusForbidden {
		t.Fatalf("a reader reset a second factor: %d", code)
	}
}

// TestTOTPDisable: the user turns the factor off with a current code, not
// with a wrong one.
func TestTOTPDisable(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	b.login(bob)
	_, _, body := b.post("/web/account/totp/begin", url.Values{})
	secret := totpSecretRE.FindStringSubmatch(body)[1]
	now := time.Now()
	if code, _, _ := b.post("/web/account/totp", url.Values{"code": {code(t, secret, now)}}); code != http.StatusSeeOther {
		t.Fatal("set up")
	}
	if code, _, _ := b.post("/web/account/totp/disable", url.Values{"code": {"999999"}}); code != http.StatusBadRequest || !f.acme.HasTOTP(bob) {
		t.Fatalf("disable with a wrong code: %d", code)
	}
	if code, _, _ := b.post("/web/account/totp/disable", url.Values{"code": {code(t, secret, now.Add(30*time.Second))}}); code != http.StatusSeeOther || f.acme.HasTOTP(bob) {
		t.Fatalf("disable: %d", code)
	}
	if !audited(t, f.acme, bob, "totp-disable", bob) {
		t.Fatal("totp-disable not audited")
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// TestTOTPRequired: an admin makes two-step login compulsory; a user
// without a second factor sets it up at the next login before anything
// opens, cannot turn it off, and mail clients need app passwords.
func TestTOTPRequired(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.browser(t)
	a.login(alice)
	if code, _, _ := a.post("/web/admin/security", url.Values{"require_totp": {"1"}}); code != http.StatusForbidden || f.acme.RequiresTOTP() {
		t.Fatalf("a reader required two-step login: %d", code)
	}
	d := f.browser(t)
	d.login(dave)
	if code, _, _ := d.post("/web/admin/security", url.Values{"require_totp": {"1"}}); code != http.StatusSeeOther || !f.acme.RequiresTOTP() {
		t.Fatalf("require two-step login: %d", code)
	}
	if !audited(t, f.acme, dave, "totp-require", "true") {
		t.Fatal("totp-require not audited")
	}
	if _, _, err := f.p.MailLogin(ctx, bob, pw); !errors.Is(err, backend.ErrAuthFailed) {
		t.Fatalf("IMAP with the account password in a tenant that requires two steps: %v", err)
	}
	b := f.browser(t)
	if code, h, _ := b.do("POST", "/web/login", url.Values{"login": {bob}, "password": {pw}}); code != http.StatusSeeOther || h.Get("Location") != "/web/login/enrol" {
		t.Fatalf("login: %d %s", code, h.Get("Location"))
	}
	if code, _, _ := b.do("GET", "/web/mail", nil); code != http.StatusSeeOther {
		t.Fatalf("the enrolling session opened the mail: %d", code)
	}
	if code, _, _ := b.do("GET", "/web/login/totp", nil); code != http.StatusSeeOther {
		t.Fatalf("the enrolling session got the code form: %d", code)
	}
	_, _, body := b.do("GET", "/web/login/enrol", nil)
	tok := csrfRE.FindStringSubmatch(body)[1]
	code1, _, body := b.do("POST", "/web/login/enrol", url.Values{"csrf": {tok}, "code": {"000000"}})
	if code1 != http.StatusBadRequest {
		t.Fatalf("wrong first code: %d", code1)
	}
	secret := totpSecretRE.FindStringSubmatch(body)[1]
	code2, h, _ := b.do("POST", "/web/login/enrol", url.Values{"csrf": {tok}, "code": {code(t, secret, time.Now())}})
	if code2 != http.StatusSeeOther || h.Get("Location") != "/web/mail" || !f.acme.HasTOTP(bob) {
		t.Fatalf("enrolment: %d", code2)
	}
	if code, _, _ := b.do("GET", "/web/mail", nil); code != http.StatusOK {
		t.Fatalf("after enrolment: %d", code)
	}
	if code, _, _ := b.post("/web/account/totp/disable", url.Values{"code": {code(t, secret, time.Now().Add(30*time.Second))}}); code != http.StatusBadRequest || !f.acme.HasTOTP(bob) {
		t.Fatalf("turned off a required second factor: %d", code)
	}
	// Off again: the account password works for mail clients again.
	if code, _, _ := d.post("/web/admin/security", url.Values{}); code != http.StatusSeeOther || f.acme.RequiresTOTP() {
		t.Fatalf("no longer required: %d", code)
	}
	if _, _, err := f.p.MailLogin(ctx, alice, pw); err != nil {
		t.Fatalf("IMAP with the account password after the requirement is off: %v", err)
	}
}
