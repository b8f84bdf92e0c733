package imapd

import (
	"net"
	"strings"
	"testing"
	"time"
)

// dialFrom is dialRaw from a given loopback address, standing for another
// client machine.
func dialFrom(t *testing.T, addr, from string) *rawClient {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return rawOn(t, conn, true)
}

// promptly runs fn and fails the test when it took as long as a penalty
// (the smallest is 5 s): the login was made to wait.
func promptly(t *testing.T, what string, fn func()) {
	t.Helper()
	start := time.Now()
	fn()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("%s took %v: it was held back", what, d)
	}
}

// TestLoginThrottle: wrong passwords for one account from one address
// throttle that account from that address only; another account's right
// password from the same address, and the same account from another
// address, log in at once.
func TestLoginThrottle(t *testing.T) {
	f := newFixture(t, 1, false)
	guess := dialFrom(t, f.addr, "127.0.0.1")
	for i := range 3 {
		if st := guess.NO(`LOGIN "alice@acme.example" "wrong"`); !strings.Contains(st, "[AUTHENTICATIONFAILED]") {
			t.Fatalf("wrong password %d: %s", i+1, st)
		}
	}
	// Throttled attempts are refused without a check, also with the right
	// password, and say when to come back.
	promptly(t, "right password while throttled", func() {
		if st := guess.NO(`LOGIN "alice@acme.example" ` + quote(password)); !strings.Contains(st, "[UNAVAILABLE]") || !strings.Contains(st, "try again in") {
			t.Errorf("right password while throttled: %s", st)
		}
	})
	promptly(t, "throttled attempt", func() {
		if st := guess.NO(`LOGIN "alice@acme.example" "wrong"`); !strings.Contains(st, "[UNAVAILABLE]") {
			t.Errorf("throttled attempt: %s", st)
		}
	})
	promptly(t, "bob's login from the guessing address", func() {
		dialFrom(t, f.addr, "127.0.0.1").login("bob@acme.example")
	})
	promptly(t, "alice's login from another address", func() {
		dialFrom(t, f.addr, "127.0.0.2").login("alice@acme.example")
	})
}

// TestLoginSamePath: an unknown user, an unknown domain and a malformed
// name cost one password check each, as a wrong password does, and are
// throttled alike: neither timing nor answers tell them apart.
func TestLoginSamePath(t *testing.T) {
	f := newFixture(t, 1, false)
	c := dialRaw(t, f.addr)
	for _, name := range []string{"alice@acme.example", "nobody@acme.example", "alice@nowhere.example", "not an address"} {
		for i := range 4 {
			before := f.p.LoginStats().Checks
			st := c.NO("LOGIN " + quote(name) + " " + quote("wrong"))
			checks := f.p.LoginStats().Checks - before
			switch {
			case i < 3 && (!strings.Contains(st, "[AUTHENTICATIONFAILED]") || checks != 1):
				t.Errorf("%s, attempt %d: %s after %d password checks, want AUTHENTICATIONFAILED after 1", name, i+1, st, checks)
			case i == 3 && (!strings.Contains(st, "[UNAVAILABLE]") || checks != 0):
				t.Errorf("%s, attempt %d: %s after %d password checks, want UNAVAILABLE without a check", name, i+1, st, checks)
			}
		}
	}
}
