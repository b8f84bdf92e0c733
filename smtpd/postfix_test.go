package smtpd

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/mailgen"
)

// postfix is a private Postfix instance on loopback that journals every
// message it handles to the archive: recipient_bcc_maps and sender_bcc_maps
// add journal+rcpt=…/journal+from=… recipients in the journal domain, which
// is routed to the endpoint; all other mail is discarded.
type postfix struct {
	dir, conf, addr string
}

func startPostfix(t *testing.T, journalDomain, endpoint string) *postfix {
	t.Helper()
	bin := needTool(t, "postfix")
	if os.Geteuid() != 0 {
		t.Skip("a private Postfix instance needs root")
	}
	// Postfix daemons drop privileges: the tree must be traversable.
	dir, err := os.MkdirTemp("", "mailvault-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	pf := &postfix{dir: dir, conf: filepath.Join(dir, "conf")}
	for _, d := range []string{"conf", "spool", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "postfix", filepath.Join(dir, "data")).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pf.addr = ln.Addr().String()
	ln.Close()

	// The package's own configuration directory has the stock master.cf.
	stock, err := exec.Command("postconf", "-d", "-h", "config_directory").Output()
	if err != nil {
		t.Skip("postconf:", err)
	}
	stockDir := strings.TrimSpace(string(stock))
	master, err := os.ReadFile(filepath.Join(stockDir, "master.cf"))
	if err != nil {
		t.Skip("postfix master.cf not found:", err)
	}
	var mc []string
	for _, l := range strings.Split(string(master), "\n") {
		if strings.HasPrefix(l, "smtp ") && strings.Contains(l, " inet ") {
			l = pf.addr + " inet n - n - - smtpd"
		}
		mc = append(mc, l)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(pf.conf, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("master.cf", strings.Join(mc, "\n"))
	if b, err := os.ReadFile(filepath.Join(stockDir, "dynamicmaps.cf")); err == nil {
		write("dynamicmaps.cf", string(b))
	}
	write("rcpt_bcc.regexp", fmt.Sprintf("/^([^@+]+)@(.+)$/ journal+rcpt=$1=$2@%s\n", journalDomain))
	write("sender_bcc.regexp", fmt.Sprintf("/^([^@+]+)@(.+)$/ journal+from=$1=$2@%s\n", journalDomain))
	write("main.cf", strings.Join([]string{
		"compatibility_level = 3.6",
		"config_directory = " + pf.conf,
		"queue_directory = " + filepath.Join(dir, "spool"),
		"data_directory = " + filepath.Join(dir, "data"),
		"maillog_file = " + filepath.Join(dir, "maillog"),
		"maillog_file_prefixes = " + dir,
		"inet_interfaces = loopback-only",
		"inet_protocols = ipv4",
		"mydestination =",
		"mynetworks = 127.0.0.0/8",
		"relay_domains =",
		"alias_maps =",
		"local_transport = error:no local delivery",
		"default_transport = discard:",
		"relay_transport = discard:",
		"transport_maps = inline:{ { " + journalDomain + " = smtp:[" + strings.Replace(endpoint, ":", "]:", 1) + " } }",
		"recipient_bcc_maps = regexp:" + filepath.Join(pf.conf, "rcpt_bcc.regexp"),
		"sender_bcc_maps = regexp:" + filepath.Join(pf.conf, "sender_bcc.regexp"),
		"smtp_tls_security_level = none",
		"smtpd_tls_security_level = none",
		// Deliver the bytes unchanged: no header rewriting, no folding of
		// long lines, no MIME conversion.
		"local_header_rewrite_clients =",
		"smtp_line_length_limit = 0",
		"disable_mime_output_conversion = yes",
	}, "\n")+"\n")
	if out, err := exec.Command("postconf", "-c", pf.conf, "-F", "*/*/chroot = n").CombinedOutput(); err != nil {
		t.Fatalf("postconf: %v %s", err, out)
	}
	cmd := exec.Command(bin, "-c", pf.conf, "start")
	if out, err := cmd.CombinedOutput(); err != nil {
		// postfix reports configuration errors only to its log.
		logb, _ := os.ReadFile(filepath.Join(dir, "maillog"))
		t.Fatalf("postfix start: %v %s\n%s", err, out, logb)
	}
	t.Cleanup(func() {
		exec.Command(bin, "-c", pf.conf, "stop").Run()
		os.RemoveAll(dir)
	})
	return pf
}

// TestPostfixJournaling has a real Postfix relay a journal copy of every
// message it handles (To, Cc and envelope-only Bcc recipients) to the
// endpoint, and finds each original, behind Postfix's Received header,
// byte-exact in the archive of its sender, of each recipient and in the
// journal.
func TestPostfixJournaling(t *testing.T) {
	p := openProvider(t, t.TempDir())
	defer p.Close()
	acme := createTenant(t, p, tenantSpec{name: "acme", domains: []string{"acme.example", "journal.acme.example"},
		users: []string{"alice", "bob", "carol", "dave"}, networks: []string{"127.0.0.1"}})
	srv, addr := startServer(t, p)
	pf := startPostfix(t, "journal.acme.example", addr)

	type sent struct {
		raw        []byte
		from       string
		recipients []string
	}
	g := mailgen.New(11, []string{"acme.example", "partner.example"}, 4)
	g.AvgSize = 8 << 10
	people := []string{"alice", "bob", "carol", "dave"}
	var msgs []sent
	var jobs []pyJob
	dir := t.TempDir()
	for i := 0; i < 24; i++ {
		m := g.Next()
		from := people[i%4] + "@acme.example"
		// Header recipients plus one only the envelope knows (a Bcc).
		rcpts := []string{people[(i+1)%4] + "@acme.example", "someone@partner.example", people[(i+2)%4] + "@acme.example"}
		raw := smtpForm(m.Raw)
		if i%5 == 0 {
			raw = append(raw, []byte(strings.Repeat("long line ", 200)+"\r\n")...) // over 998 bytes
		}
		msgs = append(msgs, sent{raw, from, rcpts})
		jobs = append(jobs, pyJob{Kind: "raw", From: from, To: rcpts, File: writeFile(t, dir, fmt.Sprintf("m%d.eml", i), raw)})
	}
	for i, r := range sendPython(t, pf.addr, jobs) {
		if r.Code != 250 {
			t.Fatalf("postfix refused message %d: %d %s", i, r.Code, r.Reply)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for srv.Stats().Accepted < int64(len(msgs)) {
		if time.Now().After(deadline) {
			logb, _ := os.ReadFile(filepath.Join(pf.dir, "maillog"))
			t.Fatalf("%d of %d journal copies arrived; postfix log:\n%s", srv.Stats().Accepted, len(msgs), logb)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Each journal copy is Postfix's Received header followed by the
	// original, unchanged.
	journalRaws := map[string][]byte{} // original -> stored copy
	ctx := context.Background()
	for _, mb := range acme.Readable(officer + "@acme.example") {
		folders, _ := acme.Folders(officer+"@acme.example", mb.ID)
		for _, f := range folders {
			if f.Name != "INBOX" {
				continue
			}
			snap, err := acme.Snapshot(officer+"@acme.example", f.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, mid := range snap.MIDs {
				raw, err := acme.RawMessage(ctx, mid)
				if err != nil {
					t.Fatal(err)
				}
				journalRaws[string(stripReceived(raw))] = raw
			}
		}
	}
	var wants []want
	for i, m := range msgs {
		stored, ok := journalRaws[string(m.raw)]
		if !ok {
			t.Errorf("message %d not in the journal byte-exact behind a Received header", i)
			continue
		}
		wants = append(wants, want{officer + "@acme.example", "journal@acme.example", "INBOX", stored},
			want{m.from, m.from, "Sent", stored})
		for _, r := range m.recipients {
			if strings.HasSuffix(r, "@acme.example") {
				wants = append(wants, want{r, r, "INBOX", stored})
			}
		}
	}
	checkPlaced(t, acme, wants)
	rep, err := acme.Verify(ctx, nil)
	if err != nil || !rep.Clean() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

// stripReceived drops the Received fields a relay put on top.
func stripReceived(raw []byte) []byte {
	for bytes.HasPrefix(raw, []byte("Received:")) {
		i := bytes.Index(raw, []byte("\r\n"))
		for i >= 0 && i+2 < len(raw) && (raw[i+2] == ' ' || raw[i+2] == '\t') {
			j := bytes.Index(raw[i+2:], []byte("\r\n"))
			if j < 0 {
				return raw
			}
			i += 2 + j
		}
		if i < 0 {
			return raw
		}
		raw = raw[i+2:]
	}
	return raw
}
