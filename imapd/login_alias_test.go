package imapd

import (
	"context"
	"testing"
)

// TestLoginWithAddress: a user logs in with any address of their own
// archive mailbox (a directory user's mail address where the login is the
// UPN, an alias), not only with the login itself; an address of a shared
// mailbox logs nobody in.
func TestLoginWithAddress(t *testing.T) {
	f := newFixture(t, 3, false)
	ctx := context.Background()
	if err := f.acme.AddAlias(ctx, "alice@acme.example", "alice.smith@acme.example"); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, f.addr)
	c.login("alice.smith@acme.example")
	if u := c.OK("STATUS INBOX (MESSAGES)"); len(u) != 1 || u[0] != `* STATUS INBOX (MESSAGES 3)` {
		t.Fatalf("alice's INBOX through her alias: %q", u)
	}
	c2 := dialRaw(t, f.addr)
	c2.NO("LOGIN " + quote("sales@acme.example") + " " + quote(password))
}
