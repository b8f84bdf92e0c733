package backend

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
)

// TestLoginGateBounded: a flood of failures under random names keeps the
// gate's counters at their bound, dropping the oldest first, while the
// newest failures still throttle.
func TestLoginGateBounded(t *testing.T) {
	g := newLoginGate(LoginLimits{Checks: 1})
	ctx := WithRemote(context.Background(), netip.MustParseAddr("2001:db8::1"))
	fail := func(account string) error {
		a, err := g.begin(ctx, account)
		if err != nil {
			return err
		}
		a.end(ErrAuthFailed)
		return nil
	}
	for i := range gateEntries + 5000 {
		if err := fail(fmt.Sprintf("r%d@x.example", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []int{len(g.pair.m), len(g.account.m), g.pair.order.Len()} {
		if m != gateEntries {
			t.Errorf("%d entries, want the bound %d", m, gateEntries)
		}
	}
	if g.pair.get("r0@x.example\x002001:db8::/64") != nil {
		t.Error("the oldest entry was kept")
	}
	// Another address in the same /64 is the same guesser.
	ctx = WithRemote(context.Background(), netip.MustParseAddr("2001:db8::2"))
	for range pairFreeFailures {
		if err := fail("a@x.example"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.begin(context.Background(), "a@x.example"); err != nil {
		t.Errorf("throttled from another address: %v", err)
	}
	if _, err := g.begin(WithRemote(context.Background(), netip.MustParseAddr("2001:db8::3")), "a@x.example"); !errors.Is(err, ErrLoginThrottled) {
		t.Errorf("not throttled from the same /64: %v", err)
	}
}
