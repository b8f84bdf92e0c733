package smtpd

import (
	"crypto/tls"
	"errors"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TestAuthThrottle: SMTP AUTH goes through the login gate. Wrong passwords
// for one journal login throttle it (454, also for the right password)
// while another tenant's login from the same address still works; unknown
// logins and domains cost one password check each and are throttled
// alike.
func TestAuthThrottle(t *testing.T) {
	p := openProvider(t, t.TempDir())
	t.Cleanup(func() { p.Close() })
	createTenant(t, p, tenantSpec{name: "acme", domains: []string{"acme.example"}, login: "mta"})
	createTenant(t, p, tenantSpec{name: "globex", domains: []string{"globex.example"}, login: "mta"})
	_, addr := startServer(t, p)
	auth := func(login, password string) int {
		t.Helper()
		c, err := smtp.DialStartTLS(addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.Auth(sasl.NewPlainClient("", login, password))
		var se *smtp.SMTPError
		switch {
		case err == nil:
			return 235
		case errors.As(err, &se):
			return se.Code
		}
		t.Fatal(err)
		return 0
	}
	// The throttled attempt comes right after the failures, while the
	// shortest throttle lasts; for the real login it has the right password.
	for _, login := range []string{"mta@acme.example", "nobody@acme.example", "mta@nowhere.example"} {
		for i := range 4 {
			pass, want, wantChecks := "wrong-password", 535, int64(1)
			if i == 3 {
				want, wantChecks = 454, 0
				if login == "mta@acme.example" {
					pass = testPassword
				}
			}
			before := p.LoginStats().Checks
			code := auth(login, pass)
			if checks := p.LoginStats().Checks - before; code != want || checks != wantChecks {
				t.Errorf("%s, attempt %d: %d after %d password checks, want %d after %d", login, i+1, code, checks, want, wantChecks)
			}
		}
	}
	if code := auth("mta@globex.example", testPassword); code != 235 {
		t.Errorf("another login from the same address: %d, want 235", code)
	}
}
