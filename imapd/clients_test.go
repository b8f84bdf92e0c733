package imapd

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mailvault/mailvault/mailparse"
)

// TestMbsync syncs alice's whole own archive mailbox (generated mail and the
// real-world corpus) with isync's mbsync into a Maildir and compares every
// message byte for byte with what was archived.
func TestMbsync(t *testing.T) {
	bin := needTool(t, "mbsync")
	f := newFixture(t, 60, true)
	host, port, _ := net.SplitHostPort(f.addr)
	dir := t.TempDir()
	rc := fmt.Sprintf(`IMAPAccount archive
Host %s
Port %s
User alice@acme.example
Pass "%s"
SSLType None
AuthMechs LOGIN

IMAPStore archive-remote
Account archive

MaildirStore archive-local
Path %s/Mail/
Inbox %s/Mail/INBOX
SubFolders Verbatim

Channel archive
Far :archive-remote:
Near :archive-local:
Patterns INBOX Corpus
Sync Pull
Create Near
Remove None
Expunge None
SyncState *
`, host, port, password, dir, dir)
	writeFile(t, filepath.Join(dir, "mbsyncrc"), rc)
	if err := os.MkdirAll(filepath.Join(dir, "Mail"), 0o700); err != nil {
		t.Fatal(err)
	}
	run := func() {
		cmd := exec.Command(bin, "-c", filepath.Join(dir, "mbsyncrc"), "archive")
		cmd.Env = append(os.Environ(), "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mbsync: %v\n%s", err, out)
		}
	}
	run()
	c := dialRaw(t, f.addr)
	c.login("alice@acme.example")
	for _, box := range []struct {
		dir  string
		want []archived
	}{{"INBOX", f.inbox}, {"Corpus", f.corpus}} {
		want := map[string]int{}
		var skipped, altered []archived
		for _, m := range box.want {
			switch {
			case !hasHeaderEnd(m.raw):
				skipped = append(skipped, m)
			case bareCR.Match(m.raw):
				altered = append(altered, m)
			default:
				want[maildirForm(m.raw)]++
			}
		}
		got := maildirMessages(t, filepath.Join(dir, "Mail", box.dir))
		if len(got) != len(box.want)-len(skipped) {
			t.Errorf("%s: mbsync stored %d messages, want %d (%d archived, %d without header end)", box.dir, len(got), len(box.want)-len(skipped), len(box.want), len(skipped))
		}
		var unmatched [][]byte
		for _, b := range got {
			h := maildirForm(tuidRE.ReplaceAll(b, nil))
			if want[h] == 0 {
				unmatched = append(unmatched, b)
				continue
			}
			want[h]--
		}
		// The altered ones are the only copies allowed to differ.
		if len(unmatched) > len(altered) {
			t.Errorf("%s: %d synced messages differ from every archived one, the first:\n%.300s", box.dir, len(unmatched), unmatched[0])
		}
		// mbsync skips messages without a blank line after the header
		// ("incomplete header") and rewrites lone CRs with its line-break
		// conversion; they must still come out of the server intact.
		c.OK("EXAMINE " + box.dir)
		for _, m := range append(skipped, altered...) {
			u := c.OK(fmt.Sprintf("UID FETCH %d BODY.PEEK[]", m.uid))
			// IMAP presents bare LFs as CRLF; the archived bytes are otherwise served as they are.
			served := mailparse.AppendCRLF(nil, m.raw)
			if want := fmt.Sprintf("* 0 FETCH (UID %d BODY[] {%d}%s)", m.uid, len(served), served); len(u) != 1 || u[0][strings.Index(u[0], "FETCH"):] != want[strings.Index(want, "FETCH"):] {
				t.Errorf("UID %d without header end: got %q, want %q", m.uid, u, want)
			}
		}
	}
	// A second run is incremental and must not duplicate anything.
	run()
	if got := maildirMessages(t, filepath.Join(dir, "Mail", "INBOX")); len(got) != len(f.inbox) {
		t.Errorf("after the second sync INBOX has %d messages, want %d", len(got), len(f.inbox))
	}
}

// tuidRE matches the header mbsync adds to find the messages it stored.
var tuidRE = regexp.MustCompile(`(?m)^X-TUID: [^\r\n]*\r?\n`)

// bareCR finds a CR that does not start a CRLF.
var bareCR = regexp.MustCompile(`\r([^\n]|$)`)

// maildirForm is a message as mbsync and offlineimap write it into a
// Maildir, whose line breaks are LF: byte for byte otherwise.
func maildirForm(b []byte) string {
	return sha(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")))
}

// hasHeaderEnd reports whether the message has the blank line that ends
// its header.
func hasHeaderEnd(b []byte) bool {
	return bytes.HasPrefix(b, []byte("\n")) || bytes.HasPrefix(b, []byte("\r\n")) ||
		bytes.Contains(b, []byte("\n\n")) || bytes.Contains(b, []byte("\n\r\n"))
}

func maildirMessages(t *testing.T, dir string) [][]byte {
	var out [][]byte
	for _, sub := range []string{"cur", "new"} {
		files, _ := filepath.Glob(filepath.Join(dir, sub, "*"))
		for _, fn := range files {
			b, err := os.ReadFile(fn)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

// TestCurl drives the server with curl's imap:// support: the folder list,
// every message of INBOX over one connection by URL globbing (non-PEEK
// BODY[]), and raw commands.
func TestCurl(t *testing.T) {
	bin := needTool(t, "curl")
	f := newFixture(t, 25, false)
	user := "alice@acme.example:" + password
	base := "imap://" + f.addr
	curl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-sS", "--max-time", "60", "--user", user}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	list := curl(base + "/")
	for _, want := range []string{`"/" INBOX`, `\Sent) "/" "Sent"`, `"Archive/sales@acme.example/INBOX"`} {
		if !strings.Contains(list, want) {
			t.Errorf("LIST lacks %s:\n%s", want, list)
		}
	}
	if strings.Contains(list, "bob@") || strings.Contains(list, "globex") {
		t.Errorf("LIST shows mail alice may not read:\n%s", list)
	}

	dir := t.TempDir()
	last := f.inbox[len(f.inbox)-1].uid
	curl(fmt.Sprintf("%s/INBOX;UID=[1-%d]", base, last), "-o", filepath.Join(dir, "msg_#1.eml"))
	for _, m := range f.inbox {
		got, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("msg_%d.eml", m.uid)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, m.raw) {
			t.Errorf("UID %d: curl got %d bytes that differ from the %d archived", m.uid, len(got), len(m.raw))
		}
	}

	out := curl(base+"/INBOX", "-X", "UID SEARCH ALL")
	if want := fmt.Sprintf("* SEARCH %s", joinUIDs(f.inbox)); !strings.Contains(out, want) {
		t.Errorf("UID SEARCH ALL: got %q, want %q", out, want)
	}
	// A section of one message, by URL.
	m := f.inbox[3]
	got := curl(fmt.Sprintf("%s/INBOX;UID=%d;SECTION=HEADER.FIELDS%%20(MESSAGE-ID)", base, m.uid))
	i := bytes.Index(m.raw, []byte("\r\nMessage-ID: ")) + 2
	j := i + bytes.Index(m.raw[i:], []byte("\r\n")) + 2
	if want := string(m.raw[i:j]) + "\r\n"; got != want {
		t.Errorf("HEADER.FIELDS (MESSAGE-ID): got %q, want %q", got, want)
	}
}

func joinUIDs(l []archived) string {
	var b strings.Builder
	for i, m := range l {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, m.uid)
	}
	return b.String()
}

// pythonScript is run with python3's imaplib; it prints JSON. It covers
// what scripts and simple clients do: capabilities, ID (unsupported: BAD,
// the session goes on), listing, STATUS, EXAMINE, one FETCH of every body,
// sections, partials, BINARY, and every write command, which must fail
// without losing anything.
const pythonScript = `
import imaplib, json, sys
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
out = {}
M = imaplib.IMAP4(host, port)
out["caps"] = list(M.capabilities)
M.login(user, pw)
# ID (RFC 2971) names the server.
typ, _ = M.xatom("ID", '("name" "imaplib")')
out["id"] = typ + " " + M.response("ID")[1][0].decode()
typ, d = M.list()
out["list"] = [x.decode() for x in d]
typ, d = M.status("INBOX", "(MESSAGES UNSEEN UIDNEXT SIZE)")
out["status"] = d[0].decode()
typ, d = M.select("INBOX", readonly=True)
out["exists"] = int(d[0])
typ, d = M.uid("FETCH", "1:*", "(UID RFC822.SIZE BODY.PEEK[])")
bodies = {}
for x in d:
    if isinstance(x, tuple):
        head = x[0].decode()
        uid = head.split("UID ")[1].split(" ")[0]
        bodies[uid] = x[1].hex()
out["bodies"] = bodies
typ, d = M.uid("FETCH", sys.argv[5], "(BODY.PEEK[HEADER.FIELDS (Subject)] BODY.PEEK[TEXT]<10.30> BINARY.PEEK[2] BINARY.SIZE[2])")
out["sections"] = {x[0].decode(): x[1].hex() for x in d if isinstance(x, tuple)}
out["sections_tail"] = " ".join(x.decode() for x in d if not isinstance(x, tuple))
writes = {}
for name, args in [("CREATE", ("Trash",)), ("DELETE", ("INBOX",)), ("RENAME", ("INBOX", "Old")),
                   ("APPEND", ("INBOX", None, None, b"Subject: x\r\n\r\nhello\r\n")),
                   ("COPY", ("1:*", "Sent")), ("MOVE", ("1:*", "Sent")),
                   ("STORE", ("1:*", "+FLAGS", "(\\Deleted)")), ("EXPUNGE", ()), ("CLOSE", ())]:
    try:
        if name in ("COPY", "MOVE", "STORE"):
            typ, d = M.uid(name, *args)
        else:
            typ, d = getattr(M, name.lower())(*args)
        writes[name] = typ + " " + (d[0].decode() if d and d[0] else "")
    except imaplib.IMAP4.error as e:
        writes[name] = "error " + str(e)
    if name == "CLOSE":
        continue
    if M.state != "SELECTED":
        M.select("INBOX")
out["writes"] = writes
typ, d = M.select("INBOX")
out["exists_after"] = int(d[0])
typ, d = M.uid("STORE", sys.argv[5], "+FLAGS", "(\\Flagged $Important)")
out["store"] = [x.decode() for x in d]
typ, d = M.uid("SEARCH", None, "FLAGGED")
out["flagged"] = d[0].decode()
M.logout()
print(json.dumps(out))
`

func TestPythonImaplib(t *testing.T) {
	bin := needTool(t, "python3")
	f := newFixture(t, 30, false)
	script := filepath.Join(t.TempDir(), "client.py")
	writeFile(t, script, pythonScript)
	host, port, _ := net.SplitHostPort(f.addr)
	// A message with an attachment (part 2, base64).
	var probe archived
	for _, m := range f.inbox {
		if m.gen.HasAttch {
			probe = m
			break
		}
	}
	if probe.raw == nil {
		t.Fatal("no generated message has an attachment")
	}
	cmd := exec.Command(bin, script, host, port, "alice@acme.example", password, fmt.Sprint(probe.uid))
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, raw)
	}
	var out struct {
		Caps        []string          `json:"caps"`
		ID          string            `json:"id"`
		List        []string          `json:"list"`
		Status      string            `json:"status"`
		Exists      int               `json:"exists"`
		Bodies      map[string]string `json:"bodies"`
		Sections    map[string]string `json:"sections"`
		Tail        string            `json:"sections_tail"`
		Writes      map[string]string `json:"writes"`
		ExistsAfter int               `json:"exists_after"`
		Store       []string          `json:"store"`
		Flagged     string            `json:"flagged"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	for _, c := range []string{"IMAP4REV1", "IMAP4REV2", "STARTTLS", "ID"} {
		if !slices.Contains(out.Caps, c) {
			t.Errorf("capabilities %v lack %s", out.Caps, c)
		}
	}
	if !strings.HasPrefix(out.ID, `OK ("name" "mailvault" "version" "`) {
		t.Errorf("ID: got %q", out.ID)
	}
	if out.Exists != len(f.inbox) || out.ExistsAfter != len(f.inbox) {
		t.Errorf("EXISTS %d before and %d after the write attempts, want %d", out.Exists, out.ExistsAfter, len(f.inbox))
	}
	if !strings.Contains(out.Status, fmt.Sprintf("MESSAGES %d", len(f.inbox))) || !strings.Contains(out.Status, "UNSEEN 0") {
		t.Errorf("STATUS %q", out.Status)
	}
	if len(out.Bodies) != len(f.inbox) {
		t.Errorf("fetched %d bodies, want %d", len(out.Bodies), len(f.inbox))
	}
	for _, m := range f.inbox {
		if got := out.Bodies[fmt.Sprint(m.uid)]; got != fmt.Sprintf("%x", m.raw) {
			t.Errorf("UID %d: body differs from the archived bytes", m.uid)
		}
	}
	// Sections, computed here from the generated message.
	subject := "Subject: " + probe.gen.Subject + "\r\n\r\n"
	_, body, _ := bytes.Cut(probe.raw, []byte("\r\n\r\n"))
	attach := attachmentOf(t, probe.raw)
	want := map[string][]byte{`BODY[HEADER.FIELDS (SUBJECT)]`: []byte(subject), "BODY[TEXT]<10>": body[10:40], "BINARY[2]": attach}
	if len(out.Sections) != len(want) {
		t.Errorf("got sections %v, want %d", out.Sections, len(want))
	}
	for head, data := range out.Sections {
		found := false
		for key, w := range want {
			if strings.Contains(strings.ToUpper(head), strings.ToUpper(key)) {
				found = true
				if data != fmt.Sprintf("%x", w) {
					t.Errorf("%s: got %s, want %x", key, data, w)
				}
			}
		}
		if !found {
			t.Errorf("unexpected section %q", head)
		}
	}
	if !strings.Contains(out.Tail, fmt.Sprintf("BINARY.SIZE[2] %d", len(attach))) {
		t.Errorf("BINARY.SIZE[2]: got %q, want %d", out.Tail, len(attach))
	}
	for name, res := range out.Writes {
		switch name {
		case "EXPUNGE", "CLOSE":
			if !strings.HasPrefix(res, "OK") {
				t.Errorf("%s: %s, want OK (nothing is expunged)", name, res)
			}
		default:
			if !strings.Contains(res, "CANNOT") && !strings.Contains(res, "NOPERM") {
				t.Errorf("%s: %s, want NO [CANNOT] or [NOPERM]", name, res)
			}
		}
	}
	if len(out.Store) != 1 || !strings.Contains(out.Store[0], `\Flagged`) || !strings.Contains(out.Store[0], "$Important") {
		t.Errorf("STORE: %v", out.Store)
	}
	if out.Flagged != fmt.Sprint(probe.uid) {
		t.Errorf("SEARCH FLAGGED: %q, want %d", out.Flagged, probe.uid)
	}
	// Nothing was lost or changed in the archive.
	snapshotUnchanged(t, f)
}

// snapshotUnchanged checks alice's INBOX still holds exactly the archived
// messages.
func snapshotUnchanged(t *testing.T, f *fixture) {
	t.Helper()
	fi, err := f.acme.FolderByName("alice@acme.example", f.acme.Readable("alice@acme.example")[0].ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := f.acme.Snapshot("alice@acme.example", fi.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.UIDs) != len(f.inbox) {
		t.Fatalf("INBOX has %d messages, archived %d", len(snap.UIDs), len(f.inbox))
	}
	for i, mid := range snap.MIDs {
		raw, err := f.acme.RawMessage(t.Context(), mid)
		if err != nil {
			t.Fatal(err)
		}
		if snap.UIDs[i] != f.inbox[i].uid || !bytes.Equal(raw, f.inbox[i].raw) {
			t.Errorf("message UID %d changed", snap.UIDs[i])
		}
	}
}

// attachmentOf decodes the second part of a generated multipart message
// with the standard library.
func attachmentOf(t *testing.T, raw []byte) []byte {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	if _, err := mr.NextRawPart(); err != nil {
		t.Fatal(err)
	}
	p, err := mr.NextRawPart()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOfflineimap syncs INBOX with offlineimap (Debian offlineimap3), which
// also probes the server's capabilities for ID before it authenticates.
func TestOfflineimap(t *testing.T) {
	bin := needTool(t, "offlineimap")
	f := newFixture(t, 20, false)
	host, port, _ := net.SplitHostPort(f.addr)
	dir := t.TempDir()
	rc := fmt.Sprintf(`[general]
accounts = archive
metadata = %[1]s/meta
[Account archive]
localrepository = local
remoterepository = remote
[Repository local]
type = Maildir
localfolders = %[1]s/Mail
[Repository remote]
type = IMAP
remotehost = %[2]s
remoteport = %[3]s
remoteuser = alice@acme.example
remotepass = %[4]s
ssl = no
starttls = no
readonly = True
folderfilter = lambda f: f == 'INBOX'
`, dir, host, port, password)
	writeFile(t, filepath.Join(dir, "offlineimaprc"), rc)
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "offlineimaprc"), "-o", "-u", "basic")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("offlineimap: %v\n%s", err, out)
	}
	got := maildirMessages(t, filepath.Join(dir, "Mail", "INBOX"))
	want := map[string]int{}
	for _, m := range f.inbox {
		want[maildirForm(m.raw)]++
	}
	if len(got) != len(f.inbox) {
		t.Errorf("offlineimap stored %d messages, want %d\n%s", len(got), len(f.inbox), out)
	}
	for _, b := range got {
		if h := maildirForm(b); want[h] > 0 {
			want[h]--
		} else {
			t.Errorf("a synced message differs from every archived one:\n%.300s", b)
		}
	}
}
