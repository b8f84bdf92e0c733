package imapd

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/conf"
	"github.com/mailvault/mailvault/internal/imapwire"
	"github.com/mailvault/mailvault/mailgen"
)

const password = "correct horse battery staple"

// archived is one message as the test put it into the archive.
type archived struct {
	uid uint32
	raw []byte
	gen *mailgen.Message // nil for corpus messages
}

// fixture is a real archive with two tenants and an IMAP server on
// loopback:
//
//	acme:   alice (reader, own mailbox, read grant on sales@),
//	        bob (reader, own mailbox), carol (compliance, no own mailbox),
//	        sales@ (shared)
//	globex: zed (reader, own mailbox)
type fixture struct {
	p      *backend.Provider
	srv    *Server
	addr   string
	acme   *backend.Tenant
	globex *backend.Tenant
	inbox  []archived // alice's INBOX, by UID
	corpus []archived // alice's "Corpus" folder, by UID
	sales  []archived // sales@ INBOX
	bobbox []archived // bob's INBOX
	zedbox []archived // zed's INBOX
	dir    string
}

// newFixture builds the archive; n generated messages go to alice's INBOX.
func newFixture(t testing.TB, n int, withCorpus bool) *fixture {
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() && os.Getenv("IMAPD_LOG") != "" {
		log = slog.Default()
	}
	p, err := backend.Open(backend.Options{DataDir: filepath.Join(dir, "data"), Logger: log, CommitDelay: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{p: p, dir: dir}
	t.Cleanup(func() {
		if f.srv != nil {
			f.srv.Close()
		}
		p.Close()
	})
	for _, tn := range []struct{ name, domain string }{{"acme", "acme.example"}, {"globex", "globex.example"}} {
		if _, err := p.CreateTenant(ctx, tn.name, []string{tn.domain}, backend.Quotas{}); err != nil {
			t.Fatal(err)
		}
	}
	if f.acme, err = p.Tenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if f.globex, err = p.Tenant(ctx, "globex"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		t       *backend.Tenant
		login   string
		role    backend.Role
		mailbox bool
	}{
		{f.acme, "alice@acme.example", backend.RoleReader, true},
		{f.acme, "bob@acme.example", backend.RoleReader, true},
		{f.acme, "carol@acme.example", backend.RoleCompliance, false},
		{f.globex, "zed@globex.example", backend.RoleReader, true},
	} {
		if _, err := u.t.CreateUser(ctx, backend.UserSpec{Login: u.login, Password: password, Roles: []backend.Role{u.role}, Mailbox: u.mailbox}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.acme.CreateMailbox(ctx, backend.MailboxSpec{Kind: backend.KindShared, Address: "sales@acme.example"}); err != nil {
		t.Fatal(err)
	}
	if err := f.acme.Grant(ctx, "sales@acme.example", "alice@acme.example"); err != nil {
		t.Fatal(err)
	}

	g := mailgen.New(7, []string{"acme.example", "partner.example"}, 6)
	g.AvgSize = 6 << 10
	gen := make([]mailgen.Message, n)
	for i := range gen {
		gen[i] = g.Next()
	}
	f.inbox = f.ingest(t, f.acme, "alice@acme.example", "INBOX", gen)
	f.sales = f.ingest(t, f.acme, "sales@acme.example", "INBOX", gen[:min(5, n)])
	f.bobbox = f.ingest(t, f.acme, "bob@acme.example", "INBOX", gen[:min(7, n)])
	f.zedbox = f.ingest(t, f.globex, "zed@globex.example", "INBOX", gen[:min(3, n)])
	if withCorpus {
		files := corpusFiles(t)
		var raws []mailgen.Message
		seen := map[string]bool{}
		for _, fn := range files {
			b, err := os.ReadFile(fn)
			if err != nil {
				t.Fatal(err)
			}
			if seen[sha(b)] {
				continue // the archive keeps identical bytes once per folder
			}
			seen[sha(b)] = true
			raws = append(raws, mailgen.Message{Raw: b, Date: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)})
		}
		f.corpus = f.ingest(t, f.acme, "alice@acme.example", "Corpus", raws)
		for i := range f.corpus {
			f.corpus[i].gen = nil
		}
	}
	for _, tn := range []*backend.Tenant{f.acme, f.globex} {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute) // the corpus under -race on a loaded machine
		if err := tn.WaitIndexed(wctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	f.start(t)
	return f
}

func (f *fixture) start(t testing.TB) {
	srv, err := New(f.p, conf.IMAP{}, filepath.Join(f.dir, "data"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	f.srv, f.addr = srv, ln.Addr().String()
}

// ingest archives msgs into a mailbox folder, several at a time as the
// commit batching expects, and returns them ordered by UID.
func (f *fixture) ingest(t testing.TB, tn *backend.Tenant, mailbox, folder string, msgs []mailgen.Message) []archived {
	out := make([]archived, len(msgs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, len(msgs))
	for i := range msgs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m := &msgs[i]
			res, err := tn.Ingest(context.Background(), m.Raw, backend.Source{Mailbox: mailbox, Folder: folder, Received: m.Date})
			if err != nil {
				errs <- err
				return
			}
			if len(res.Placed) != 1 {
				errs <- fmt.Errorf("message %d placed %d times", i, len(res.Placed))
				return
			}
			out[i] = archived{uid: res.Placed[0].UID, raw: m.Raw, gen: m}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].uid < out[j].uid })
	return out
}

// corpusDir returns the shared real-world messages, if present: the
// module root's sibling shared/corpus/messages.
func corpusDir() []string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "shared", "corpus", "messages")
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	sort.Strings(files)
	return files
}

// corpusFiles returns the corpus, skipping the test when it is absent.
func corpusFiles(t testing.TB) []string {
	files := corpusDir()
	if len(files) == 0 {
		t.Skip("corpus of real messages not present")
	}
	return files
}

// needTool finds a client program, skipping only when it is not installed
// and cannot be (the CI script installs it).
func needTool(t testing.TB, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; .ci/run must install it", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

func sha(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// rawClient is a minimal IMAP client on a plain socket, independent of
// go-imap, that returns the server's responses as they came.
type rawClient struct {
	*imapwire.Conn
	t testing.TB
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	return &rawClient{imapwire.Dial(t, addr), t}
}

// rawOn is dialRaw on an established connection.
func rawOn(t testing.TB, conn net.Conn, greeting bool) *rawClient {
	t.Helper()
	return &rawClient{imapwire.On(t, conn, greeting), t}
}

func (c *rawClient) login(user string) {
	c.t.Helper()
	c.OK("LOGIN " + quote(user) + " " + quote(password))
}

func quote(s string) string { return strconv.Quote(s) }

// searchResult parses "* SEARCH n n n" or "* ESEARCH ... ALL set".
func searchResult(t testing.TB, lines []string) []uint32 {
	t.Helper()
	var out []uint32
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "* SEARCH"); ok {
			for _, f := range strings.Fields(rest) {
				n, err := strconv.ParseUint(f, 10, 32)
				if err != nil {
					t.Fatalf("bad SEARCH line %q", l)
				}
				out = append(out, uint32(n))
			}
		}
		if strings.HasPrefix(l, "* ESEARCH") {
			f := strings.Fields(l)
			for i := range f {
				if f[i] == "ALL" && i+1 < len(f) {
					out = append(out, expandSet(t, f[i+1])...)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func expandSet(t testing.TB, s string) []uint32 {
	var out []uint32
	for _, r := range strings.Split(s, ",") {
		lo, hi, found := strings.Cut(r, ":")
		a, err1 := strconv.ParseUint(lo, 10, 32)
		b := a
		var err2 error
		if found {
			b, err2 = strconv.ParseUint(hi, 10, 32)
		}
		if err1 != nil || err2 != nil {
			t.Fatalf("bad set %q", s)
		}
		for n := a; n <= b; n++ {
			out = append(out, uint32(n))
		}
	}
	return out
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
