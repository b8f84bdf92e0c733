package jmap

import (
	"fmt"
	"net/http"
	"testing"
)

// TestLoginThrottle: failed logins from one address throttle the failing
// accounts from that address, never another account's right password.
// Unknown users and domains cost one password check and count as failures,
// like a wrong password.
func TestLoginThrottle(t *testing.T) {
	f := newFixture(t, 0)
	status := func(login, pass string) (int, string) {
		r, _ := (&client{t: t, f: f, login: login, pass: pass}).do("GET", sessionPath, nil)
		return r.StatusCode, r.Header.Get("Retry-After")
	}
	for i := range 3 {
		if st, _ := status(alice, "guess"); st != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i+1, st)
		}
	}
	if st, after := status(alice, pw); st != http.StatusTooManyRequests || after == "" {
		t.Errorf("alice's right password after 3 failures: %d, Retry-After %q; want 429 with Retry-After", st, after)
	}
	// A flood of names from the same address (an office behind NAT).
	for i := range 30 {
		before := f.p.LoginStats().Checks
		st, _ := status(fmt.Sprintf("nobody%d@acme.example", i), "guess")
		if checks := f.p.LoginStats().Checks - before; st != http.StatusUnauthorized || checks != 1 {
			t.Fatalf("unknown user %d: %d after %d password checks, want 401 after 1", i, st, checks)
		}
	}
	for _, login := range []string{bob, carol, eve} {
		if st, _ := status(login, pw); st != http.StatusOK {
			t.Errorf("%s's right password from the same address: %d", login, st)
		}
	}
	for i := range 4 {
		before := f.p.LoginStats().Checks
		st, _ := status("someone@nowhere.example", "guess")
		checks := f.p.LoginStats().Checks - before
		want, wantChecks := http.StatusUnauthorized, int64(1)
		if i == 3 {
			want, wantChecks = http.StatusTooManyRequests, 0
		}
		if st != want || checks != wantChecks {
			t.Errorf("unknown domain, attempt %d: %d after %d checks, want %d after %d", i+1, st, checks, want, wantChecks)
		}
	}
}
