package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailvault/mailvault/tlscert"
)

// dovecotServer is a private Dovecot (Debian's dovecot-imapd) serving
// Maildirs under dir/<user>/Maildir, with a master user: "user*master"
// logs in as any user with the master's password.
type dovecotServer struct {
	dir   string
	addr  string
	imaps string // implicit TLS; the certificate is dir/cert.pem
	ca    string
	pop3  string // "" without dovecot-pop3d
}

const nobodyID = 65534

func startDovecotServer(t testing.TB, users map[string]string, masterPass string) *dovecotServer {
	t.Helper()
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/dovecot"); serr != nil {
			t.Skip("dovecot is not installed (Debian package dovecot-imapd)")
		}
		bin = "/usr/sbin/dovecot"
	}
	// Outside the test's temporary directory, which nobody cannot enter.
	dir, err := os.MkdirTemp("", "dovecot-pull-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	var passwd strings.Builder
	for u, p := range users {
		fmt.Fprintf(&passwd, "%s:{PLAIN}%s::::::\n", u, p)
	}
	writeTestFile(t, filepath.Join(dir, "users"), passwd.String())
	writeTestFile(t, filepath.Join(dir, "masters"), "master:{PLAIN}"+masterPass+"::::::\n")
	// A self-signed certificate for 127.0.0.1: STARTTLS on the IMAP port,
	// implicit TLS on imaps.
	if _, _, err := tlscert.Load(dir, "localhost"); err != nil {
		t.Fatal(err)
	}
	imapsAddr := freeAddr(t)
	_, imapsPort, _ := net.SplitHostPort(imapsAddr)
	addr, pop3Addr := freeAddr(t), freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	_, pop3Port, _ := net.SplitHostPort(pop3Addr)
	protocols := "imap"
	if _, err := os.Stat("/usr/lib/dovecot/pop3"); err == nil {
		protocols += " pop3"
	} else {
		pop3Addr = ""
	}
	run := filepath.Join(dir, "run")
	os.MkdirAll(run, 0o755)
	cfg := fmt.Sprintf(`protocols = %[5]s
listen = 127.0.0.1
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
ssl = yes
ssl_cert = <%[1]s/cert.pem
ssl_key = <%[1]s/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = *
first_valid_uid = 1
mail_location = maildir:%[1]s/%%u/Maildir
passdb {
  driver = passwd-file
  args = %[1]s/masters
  master = yes
}
passdb {
  driver = passwd-file
  args = %[1]s/users
}
userdb {
  driver = static
  args = uid=%[3]d gid=%[3]d home=%[1]s/%%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]s
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %[6]s
  }
  chroot =
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = %[4]s
  }
  inet_listener pop3s {
    port = 0
  }
  chroot =
}
service anvil {
  chroot =
}
`, dir, port, nobodyID, pop3Port, protocols, imapsPort)
	conf := filepath.Join(dir, "dovecot.conf")
	writeTestFile(t, conf, cfg)
	// Dovecot refuses to serve mail as root: the files belong to nobody.
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			os.Chown(p, nobodyID, nobodyID)
		}
		return nil
	})
	cmd := exec.Command(bin, "-F", "-c", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Logf("dovecot log:\n%s", log)
		}
		os.RemoveAll(dir)
	})
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i == 200 {
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Fatalf("dovecot did not start: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &dovecotServer{dir: dir, addr: addr, pop3: pop3Addr, imaps: imapsAddr, ca: filepath.Join(dir, "cert.pem")}
}

func writeTestFile(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// deliver puts a message into a Maildir++ folder of user ("" is INBOX;
// sub-folders are ".A.B" directories, names in modified UTF-7) with the
// given Maildir flags and INTERNALDATE (the file's time).
func (d *dovecotServer) deliver(t testing.TB, user, folder string, n int, raw []byte, flags string, date time.Time) {
	t.Helper()
	box := filepath.Join(d.dir, user, "Maildir", folder)
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(box, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	name := filepath.Join(box, "cur", fmt.Sprintf("%d.M%dP1.test:2,%s", date.Unix(), n, flags))
	if err := os.WriteFile(name, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(name, date, date)
	// Dovecot serves the files as nobody.
	os.Chown(name, nobodyID, nobodyID)
	for p := filepath.Join(box, "cur"); strings.HasPrefix(p, filepath.Join(d.dir, user)); p = filepath.Dir(p) {
		os.Chown(p, nobodyID, nobodyID)
	}
	for _, sub := range []string{"new", "tmp"} {
		os.Chown(filepath.Join(box, sub), nobodyID, nobodyID)
	}
}

func pullMessage(n int, subject string) []byte {
	return []byte(fmt.Sprintf("From: Anna <anna@partner.example>\r\nTo: bob@acme.example\r\nSubject: %s\r\n"+
		"Message-ID: <pull-%d@partner.example>\r\nDate: Mon, 2 Mar 2020 10:%02d:00 +0100\r\n\r\nBody %d\r\nline two\r\n", subject, n, n%60, n))
}

// archivedFolders lists every folder of bob's archive over IMAP (python3
// imaplib) with, per message, its INTERNALDATE, flags and bytes.
func archivedFolders(t *testing.T, in *instance) map[string][]archivedMsg {
	var out map[string][]archivedMsg
	in.imaplib("bob@acme.example", "bob-secret-1", `
import re, base64
res = {}
typ, boxes = M.list()
for b in boxes:
    name = re.match(rb'.*\) "[^"]*" (.*)$', b).group(1).decode()
    if name.startswith('"'):
        name = name[1:-1]
    typ, _ = M.select('"' + name + '"', readonly=True)
    if typ != 'OK':
        continue
    typ, data = M.uid('FETCH', '1:*', '(INTERNALDATE FLAGS BODY.PEEK[])')
    msgs = []
    for d in data:
        if isinstance(d, tuple):
            head = d[0].decode()
            msgs.append({'date': re.search(r'INTERNALDATE "([^"]+)"', head).group(1),
                         'flags': re.search(r'FLAGS \(([^)]*)\)', head).group(1),
                         'raw': base64.b64encode(d[1]).decode()})
    res[name] = msgs
print(json.dumps(res))
`, &out)
	return out
}

type archivedMsg struct {
	Date  string `json:"date"`
	Flags string `json:"flags"`
	Raw   []byte `json:"raw"`
}

// TestPullIMAP pulls a mailbox from a real Dovecot through a master login:
// folders mirrored (Maildir++ "." hierarchy and an umlaut name), Trash
// left out, bytes, INTERNALDATE and flags kept; a second run fetches
// nothing, new mail is fetched by the next run, a byte-identical copy is
// stored once, and a wrong password fails clearly and changes nothing.
func TestPullIMAP(t *testing.T) {
	dc := startDovecotServer(t, map[string]string{"bob": "bob-at-host"}, "master-secret")
	date := time.Date(2020, 3, 2, 9, 30, 0, 0, time.UTC)
	type src struct {
		folder, archive, flags string
		raw                    []byte
	}
	srcs := []src{
		{"", "INBOX", "S", pullMessage(1, "erste")},
		{"", "INBOX", "", pullMessage(2, "zweite")},
		{"", "INBOX", "FS", pullMessage(3, "dritte")},
		{".Projekte", "Projekte", "S", pullMessage(4, "Projekt")},
		{".Projekte.Gr&APw-n", "Projekte/Grün", "S", pullMessage(5, "grün")},
		{".Trash", "Trash", "S", pullMessage(6, "weg")},
	}
	for i, s := range srcs {
		dc.deliver(t, "bob", s.folder, i, s.raw, s.flags, date.Add(time.Duration(i)*time.Hour))
	}

	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "bob@acme.example", "-password", "bob-secret-1")
	host, port, _ := net.SplitHostPort(dc.addr)
	prof := filepath.Join(t.TempDir(), "bob.json")
	writeTestFile(t, prof, fmt.Sprintf(`{"host": %q, "port": %s, "security": "none", "login": "bob",
		"master_login": "master", "password": "master-secret", "mailbox": "bob@acme.example", "interval": "1h"}`, host, port))
	in.mustCLI("pull", "put", "-tenant", "acme", "bob", "-file", prof)
	// The password is sealed: neither the API nor the metadata file shows it.
	if out := in.mustCLI("pull", "show", "-tenant", "acme", "bob"); strings.Contains(out, "master-secret") || !strings.Contains(out, `"password_set": true`) {
		t.Fatalf("pull show:\n%s", out)
	}

	out := in.mustCLI("pull", "run", "-tenant", "acme", "bob")
	if !strings.Contains(out, "5 fetched, 5 archived, 0 duplicates, 0 errors") {
		t.Fatalf("first run:\n%s", out)
	}
	got := archivedFolders(t, in)
	check := func(want []src) {
		t.Helper()
		byFolder := map[string][]src{}
		for _, s := range want {
			byFolder[s.archive] = append(byFolder[s.archive], s)
		}
		for f, ws := range byFolder {
			name := f
			if f == "Projekte/Grün" {
				name = "Projekte/Gr&APw-n" // modified UTF-7 on the wire
			}
			ms := got[name]
			if len(ms) != len(ws) {
				t.Fatalf("folder %s: %d messages, want %d (all: %v)", f, len(ms), len(ws), keys(got))
			}
			for i, w := range ws {
				if string(ms[i].Raw) != string(w.raw) {
					t.Errorf("%s message %d differs:\n%q\nwant\n%q", f, i, ms[i].Raw, w.raw)
				}
				wantFlags := map[string]string{"": "", "S": `\Seen`, "FS": `\Flagged \Seen`}[w.flags]
				if ms[i].Flags != wantFlags {
					t.Errorf("%s message %d flags %q, want %q", f, i, ms[i].Flags, wantFlags)
				}
			}
		}
		if _, ok := got["Trash"]; ok {
			t.Errorf("Trash was pulled")
		}
	}
	check(srcs[:5])
	// INTERNALDATE is the source's (the Maildir file's time).
	if d, err := time.Parse("_2-Jan-2006 15:04:05 -0700", got["Projekte"][0].Date); err != nil || !d.Equal(date.Add(3*time.Hour)) {
		t.Errorf("INTERNALDATE %q (%v), want %v", got["Projekte"][0].Date, err, date.Add(3*time.Hour))
	}

	out = in.mustCLI("pull", "run", "-tenant", "acme", "bob")
	if !strings.Contains(out, "0 fetched, 0 archived") {
		t.Fatalf("second run fetched again:\n%s", out)
	}

	// New mail, and a byte-identical copy of an archived message in the
	// same folder (a new UID on the source).
	more := append(srcs[:5:5], src{"", "INBOX", "S", pullMessage(7, "neu")})
	dc.deliver(t, "bob", "", 7, more[5].raw, "S", date.Add(7*time.Hour))
	dc.deliver(t, "bob", "", 8, srcs[0].raw, "S", date.Add(8*time.Hour))
	out = in.mustCLI("pull", "run", "-tenant", "acme", "bob")
	if !strings.Contains(out, "2 fetched, 1 archived, 1 duplicates") {
		t.Fatalf("third run:\n%s", out)
	}
	got = archivedFolders(t, in)
	check(more)

	// A wrong password: a clear error, nothing changed, the state kept.
	writeTestFile(t, prof, strings.Replace(readTestFile(t, prof), "master-secret", "wrong", 1))
	in.mustCLI("pull", "put", "-tenant", "acme", "bob", "-file", prof)
	dc.deliver(t, "bob", "", 9, pullMessage(9, "später"), "S", date.Add(9*time.Hour))
	out, err := in.cli("pull", "run", "-tenant", "acme", "bob")
	if err == nil || !strings.Contains(out, "log in to") {
		t.Fatalf("wrong password: %v\n%s", err, out)
	}
	if n := len(archivedFolders(t, in)["INBOX"]); n != 4 {
		t.Fatalf("after a failed run INBOX holds %d messages, want 4", n)
	}
	if !strings.Contains(in.mustCLI("audit", "-tenant", "acme"), "pull-run-failed") {
		t.Errorf("failed run not audited")
	}
	// An unreachable server: a clear error too.
	_, closed, _ := net.SplitHostPort(freeAddr(t))
	writeTestFile(t, prof, strings.Replace(readTestFile(t, prof), `"port": `+port, `"port": `+closed, 1))
	in.mustCLI("pull", "put", "-tenant", "acme", "bob", "-file", prof)
	out, err = in.cli("pull", "run", "-tenant", "acme", "bob")
	if err == nil || !strings.Contains(out, "connect to 127.0.0.1:"+closed) || !strings.Contains(out, "connection refused") {
		t.Fatalf("unreachable server: %v\n%s", err, out)
	}
	if n := len(archivedFolders(t, in)["INBOX"]); n != 4 {
		t.Fatalf("after a failed run INBOX holds %d messages, want 4", n)
	}
}

// TestPullIMAPTLS pulls over implicit TLS and over STARTTLS, checking the
// server's certificate against the profile's CA file; without it the
// self-signed certificate is refused.
func TestPullIMAPTLS(t *testing.T) {
	dc := startDovecotServer(t, map[string]string{"bob": "bob-at-host"}, "master-secret")
	dc.deliver(t, "bob", "", 1, pullMessage(40, "tls"), "S", time.Date(2022, 1, 2, 3, 4, 5, 0, time.UTC))
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "bob@acme.example", "-password", "bob-secret-1")
	put := func(addr, security, ca string) {
		host, port, _ := net.SplitHostPort(addr)
		prof := filepath.Join(t.TempDir(), "bob.json")
		writeTestFile(t, prof, fmt.Sprintf(`{"host": %q, "port": %s, "security": %q, "ca_file": %q, "login": "bob",
			"password": "bob-at-host", "mailbox": "bob@acme.example"}`, host, port, security, ca))
		in.mustCLI("pull", "put", "-tenant", "acme", "bob", "-file", prof)
	}
	put(dc.imaps, "tls", "")
	if out, err := in.cli("pull", "run", "-tenant", "acme", "bob"); err == nil || !strings.Contains(out, "certificate") {
		t.Fatalf("an unknown certificate was accepted: %v\n%s", err, out)
	}
	put(dc.imaps, "tls", dc.ca)
	if out := in.mustCLI("pull", "run", "-tenant", "acme", "bob"); !strings.Contains(out, "1 fetched, 1 archived") {
		t.Fatalf("TLS run:\n%s", out)
	}
	put(dc.addr, "starttls", dc.ca)
	if out := in.mustCLI("pull", "run", "-tenant", "acme", "bob"); !strings.Contains(out, "0 fetched") {
		t.Fatalf("STARTTLS run (same server, nothing new):\n%s", out)
	}
}

// TestPullPOP3 pulls a maildrop from Dovecot's pop3d with a master login:
// every message once, byte-exact, into INBOX; the next run fetches only
// what is new by UIDL, and a byte-identical copy is stored once.
func TestPullPOP3(t *testing.T) {
	dc := startDovecotServer(t, map[string]string{"bob": "bob-at-host"}, "master-secret")
	if dc.pop3 == "" {
		t.Skip("dovecot-pop3d is not installed")
	}
	date := time.Date(2021, 5, 6, 7, 0, 0, 0, time.UTC)
	var msgs [][]byte
	for i := range 3 {
		msgs = append(msgs, pullMessage(20+i, fmt.Sprintf("pop %d", i)))
		dc.deliver(t, "bob", "", i, msgs[i], "S", date.Add(time.Duration(i)*time.Minute))
	}
	dc.deliver(t, "bob", ".Archiv", 9, pullMessage(29, "not in POP3"), "S", date)
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "bob@acme.example", "-password", "bob-secret-1")
	host, port, _ := net.SplitHostPort(dc.pop3)
	prof := filepath.Join(t.TempDir(), "bob.json")
	writeTestFile(t, prof, fmt.Sprintf(`{"protocol": "pop3", "host": %q, "port": %s, "security": "none", "login": "bob",
		"master_login": "master", "password": "master-secret", "mailbox": "bob@acme.example"}`, host, port))
	in.mustCLI("pull", "put", "-tenant", "acme", "bob", "-file", prof)
	if out := in.mustCLI("pull", "run", "-tenant", "acme", "bob"); !strings.Contains(out, "3 fetched, 3 archived, 0 duplicates, 0 errors") {
		t.Fatalf("first run:\n%s", out)
	}
	if out := in.mustCLI("pull", "run", "-tenant", "acme", "bob"); !strings.Contains(out, "0 fetched, 0 archived") {
		t.Fatalf("second run:\n%s", out)
	}
	msgs = append(msgs, pullMessage(23, "pop new"))
	dc.deliver(t, "bob", "", 3, msgs[3], "", date.Add(time.Hour))
	dc.deliver(t, "bob", "", 4, msgs[0], "", date.Add(2*time.Hour))
	if out := in.mustCLI("pull", "run", "-tenant", "acme", "bob"); !strings.Contains(out, "2 fetched, 1 archived, 1 duplicates") {
		t.Fatalf("third run:\n%s", out)
	}
	got := archivedFolders(t, in)
	if len(got["INBOX"]) != len(msgs) {
		t.Fatalf("INBOX holds %d messages, want %d (folders %v)", len(got["INBOX"]), len(msgs), keys(got))
	}
	for i, m := range got["INBOX"] {
		if string(m.Raw) != string(msgs[i]) {
			t.Errorf("message %d differs:\n%q\nwant\n%q", i, m.Raw, msgs[i])
		}
	}
	if _, ok := got["Archiv"]; ok {
		t.Error("a POP3 pull created other folders")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func readTestFile(t *testing.T, name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPullResumesAfterKill kills the server with SIGKILL in the middle of
// a pull of a few thousand messages; after the restart the next run
// archives the rest: every message once, none missing.
func TestPullResumesAfterKill(t *testing.T) {
	dc := startDovecotServer(t, map[string]string{"bob": "bob-at-host"}, "master-secret")
	const n = 3000
	date := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		folder := ""
		if i%3 == 0 {
			folder = ".Ablage.K&APY-ln" // Ablage/Köln
		}
		dc.deliver(t, "bob", folder, i, pullMessage(1000+i, fmt.Sprintf("Nachricht %d", i)), "S", date.Add(time.Duration(i)*time.Minute))
	}
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "bob@acme.example", "-password", "bob-secret-1")
	host, port, _ := net.SplitHostPort(dc.addr)
	prof := filepath.Join(t.TempDir(), "bob.json")
	writeTestFile(t, prof, fmt.Sprintf(`{"host": %q, "port": %s, "security": "none", "login": "bob",
		"master_login": "master", "password": "master-secret", "mailbox": "bob@acme.example"}`, host, port))
	in.mustCLI("pull", "put", "-tenant", "acme", "bob", "-file", prof)
	run := exec.Command(binary, "pull", "run", "-tenant", "acme", "bob")
	run.Env = in.env
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer run.Wait()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, _ := in.cli("pull", "show", "-tenant", "acme", "bob")
		var info struct {
			Running *struct{ Archived int } `json:"running"`
		}
		json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &info)
		if info.Running != nil && info.Running.Archived >= 250 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pull did not get going:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	in.kill()
	in.start()
	out := in.mustCLI("pull", "run", "-tenant", "acme", "bob")
	t.Logf("after the restart: %s", out)
	var ids map[string][]string
	in.imaplib("bob@acme.example", "bob-secret-1", `
res = {}
for name in ['INBOX', '"Ablage/K&APY-ln"']:
    M.select(name, readonly=True)
    typ, data = M.uid('FETCH', '1:*', '(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
    res[name] = [d[1].decode().strip() for d in data if isinstance(d, tuple)]
print(json.dumps(res))
`, &ids)
	seen := map[string]bool{}
	for f, l := range ids {
		for _, id := range l {
			if seen[id] {
				t.Errorf("%s: %s archived twice", f, id)
			}
			seen[id] = true
		}
	}
	if len(seen) != n || len(ids["INBOX"]) != n-n/3 {
		t.Fatalf("%d distinct messages archived (INBOX %d, Ablage/Köln %d), want %d", len(seen), len(ids["INBOX"]), len(ids[`"Ablage/K&APY-ln"`]), n)
	}
	// And a further run has nothing left to fetch.
	if out := in.mustCLI("pull", "run", "-tenant", "acme", "bob"); !strings.Contains(out, "0 fetched") {
		t.Fatalf("run after the resume:\n%s", out)
	}
}

// TestPullRunWhileRunning: a run asked for while the profile runs already
// is refused with 409 (docs/import.md), through the management API.
func TestPullRunWhileRunning(t *testing.T) {
	// A server that takes the connection and never greets keeps the first
	// run waiting.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- c
		}
	}()
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	c := in.client()
	if err := c.Do("POST", "/api/v1/tenants/acme/mailboxes", map[string]string{"address": "bob@acme.example", "kind": "shared"}, nil); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	profile := fmt.Sprintf(`{"host": %q, "port": %s, "security": "none", "login": "bob", "password": "pw", "mailbox": "bob@acme.example"}`, host, port)
	post := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, c.BaseURL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+c.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("PUT", "/api/v1/tenants/acme/pull/profiles/bob", profile); code != http.StatusOK {
		t.Fatalf("put profile: %d %s", code, body)
	}
	first := make(chan string, 1)
	go func() {
		code, body := post("POST", "/api/v1/tenants/acme/pull/profiles/bob/run", "")
		first <- fmt.Sprint(code, " ", body)
	}()
	var held net.Conn
	select {
	case held = <-conns:
	case <-time.After(30 * time.Second):
		t.Fatal("the first run did not connect")
	}
	if code, body := post("POST", "/api/v1/tenants/acme/pull/profiles/bob/run", ""); code != http.StatusConflict || !strings.Contains(body, "pull is running already") {
		t.Errorf("second run: %d %s, want 409", code, body)
	}
	held.Close()
	ln.Close()
	if got := <-first; !strings.HasPrefix(got, "200 ") || !strings.Contains(got, `"error"`) {
		t.Errorf("first run: %s, want its report with the error", got)
	}
}
