package imapd

import (
	"fmt"
	"strings"
	"testing"
)

// TestRev2 checks what differs for a client that enables IMAP4rev2: ESEARCH
// answers, no RECENT, the LIST line in SELECT; and NAMESPACE and STATUS.
func TestRev2(t *testing.T) {
	f := newFixture(t, 6, false)
	c := dialRaw(t, f.addr)
	c.login("alice@acme.example")
	if u := c.OK("NAMESPACE"); len(u) != 1 || u[0] != `* NAMESPACE (("" "/")) NIL (("Archive/" "/"))` {
		t.Errorf("NAMESPACE: %q", u)
	}
	size := 0
	for _, m := range f.inbox {
		size += len(m.raw)
	}
	u := c.OK("STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE RECENT DELETED)")
	if want := fmt.Sprintf("MESSAGES %d UIDNEXT %d UNSEEN 0 DELETED 0 SIZE %d RECENT 0", len(f.inbox), f.inbox[len(f.inbox)-1].uid+1, size); len(u) != 1 || !strings.Contains(u[0], want) {
		t.Errorf("STATUS: %q, want %s", u, want)
	}
	if u := c.OK(`LIST (SPECIAL-USE) "" "*"`); len(u) != 1 || !strings.Contains(u[0], `\Sent`) {
		t.Errorf("LIST (SPECIAL-USE): %q", u)
	}
	u = c.OK(`LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN))`)
	if !strings.Contains(strings.Join(u, "\n"), fmt.Sprintf("* STATUS INBOX (MESSAGES %d UNSEEN 0)", len(f.inbox))) {
		t.Errorf("LIST RETURN (STATUS): %q", u)
	}
	if u := c.OK(`LIST "" "%"`); len(u) != 3 || !strings.Contains(u[2], `(\Noselect \HasChildren) "/" "Archive"`) {
		t.Errorf(`LIST "" "%%": %q`, u)
	}
	if u := c.OK(`LIST "Archive/" "%"`); len(u) != 1 || !strings.Contains(u[0], `"Archive/sales@acme.example"`) {
		t.Errorf(`LIST "Archive/" "%%": %q`, u)
	}
	c.OK("ENABLE IMAP4rev2")
	sel := strings.Join(c.OK("SELECT inbox"), "\n")
	if strings.Contains(sel, "RECENT") || !strings.Contains(sel, `* LIST () "/" INBOX`) {
		t.Errorf("rev2 SELECT:\n%s", sel)
	}
	if u := c.OK(`UID SEARCH ALL`); len(u) != 1 || !strings.HasPrefix(u[0], "* ESEARCH") {
		t.Errorf("rev2 SEARCH: %q", u)
	}
	if u := c.OK(`SEARCH SUBJECT "no such words at all"`); len(u) != 1 || strings.Contains(u[0], "ALL") {
		t.Errorf("rev2 empty SEARCH: %q", u)
	}
	c.OK("UNSELECT")
	c.OK("LOGOUT")
}
