package imapd

import (
	"net"
	"testing"
	"time"
)

func TestLimiterKeys(t *testing.T) {
	a := func(s string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(s), Port: 1} }
	if addressKey(a("2001:db8:1:2::1")) != addressKey(a("2001:db8:1:2:ffff::9")) {
		t.Error("one IPv6 /64 gives two keys")
	}
	if addressKey(a("2001:db8:1:2::1")) == addressKey(a("2001:db8:1:3::1")) {
		t.Error("two IPv6 /64 give one key")
	}
	if addressKey(a("192.0.2.1")) == addressKey(a("192.0.2.2")) {
		t.Error("two IPv4 addresses give one key")
	}
	if accountKey("Bob@Acme.Example") != accountKey("bob@acme.example") {
		t.Error("account keys are case-sensitive")
	}
}

func TestLimiterDelays(t *testing.T) {
	l := newLimiter()
	l.free, l.base, l.max = 2, time.Second, 4*time.Second
	var got []time.Duration
	for range 6 {
		got = append(got, l.delay("k", "other"))
		l.fail("k")
	}
	want := []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("after %d failures: delay %v, want %v", i, got[i], want[i])
		}
	}
	l.succeed("k")
	if d := l.delay("k"); d != 0 {
		t.Errorf("after success: %v", d)
	}
	// Failures are forgotten after a while.
	l.forget = 0
	l.fail("k")
	l.fail("k")
	l.fail("k")
	time.Sleep(time.Millisecond)
	if d := l.delay("k"); d != 0 {
		t.Errorf("old failures still count: %v", d)
	}
}
