package tests

import (
	"fmt"
	"os"
	"os/user"
	"strings"
	"testing"
)

// TestAuditActorsAndPaging makes administrative changes with the CLI and
// the API and reads them back with `mailvault audit`: every change is there
// with who made it, and the listing goes past one page.
func TestAuditActorsAndPaging(t *testing.T) {
	in := newInstance(t)
	in.start()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	cli := "cli:" + u.Username + "@" + host

	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("domain", "add", "-tenant", "acme", "acme-group.example")
	in.mustCLI("tenant", "set", "acme", "-auto-mailboxes=true")
	in.mustCLI("user", "add", "-tenant", "acme", "bob@acme.example", "-password", "bob-secret-1")
	in.mustCLI("group", "add", "-tenant", "acme", "team")
	in.mustCLI("group", "member", "-tenant", "acme", "team", "bob@acme.example")
	in.mustCLI("group", "member", "-tenant", "acme", "team", "bob@acme.example", "-remove")
	in.mustCLI("mailbox", "add", "-tenant", "acme", "sales@acme.example")
	in.mustCLI("mailbox", "alias", "-tenant", "acme", "sales@acme.example", "vertrieb@acme.example")
	in.mustCLI("mailbox", "grant", "-tenant", "acme", "sales@acme.example", "team")
	in.mustCLI("mailbox", "revoke", "-tenant", "acme", "sales@acme.example", "team")
	in.mustCLI("journal", "allow", "-tenant", "acme", "192.0.2.0/24")
	in.mustCLI("journal", "deny", "-tenant", "acme", "192.0.2.0/24")
	in.mustCLI("journal", "credential", "-tenant", "acme", "relay@acme.example", "-password", "relay-secret-1")
	in.mustCLI("journal", "remove-credential", "-tenant", "acme", "relay@acme.example")
	in.mustCLI("user", "passwd", "-tenant", "acme", "bob@acme.example", "-password", "bob-secret-2")
	in.mustCLI("user", "delete", "-tenant", "acme", "bob@acme.example")

	// More changes than one page holds, through the API without an
	// operator: the provider.
	c := in.client()
	const apiChanges = 1100
	for i := 0; i < apiChanges; i++ {
		if err := c.Do("POST", "/api/v1/tenants/acme/journal/networks", map[string]string{"network": fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)}, nil); err != nil {
			t.Fatal(err)
		}
	}

	out := in.mustCLI("audit", "-tenant", "acme")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	actors := map[string]string{} // action -> actor
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 4 {
			t.Fatalf("audit line %q", l)
		}
		if f[2] == "<nil>" || f[2] == "" {
			t.Errorf("audit line without actor: %q", l)
		}
		if _, ok := actors[f[3]]; !ok {
			actors[f[3]] = f[2]
		}
	}
	for _, action := range []string{"tenant-create", "domain-add", "tenant-set", "user-create", "group-create",
		"group-member-add", "group-member-remove", "mailbox-create", "mailbox-alias", "grant", "revoke",
		"journal-network-allow", "journal-network-disallow", "journal-credential-set", "journal-credential-delete",
		"user-password", "user-delete"} {
		if got, ok := actors[action]; !ok {
			t.Errorf("%s not audited", action)
		} else if got != cli {
			t.Errorf("%s audited as done by %q, want %q", action, got, cli)
		}
	}
	n := 0
	for _, l := range lines {
		if strings.Contains(l, " provider journal-network-allow 10.") {
			n++
		}
	}
	if n != apiChanges {
		t.Errorf("audit lists %d of the %d API changes as the provider's (%d lines in all)", n, apiChanges, len(lines))
	}
	// Paging from the middle.
	if out := in.mustCLI("audit", "-tenant", "acme", "-after", "10"); !strings.HasPrefix(out, "11 ") || strings.Count(out, "\n") != len(lines)-10 {
		t.Errorf("audit -after 10 starts %q, %d lines, want %d", out[:min(len(out), 40)], strings.Count(out, "\n"), len(lines)-10)
	}
}
