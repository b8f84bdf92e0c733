package tests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/mailfile"
	"github.com/mailvault/mailvault/mailgen"
)

// openData opens a stopped instance's data directory in-process, to check
// what is on disk independently of the server's answers.
func openData(t *testing.T, dir string) *backend.Provider {
	t.Helper()
	p, err := backend.Open(backend.Options{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// folderContents maps folder name -> raw messages of a mailbox.
func folderContents(t *testing.T, tn *backend.Tenant, login string) map[string][][]byte {
	t.Helper()
	out := map[string][][]byte{}
	for _, mb := range tn.Readable(login) {
		if !mb.Own {
			continue
		}
		folders, err := tn.Folders(login, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range folders {
			snap, err := tn.Snapshot(login, f.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, mid := range snap.MIDs {
				raw, err := tn.RawMessage(context.Background(), mid)
				if err != nil {
					t.Fatal(err)
				}
				out[f.Name] = append(out[f.Name], raw)
			}
		}
	}
	return out
}

// TestAdministrationAndImport runs the operator's path: create a tenant,
// users and mailboxes with the CLI, import an MBOX, a Maildir++ tree and EML
// files, import again (nothing new), verify, and check every byte on disk.
func TestAdministrationAndImport(t *testing.T) {
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	out := in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-role", "reader")
	if !strings.Contains(out, "password: ") {
		t.Fatalf("a generated password is printed once: %s", out)
	}
	in.mustCLI("user", "add", "-tenant", "acme", "bob@acme.example", "-password", "bob-secret", "-alias", "robert@acme.example")
	in.mustCLI("mailbox", "add", "-tenant", "acme", "sales@acme.example", "-kind", "shared")
	in.mustCLI("group", "add", "-tenant", "acme", "team")
	in.mustCLI("group", "member", "-tenant", "acme", "team", "bob@acme.example")
	in.mustCLI("mailbox", "grant", "-tenant", "acme", "sales@acme.example", "team")
	list := in.mustCLI("mailbox", "list", "-tenant", "acme")
	for _, want := range []string{"alice@acme.example", "bob@acme.example", "robert@acme.example", "sales@acme.example", "team"} {
		if !strings.Contains(list, want) {
			t.Fatalf("mailbox list lacks %s:\n%s", want, list)
		}
	}

	// Source files: an mboxrd with a body line starting "From " after an
	// empty line, a Maildir++ tree, loose .eml files.
	src := t.TempDir()
	g := mailgen.New(11, []string{"acme.example"}, 6)
	g.AvgSize = 6 << 10
	want := map[string][][]byte{} // folder -> messages
	var mbox bytes.Buffer
	for i := 0; i < 40; i++ {
		m := g.Next().Raw
		if i == 5 {
			m = []byte("From: x@y.example\r\nSubject: tricky\r\n\r\nHello\r\n\r\nFrom my point of view this stays in the body.\r\n>From quoted\r\n")
		}
		if err := mailfile.WriteMboxrd(&mbox, m, "x@y.example", time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		want["Archive/2019"] = append(want["Archive/2019"], m)
	}
	os.MkdirAll(filepath.Join(src, "Archive"), 0o755)
	os.WriteFile(filepath.Join(src, "Archive", "2019.mbox"), mbox.Bytes(), 0o644)
	md := filepath.Join(src, "maildir")
	for _, sub := range []string{"cur", "new", "tmp", ".Projects/cur", ".Projects/new", ".Projects/tmp"} {
		os.MkdirAll(filepath.Join(md, sub), 0o755)
	}
	for i := 0; i < 30; i++ {
		m := g.Next().Raw
		folder, dir := "maildir", filepath.Join(md, "cur")
		if i%3 == 0 {
			folder, dir = "maildir/Projects", filepath.Join(md, ".Projects", "new")
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.M%dP1.host:2,S", 1700000000+i, i)), m, 0o644)
		want[folder] = append(want[folder], m)
	}
	os.WriteFile(filepath.Join(md, "tmp", "partial"), []byte("half a message"), 0o644) // tmp/ is never imported
	for i := 0; i < 5; i++ {
		m := g.Next().Raw
		os.WriteFile(filepath.Join(src, fmt.Sprintf("loose%d.eml", i)), m, 0o644)
		want["INBOX"] = append(want["INBOX"], m)
	}
	total := 0
	for _, l := range want {
		total += len(l)
	}

	out = in.mustCLI("import", "-tenant", "acme", "-mailbox", "alice@acme.example", src)
	if !strings.Contains(out, fmt.Sprintf("%d archived, 0 already archived (duplicates), 0 failed", total)) {
		t.Fatalf("import summary:\n%s", out)
	}
	out = in.mustCLI("import", "-tenant", "acme", "-mailbox", "alice@acme.example", src)
	if !strings.Contains(out, fmt.Sprintf("0 archived, %d already archived (duplicates), 0 failed", total)) {
		t.Fatalf("second import is not idempotent:\n%s", out)
	}
	// Bad input: a clear error, nothing lost.
	if out, err := in.cli("import", "-tenant", "nosuch", src); err == nil || !strings.Contains(out, "nosuch") {
		t.Fatalf("import into an unknown tenant: %v\n%s", err, out)
	}
	if out, err := in.cli("import", "-tenant", "acme", "-mailbox", "nobody@acme.example", src); err == nil || !strings.Contains(out, "nobody@acme.example") {
		t.Fatalf("import into an unknown mailbox: %v\n%s", err, out)
	}
	var stats backend.Stats
	if err := json.Unmarshal([]byte(in.mustCLI("stats", "-tenant", "acme")), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Messages != total || stats.Users != 2 {
		t.Fatalf("stats %+v, want %d messages, 2 users", stats, total)
	}
	if out := in.mustCLI("verify", "-tenant", "acme"); !strings.Contains(out, "verify: clean") {
		t.Fatalf("verify:\n%s", out)
	}
	in.stop()

	p := openData(t, in.dataDir)
	tn, err := p.Tenant(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	got := folderContents(t, tn, "alice@acme.example")
	for folder, msgs := range want {
		if len(got[folder]) != len(msgs) {
			t.Errorf("folder %q holds %d messages, want %d", folder, len(got[folder]), len(msgs))
			continue
		}
		have := map[[32]byte]bool{}
		for _, raw := range got[folder] {
			have[sha256.Sum256(raw)] = true
		}
		for i, raw := range msgs {
			if !have[sha256.Sum256(raw)] {
				t.Errorf("folder %q: message %d not archived byte-exact", folder, i)
			}
		}
	}
}

// TestKillDuringImport kills the server with SIGKILL in the middle of an
// import, restarts it and checks that every message the server acknowledged
// is present byte for byte and verify is clean; then the import is re-run
// to completion.
func TestKillDuringImport(t *testing.T) {
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	g := mailgen.New(5, []string{"acme.example"}, 10)
	g.AvgSize = 20 << 10
	msgs := make([][]byte, 3000)
	for i := range msgs {
		msgs[i] = g.Next().Raw
	}
	acked, failed := in.importStream("acme", "alice@acme.example", msgs, func(n int) {
		if n == 700 {
			in.kill() // the connection dies with the server
		}
	})
	if failed.Error != "" {
		t.Fatalf("message %d: %s", failed.N, failed.Error)
	}
	if len(acked) < 700 || len(acked) == len(msgs) {
		t.Fatalf("%d acknowledged; the kill should have come in the middle", len(acked))
	}
	t.Logf("killed after %d acknowledged messages", len(acked))

	in.start()
	out := in.mustCLI("verify", "-tenant", "acme")
	if !strings.Contains(out, "verify: clean") {
		t.Fatalf("verify after kill -9:\n%s", out)
	}
	in.stop()
	p := openData(t, in.dataDir)
	tn, err := p.Tenant(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	for n, r := range acked {
		raw, err := tn.RawMessage(context.Background(), r.MID)
		if err != nil {
			t.Fatalf("acknowledged message %d (mid %d) lost: %v", n, r.MID, err)
		}
		if !bytes.Equal(raw, msgs[n-1]) || hex.EncodeToString(sha256Of(raw)) != r.SHA256 {
			t.Fatalf("acknowledged message %d (mid %d) altered", n, r.MID)
		}
	}
	st := tn.Stats()
	if st.Messages < len(acked) {
		t.Fatalf("%d messages present, %d were acknowledged", st.Messages, len(acked))
	}
	p.Close()

	// Re-running the import completes it; what was archived is skipped.
	in.start()
	dir := t.TempDir()
	for i, m := range msgs {
		os.WriteFile(filepath.Join(dir, strconv.Itoa(i)+".eml"), m, 0o644)
	}
	out = in.mustCLI("import", "-tenant", "acme", "-mailbox", "alice@acme.example", dir)
	re := regexp.MustCompile(`(\d+) archived, (\d+) already archived`)
	mm := re.FindStringSubmatch(out)
	if mm == nil {
		t.Fatalf("import output:\n%s", out)
	}
	a, _ := strconv.Atoi(mm[1])
	d, _ := strconv.Atoi(mm[2])
	if a+d != len(msgs) || d < len(acked) {
		t.Fatalf("re-import: %d archived + %d duplicates, want %d in all and at least %d duplicates", a, d, len(msgs), len(acked))
	}
	if out := in.mustCLI("verify", "-tenant", "acme"); !strings.Contains(out, "verify: clean") {
		t.Fatalf("verify after re-import:\n%s", out)
	}
}

func sha256Of(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// TestOperatorErrors: clear errors for bad input, and a data directory is
// never opened by two processes.
func TestOperatorErrors(t *testing.T) {
	in := newInstance(t)
	in.start()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"tenant", "create", "Bad Name"}, "tenant name"},
		{[]string{"user", "add", "alice@acme.example"}, "-tenant is required"},
		{[]string{"user", "list", "-tenant", "nosuch"}, "not found"},
		{[]string{"frobnicate"}, "unknown command"},
	}
	for _, c := range cases {
		out, err := in.cli(c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("mailvault %s: err=%v, output %q lacks %q", strings.Join(c.args, " "), err, out, c.want)
		}
	}
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	if out, err := in.cli("tenant", "create", "other", "-domain", "acme.example"); err == nil || !strings.Contains(out, "belongs to tenant") {
		t.Errorf("a domain was given to two tenants: %v %s", err, out)
	}
	if out, err := in.cli("user", "add", "-tenant", "acme", "eve@elsewhere.example"); err == nil || !strings.Contains(out, "domain add") {
		t.Errorf("user of a foreign domain: %v %s", err, out)
	}
	// A second server on the same data directory must refuse to start.
	second := exec.Command(binary, "serve")
	second.Env = append(in.env, "MAILVAULT_HTTP_LISTEN="+freeAddr(t), "MAILVAULT_IMAP_LISTEN="+freeAddr(t), "MAILVAULT_SMTP_LISTEN="+freeAddr(t), "MAILVAULT_IMAP_LISTEN_TLS="+freeAddr(t))
	if out, err := second.CombinedOutput(); err == nil || !strings.Contains(string(out), "in use") {
		t.Fatal("a second server opened the same data directory")
	}
	// Wrong token.
	c := in.client()
	c.Token = "wrong"
	if err := c.Do("GET", "/api/v1/tenants", nil, nil); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("wrong token accepted: %v", err)
	}
}

// TestDemo starts with -demo: a tenant, a user with a password printed once
// and a few hundred messages.
func TestDemo(t *testing.T) {
	in := newInstance(t)
	in.start("-demo")
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(in.logs(), "Demo tenant ready") {
		if time.Now().After(deadline) {
			t.Fatalf("demo not ready:\n%s", in.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	m := regexp.MustCompile(`log in as demo@demo.example with password (\S+)`).FindStringSubmatch(in.logs())
	if m == nil {
		t.Fatalf("no password printed:\n%s", in.logs())
	}
	var stats backend.Stats
	if err := json.Unmarshal([]byte(in.mustCLI("stats", "-tenant", "demo")), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Messages < 200 {
		t.Fatalf("demo has %d messages", stats.Messages)
	}
	in.stop()
	p := openData(t, in.dataDir)
	if _, _, err := p.Login(context.Background(), "demo@demo.example", m[1]); err != nil {
		t.Fatalf("the printed demo password does not log in: %v", err)
	}
}

// TestAdministrationCommands runs the remaining administration commands
// and checks each effect through the server's own answers.
func TestAdministrationCommands(t *testing.T) {
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "bob@acme.example", "-password", "old-secret")
	in.mustCLI("mailbox", "add", "-tenant", "acme", "sales@acme.example")
	in.mustCLI("mailbox", "grant", "-tenant", "acme", "sales@acme.example", "bob@acme.example")
	// The READERS column of the sales line.
	readers := func() string {
		for _, l := range strings.Split(in.mustCLI("mailbox", "list", "-tenant", "acme"), "\n") {
			if f := strings.Fields(l); len(f) == 6 && f[0] == "sales@acme.example" {
				return f[4]
			}
		}
		return ""
	}
	if r := readers(); r != "bob@acme.example" {
		t.Fatalf("grant not shown: readers %q", r)
	}
	in.mustCLI("mailbox", "revoke", "-tenant", "acme", "sales@acme.example", "bob@acme.example")
	if r := readers(); r != "-" {
		t.Fatalf("revoke not applied: readers %q", r)
	}
	in.mustCLI("mailbox", "alias", "-tenant", "acme", "sales@acme.example", "vertrieb@acme.example")
	if !strings.Contains(in.mustCLI("mailbox", "list", "-tenant", "acme"), "vertrieb@acme.example") {
		t.Fatal("alias not added")
	}
	in.mustCLI("user", "passwd", "-tenant", "acme", "bob@acme.example", "-password", "new-secret")
	in.mustCLI("journal", "allow", "-tenant", "acme", "192.0.2.0/24")
	in.mustCLI("journal", "credential", "-tenant", "acme", "relay@acme.example", "-password", "relay-secret")
	show := in.mustCLI("journal", "show", "-tenant", "acme")
	if !strings.Contains(show, "192.0.2.0/24") || !strings.Contains(show, "relay@acme.example") || strings.Contains(show, "relay-secret") {
		t.Fatalf("journal access:\n%s", show)
	}
	in.mustCLI("journal", "deny", "-tenant", "acme", "192.0.2.0/24")
	in.mustCLI("journal", "remove-credential", "-tenant", "acme", "relay@acme.example")
	if show := in.mustCLI("journal", "show", "-tenant", "acme"); strings.Contains(show, "192.0.2.0/24") || strings.Contains(show, "relay@") {
		t.Fatalf("journal access after removal:\n%s", show)
	}
	in.mustCLI("user", "delete", "-tenant", "acme", "bob@acme.example")
	if strings.Contains(in.mustCLI("user", "list", "-tenant", "acme"), "bob@") {
		t.Fatal("deleted user still listed")
	}
	// The archive mailbox of a deleted user stays.
	if !strings.Contains(in.mustCLI("mailbox", "list", "-tenant", "acme"), "bob@acme.example") {
		t.Fatal("the deleted user's archive mailbox is gone")
	}
	audit := in.mustCLI("audit", "-tenant", "acme")
	for _, want := range []string{"user-password", "user-delete", "revoke"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %s:\n%s", want, audit)
		}
	}
	in.stop()
	p := openData(t, in.dataDir)
	if _, _, err := p.Login(context.Background(), "bob@acme.example", "new-secret"); err == nil {
		t.Fatal("a deleted user can still log in")
	}
}
