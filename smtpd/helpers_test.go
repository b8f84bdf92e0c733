package smtpd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/conf"
)

// moduleRoot is the repository root (where go.mod is).
func moduleRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// corpusDir is the shared real-world corpus beside the repository; tests
// using it skip when it is absent.
func corpusDir(t testing.TB) string {
	dir := filepath.Join(moduleRoot(t), "..", "shared", "corpus", "messages")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("corpus not present:", err)
	}
	return dir
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() && os.Getenv("SMTPD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// openProvider opens a real archive in dir.
func openProvider(t testing.TB, dir string) *backend.Provider {
	t.Helper()
	p, err := backend.Open(backend.Options{DataDir: dir, Logger: testLogger(t), CommitDelay: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tenantSpec is a tenant with the people tests deliver to.
type tenantSpec struct {
	name     string
	domains  []string
	users    []string // local parts; each gets a user and own mailbox
	shared   []string // local parts of shared mailboxes (lists)
	networks []string // journal allow-list
	login    string   // journal login (local part), password testPassword
	auto     bool     // create mailboxes for unknown addresses
	quota    int64    // bytes; 0 is unlimited
}

const (
	testPassword = "journal-secret-42"
	officer      = "officer" // compliance user reading the journal mailbox
)

func createTenant(t testing.TB, p *backend.Provider, spec tenantSpec) *backend.Tenant {
	t.Helper()
	ctx := context.Background()
	if _, err := p.CreateTenant(ctx, spec.name, spec.domains, backend.Quotas{Bytes: spec.quota}); err != nil {
		t.Fatal(err)
	}
	if spec.auto {
		auto := true
		if err := p.SetTenantOptions(ctx, spec.name, nil, &auto); err != nil {
			t.Fatal(err)
		}
	}
	tn, err := p.Tenant(ctx, spec.name)
	if err != nil {
		t.Fatal(err)
	}
	d := spec.domains[0]
	for _, u := range spec.users {
		if _, err := tn.CreateUser(ctx, backend.UserSpec{Login: u + "@" + d, Password: testPassword, Mailbox: true}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range spec.shared {
		if _, err := tn.CreateMailbox(ctx, backend.MailboxSpec{Kind: backend.KindShared, Address: s + "@" + d}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tn.CreateUser(ctx, backend.UserSpec{Login: officer + "@" + d, Password: testPassword, Roles: []backend.Role{backend.RoleCompliance}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range spec.networks {
		if err := tn.AllowJournalNetwork(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if spec.login != "" {
		if err := tn.SetJournalCredential(ctx, spec.login+"@"+d, testPassword); err != nil {
			t.Fatal(err)
		}
	}
	return tn
}

// startServer runs the endpoint on a loopback port with the default
// configuration, changed by the optional tweaks.
func startServer(t testing.TB, p *backend.Provider, tweaks ...func(*conf.SMTP)) (*Server, string) {
	t.Helper()
	cfg := conf.Default().SMTP
	cfg.Hostname = "archive.test"
	for _, tw := range tweaks {
		tw(&cfg)
	}
	s, err := New(p, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error("serve:", err)
		}
	})
	return s, ln.Addr().String()
}

// folderContents returns sha256 -> count of the messages in a folder of an
// archive mailbox, read through the backend as user login may.
func folderContents(t testing.TB, tn *backend.Tenant, login, mailbox, folder string) map[[32]byte]int {
	t.Helper()
	ctx := context.Background()
	out := map[[32]byte]int{}
	for _, mb := range tn.Readable(login) {
		if mb.Address != mailbox {
			continue
		}
		folders, err := tn.Folders(login, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range folders {
			if f.Name != folder {
				continue
			}
			snap, err := tn.Snapshot(login, f.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, mid := range snap.MIDs {
				raw, err := tn.RawMessage(ctx, mid)
				if err != nil {
					t.Fatalf("message %d in %s/%s: %v", mid, mailbox, folder, err)
				}
				out[sha256.Sum256(raw)]++
			}
		}
		return out
	}
	t.Fatalf("%s cannot read archive mailbox %s", login, mailbox)
	return nil
}

// want says that a message must be in a folder exactly once.
type want struct {
	login, mailbox, folder string
	raw                    []byte
}

func checkPlaced(t testing.TB, tn *backend.Tenant, wants []want) {
	t.Helper()
	cache := map[[3]string]map[[32]byte]int{}
	for _, w := range wants {
		k := [3]string{w.login, w.mailbox, w.folder}
		if cache[k] == nil {
			cache[k] = folderContents(t, tn, w.login, w.mailbox, w.folder)
		}
		if n := cache[k][sha256.Sum256(w.raw)]; n != 1 {
			t.Errorf("%s/%s holds the message %d times, want once: %.80q", w.mailbox, w.folder, n, w.raw)
		}
	}
}

// smtpForm is a message as SMTP carries it: CRLF line ends, ending in CRLF.
// Every sender (and MTA) normalises stored files to it before DATA.
func smtpForm(raw []byte) []byte {
	out := make([]byte, 0, len(raw)+len(raw)/32+2)
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '\r':
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
			out = append(out, '\r', '\n')
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, '\r', '\n')
	}
	return out
}

// needTool skips when an external sender is not installed.
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (apt-get install -y %s)", name, name)
	}
	return p
}
