package imapd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/conf"
	"github.com/mailvault/mailvault/cputime"
	"github.com/mailvault/mailvault/mailgen"
)

// BenchmarkFolder measures what a mail client does on a large archive
// folder, over loopback with a plain socket client:
//
//	go test -run '^$' -bench BenchmarkFolder -benchtime 1x ./imapd/
//
// IMAPD_BENCH_N sets the folder size (default 20,000; the figure is
// 100,000). IMAPD_BENCH_TENANT_N sets the number of messages in the tenant
// (default: the folder's); the others, small ones, go to other archive
// mailboxes, mixed in with the folder's as mail arrives, so that searches
// run on an index of the whole tenant (the figure is 1,000,000).
// IMAPD_BENCH_DIR keeps the archive between runs (it is built once per
// pair of sizes). With IMAPD_BENCH_DOVECOT=1 the same workload also runs
// against Debian's Dovecot on a Maildir of the folder's messages, started
// on a loopback port, and both are printed side by side.
func BenchmarkFolder(b *testing.B) {
	n := benchEnvInt(b, "IMAPD_BENCH_N", 20000)
	tenantN := benchEnvInt(b, "IMAPD_BENCH_TENANT_N", n)
	if tenantN < n {
		b.Fatalf("IMAPD_BENCH_TENANT_N %d is less than IMAPD_BENCH_N %d", tenantN, n)
	}
	dir := os.Getenv("IMAPD_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	name := fmt.Sprintf("n%d", n)
	if tenantN > n {
		name += fmt.Sprintf("-t%d", tenantN)
	}
	dir = filepath.Join(dir, name)
	msgs := benchMessages(n)
	addr, people := benchArchive(b, dir, msgs, tenantN-n)
	type target struct{ name, addr, user, pass string }
	targets := []target{{"mailvault", addr, "alice@acme.example", password}}
	if os.Getenv("IMAPD_BENCH_DOVECOT") != "" {
		targets = append(targets, target{"dovecot", startDovecot(b, dir, msgs), "alice", dovecotPassword})
	}
	results := map[string]map[string]float64{}
	for _, tg := range targets {
		results[tg.name] = runWorkload(b, tg.addr, tg.user, tg.pass, n, people)
	}
	var order []string
	for k := range results["mailvault"] {
		order = append(order, k)
	}
	slices.Sort(order)
	for _, k := range order {
		line := fmt.Sprintf("%-28s mailvault %9.2f", k, results["mailvault"][k])
		if d, ok := results["dovecot"]; ok {
			line += fmt.Sprintf("   dovecot %9.2f   ratio %.2f", d[k], results["mailvault"][k]/d[k])
		}
		fmt.Println(line) // b.Log truncates a benchmark's output
		b.ReportMetric(results["mailvault"][k], k)
	}
}

func benchEnvInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	return n
}

// benchOthers is the number of archive mailboxes the tenant's other mail
// goes to.
const benchOthers = 9

func benchMessages(n int) []mailgen.Message {
	g := mailgen.New(2024, []string{"acme.example", "partner.example", "supplier.example"}, 40)
	g.AvgSize = 3 << 10
	msgs := make([]mailgen.Message, n)
	for i := range msgs {
		msgs[i] = g.Next()
	}
	return msgs
}

// benchArchive builds (or reopens) the archive with msgs in alice's INBOX
// and others more messages in the INBOXes of benchOthers other mailboxes,
// and serves it; it returns the address and the senders of msgs.
func benchArchive(b *testing.B, dir string, msgs []mailgen.Message, others int) (string, []string) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	data := filepath.Join(dir, "data")
	_, statErr := os.Stat(filepath.Join(dir, "complete"))
	p, err := backend.Open(backend.Options{DataDir: data, Logger: log, CommitDelay: 5 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	if statErr != nil {
		start := time.Now()
		if _, err := p.CreateTenant(ctx, "acme", []string{"acme.example"}, backend.Quotas{}); err != nil {
			b.Fatal(err)
		}
		t, err := p.Tenant(ctx, "acme")
		if err != nil {
			b.Fatal(err)
		}
		owners := []string{"alice@acme.example"}
		if others > 0 {
			for i := range benchOthers {
				owners = append(owners, fmt.Sprintf("other%d@acme.example", i+1))
			}
		}
		for _, login := range owners {
			if _, err := t.CreateUser(ctx, backend.UserSpec{Login: login, Password: password, Mailbox: true}); err != nil {
				b.Fatal(err)
			}
		}
		type item struct {
			m     mailgen.Message
			owner string
		}
		var wg sync.WaitGroup
		work := make(chan item, 256)
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for it := range work {
					if _, err := t.Ingest(ctx, it.m.Raw, backend.Source{Mailbox: it.owner, Folder: "INBOX", Received: it.m.Date}); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		// The other mail is generated as it is sent, not kept: at a
		// million messages it would not fit in memory. It is spread evenly
		// between the folder's messages.
		g := mailgen.New(2025, []string{"acme.example", "partner.example", "supplier.example"}, 40)
		g.AvgSize = 1 << 10
		sent := 0
		for i := range msgs {
			for ; sent < (i+1)*others/len(msgs); sent++ {
				work <- item{g.Next(), owners[1+sent%benchOthers]}
			}
			work <- item{msgs[i], owners[0]}
		}
		for ; sent < others; sent++ {
			work <- item{g.Next(), owners[1+sent%benchOthers]}
		}
		close(work)
		wg.Wait()
		if err := t.WaitIndexed(ctx); err != nil {
			b.Fatal(err)
		}
		b.Logf("archived and indexed %d messages (%d in the folder) in %v", len(msgs)+others, len(msgs), time.Since(start).Round(time.Second))
		if err := os.WriteFile(filepath.Join(dir, "complete"), nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := New(p, conf.IMAP{}, data, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	seen := map[string]bool{}
	var people []string
	for _, m := range msgs {
		if !seen[m.From.Address] {
			seen[m.From.Address] = true
			people = append(people, m.From.Address)
		}
	}
	return ln.Addr().String(), people
}

// runWorkload returns timings in milliseconds.
func runWorkload(b *testing.B, addr, user, pass string, n int, people []string) map[string]float64 {
	c := dialRaw(b, addr)
	c.OK("LOGIN " + quote(user) + " " + quote(pass))
	out := map[string]float64{}
	timed := func(cmd string) (time.Duration, []string) {
		start, cpu := time.Now(), cputime.Process()
		u := c.OK(cmd)
		if d := time.Since(start); d > 500*time.Millisecond {
			fmt.Printf("%.60s: %v wall, %v CPU of this process (the test client, and mailvault)\n", cmd, d.Round(time.Millisecond), (cputime.Process() - cpu).Round(time.Millisecond))
		}
		return time.Since(start), u
	}
	var sel []time.Duration
	for range 5 {
		c.Do("UNSELECT") // BAD the first time: nothing selected yet
		d, u := timed("SELECT INBOX")
		if !slices.Contains(u, fmt.Sprintf("* %d EXISTS", n)) {
			b.Fatalf("SELECT: %q", u)
		}
		sel = append(sel, d)
	}
	out["select-ms"] = ms(median(sel))
	d, u := timed("UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)")
	if len(u) != n {
		b.Fatalf("envelope FETCH returned %d of %d", len(u), n)
	}
	out["fetch-envelopes-ms"] = ms(d)
	rng := rand.New(rand.NewPCG(1, 2))
	var uids []string
	for range 100 {
		uids = append(uids, strconv.Itoa(1+rng.IntN(n)))
	}
	d, _ = timed("UID FETCH " + strings.Join(uids, ",") + " (BODY.PEEK[])")
	out["fetch-100-bodies-ms"] = ms(d)
	// Words of mailgen's small vocabulary are in most messages; a
	// reference number (token) is in one.
	var common, rare, from []time.Duration
	for i, w := range []string{"invoice", "Rechnung", "deadline", "Zahlung", "retention", "quarter", "Angebot", "signature", "Lieferant", "audit", "shipment", "approval"} {
		d, _ = timed("UID SEARCH BODY " + quote(w))
		common = append(common, d)
		d, _ = timed(fmt.Sprintf("UID SEARCH BODY token%06d", 1+rng.IntN(n)))
		rare = append(rare, d)
		d, _ = timed("UID SEARCH FROM " + quote(people[i%len(people)]))
		from = append(from, d)
	}
	// Content-Type values are not indexed: its HEADER search reads the
	// stored headers of every message that has one.
	d, _ = timed(`UID SEARCH HEADER Content-Type "multipart/mixed"`)
	out["search-unindexed-header-ms"] = ms(d)
	out["search-common-word-p50-ms"] = ms(median(common))
	out["search-rare-word-p50-ms"] = ms(median(rare))
	out["search-from-p50-ms"] = ms(median(from))
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(l []time.Duration) time.Duration {
	s := slices.Clone(l)
	slices.Sort(s)
	return s[len(s)/2]
}

// dovecotPassword has no spaces, which Dovecot's static passdb cannot take.
const dovecotPassword = "benchmark"

// nobody is the user Dovecot serves the Maildir as.
const nobody = 65534

// startDovecot serves a Maildir of msgs with Debian's Dovecot on a
// loopback port, for comparison; it skips when Dovecot is not installed.
func startDovecot(b *testing.B, dir string, msgs []mailgen.Message) string {
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		for _, p := range []string{"/usr/sbin/dovecot"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
	}
	if bin == "" {
		b.Skip("dovecot is not installed (Debian: dovecot-imapd)")
	}
	dv := filepath.Join(dir, "dovecot")
	maildir := filepath.Join(dv, "Maildir")
	if _, err := os.Stat(filepath.Join(dv, "complete")); err != nil {
		os.RemoveAll(dv)
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(maildir, sub), 0o700); err != nil {
				b.Fatal(err)
			}
		}
		for i, m := range msgs {
			name := filepath.Join(maildir, "cur", fmt.Sprintf("%010d.M%dP1.bench:2,S", m.Date.Unix(), i))
			if err := os.WriteFile(name, m.Raw, 0o600); err != nil {
				b.Fatal(err)
			}
			os.Chtimes(name, m.Date, m.Date)
		}
		if err := os.WriteFile(filepath.Join(dv, "complete"), nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	run := filepath.Join(dv, "run")
	os.RemoveAll(run)
	if err := os.MkdirAll(run, 0o755); err != nil {
		b.Fatal(err)
	}
	cfg := fmt.Sprintf(`protocols = imap
listen = 127.0.0.1
base_dir = %[1]s
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:%[2]s:LAYOUT=fs
passdb {
  driver = static
  args = password=%[3]s
}
userdb {
  driver = static
  args = uid=%[6]d gid=%[6]d home=%[4]s
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[5]d
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
`, run, maildir, dovecotPassword, dv, port, nobody)
	// Dovecot refuses to serve mail as root: the Maildir belongs to nobody.
	filepath.Walk(dv, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			os.Chown(p, nobody, nobody)
		}
		return nil
	})
	for d := filepath.Dir(dv); d != filepath.Dir(d); d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil || st.Mode().Perm()&0o001 != 0 {
			break
		}
		os.Chmod(d, st.Mode().Perm()|0o001) // nobody must pass through
	}
	// Not in base_dir, where Dovecot links its configuration.
	conf := filepath.Join(dv, "dovecot.conf")
	writeFile(b, conf, cfg)
	cmd := exec.Command(bin, "-F", "-c", conf)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			log, _ := os.ReadFile(filepath.Join(run, "dovecot.log"))
			b.Fatalf("dovecot did not start: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return addr
}
