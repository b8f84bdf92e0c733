package tests

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCLIOutput runs listing and help commands of the binary and checks
// what an operator reads.
func TestCLIOutput(t *testing.T) {
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "bob@acme.example", "-password", "bob-secret")
	in.mustCLI("mailbox", "add", "-tenant", "acme", "sales@acme.example")
	in.mustCLI("group", "add", "-tenant", "acme", "legal", "-role", "compliance")
	in.mustCLI("group", "member", "-tenant", "acme", "legal", "bob@acme.example")

	if out := in.mustCLI("mailbox", "list", "-tenant", "acme"); strings.Contains(out, "<nil>") || strings.Contains(out, "[]") {
		t.Errorf("mailbox list shows empty values as Go values:\n%s", out)
	}
	out := in.mustCLI("group", "list", "-tenant", "acme")
	if strings.HasPrefix(strings.TrimSpace(out), "[") || !strings.Contains(out, "legal") || !strings.Contains(out, "compliance") {
		t.Errorf("group list without -json:\n%s", out)
	}
	if out := in.mustCLI("group", "list", "-tenant", "acme", "-json"); !strings.HasPrefix(strings.TrimSpace(out), "[") {
		t.Errorf("group list -json:\n%s", out)
	}
	out = in.mustCLI("user", "list", "-tenant", "acme")
	var bob string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "bob@acme.example") {
			bob = l
		}
	}
	if !strings.Contains(bob, "legal") || !strings.Contains(bob, "compliance") {
		t.Errorf("user list hides the roles bob has from group legal:\n%s", out)
	}

	// Help exits 0 and says how to go on.
	for _, args := range [][]string{{"user", "-help"}, {"group", "-help"}, {"mailbox", "-h"}, {"journal", "-help"}, {"user", "add", "-help"}} {
		out, err := in.cli(args...)
		if err != nil || !strings.Contains(out, "-help") && !strings.Contains(out, "Usage") {
			t.Errorf("mailvault %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	out, err := in.cli("serve", "-help")
	if err != nil || !strings.Contains(out, "-config FILE") || strings.Contains(out, "-config mailvault") {
		t.Errorf("serve -help: %v\n%s", err, out)
	}

	// Passwords of one character are refused.
	if out, err := in.cli("user", "add", "-tenant", "acme", "carol@acme.example", "-password", "x"); err == nil || !strings.Contains(out, "at least") {
		t.Errorf("one-character password accepted: %v\n%s", err, out)
	}
	if out, err := in.cli("user", "passwd", "-tenant", "acme", "bob@acme.example", "-password", "x"); err == nil || !strings.Contains(out, "at least") {
		t.Errorf("one-character password change accepted: %v\n%s", err, out)
	}
}

// TestMisspeltEnvironment: a misspelt MAILVAULT_ variable is refused, as a
// misspelt TOML key is.
func TestMisspeltEnvironment(t *testing.T) {
	in := newInstance(t)
	// Started by mistake, the server would run: the context ends it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve")
	cmd.Env = append(in.env, "MAILVAULT_IMAP_LISTN=127.0.0.1:1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "MAILVAULT_IMAP_LISTN") {
		t.Fatalf("serve with a misspelt variable: %v\n%s", err, out)
	}
	// The CLI's token variable is no configuration key, and allowed.
	in.env = append(in.env, "MAILVAULT_TOKEN=")
	in.start()
}
