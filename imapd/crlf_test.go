package imapd

import (
	"context"
	"encoding/json"
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

// lfMessage has bare LF line ends but for one CRLF line, a quoted-printable
// text, a base64 attachment and an embedded message.
const lfMessage = "From: \"Bob\" <bob@acme.example>\nTo: alice@acme.example\nSubject: LF only\n" +
	"Message-ID: <lf@acme.example>\nDate: Fri, 01 Mar 2024 10:00:00 +0000\nMIME-Version: 1.0\n" +
	"Content-Type: multipart/mixed; boundary=\"b1\"\n\n" +
	"--b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n" +
	"caf=C3=A9 line one\nalready crlf\r\nsoft=\n break\n" +
	"--b1\nContent-Type: application/octet-stream; name=\"a.bin\"\nContent-Transfer-Encoding: base64\n\n" +
	"AAECAwQFBgcICQoLDA0O\nDxAREhM=\n" +
	"--b1\nContent-Type: message/rfc822\n\n" +
	"From: carol@acme.example\nSubject: inner\n\ninner body\ntwo\n" +
	"--b1--\n"

// fetchScript prints, as JSON, each FETCH response of UID 1 of a folder
// (literals hex-encoded), STATUS SIZE and SEARCH LARGER/SMALLER.
const fetchScript = `
import imaplib, json, sys
host, port, user, pw, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
M = imaplib.IMAP4(host, port)
M.login(user, pw)
out = {}
for folder in ("LF", "CRLF"):
    r = {}
    typ, d = M.status(folder, "(SIZE)")
    r["status"] = d[0].decode().split(" ", 1)[1]
    M.select(folder, readonly=True)
    for items in ["(RFC822.SIZE BODYSTRUCTURE)", "(RFC822)", "(BODY.PEEK[])", "(BINARY.PEEK[])",
                  "(BODY.PEEK[HEADER])", "(BODY.PEEK[HEADER.FIELDS (Subject To)])", "(BODY.PEEK[TEXT])",
                  "(BODY.PEEK[1])", "(BODY.PEEK[1.MIME])", "(BINARY.PEEK[1])", "(BINARY.SIZE[1] BINARY.SIZE[3])",
                  "(BINARY.PEEK[2])", "(BODY.PEEK[3])", "(BODY.PEEK[3.HEADER])", "(BODY.PEEK[3.TEXT])",
                  "(BODY.PEEK[]<10.60>)", "(BODY.PEEK[]<18.1>)", "(BODY.PEEK[]<19.3>)", "(BINARY.PEEK[1]<3.20>)", "(BINARY.PEEK[3]<5.9>)",
                  "(BODY.PEEK[TEXT]<0.100000>)"]:
        typ, d = M.uid("FETCH", "1", items)
        r[items] = "".join(x[0].decode() + x[1].hex() if isinstance(x, tuple) else x.decode() for x in d)
    typ, d = M.uid("SEARCH", None, "LARGER", str(int(size) - 1))
    r["larger"] = d[0].decode()
    typ, d = M.uid("SEARCH", None, "SMALLER", str(int(size) + 1))
    r["smaller"] = d[0].decode()
    out[folder] = r
M.logout()
print(json.dumps(out))
`

// TestBareLFServedAsCRLF: a message archived with bare LF line ends is
// presented over IMAP exactly as the same message with CRLF would be, as
// Dovecot does (sizes, line counts, every section, partials, BINARY),
// while the archive keeps its bytes.
func TestBareLFServedAsCRLF(t *testing.T) {
	bin := needTool(t, "python3")
	f := newFixture(t, 0, false)
	lf := []byte(lfMessage)
	crlf := []byte(strings.ReplaceAll(strings.ReplaceAll(lfMessage, "\r\n", "\n"), "\n", "\r\n"))
	if strings.Contains(strings.ReplaceAll(string(crlf), "\r\n", ""), "\n") {
		t.Fatal("the CRLF form still has a bare LF")
	}
	date := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	stored := f.ingest(t, f.acme, "alice@acme.example", "LF", []mailgen.Message{{Raw: lf, Date: date}})
	f.ingest(t, f.acme, "alice@acme.example", "CRLF", []mailgen.Message{{Raw: crlf, Date: date}})

	script := filepath.Join(t.TempDir(), "fetch.py")
	writeFile(t, script, fetchScript)
	host, port, _ := net.SplitHostPort(f.addr)
	cmd := exec.Command(bin, script, host, port, "alice@acme.example", password, fmt.Sprint(len(crlf)))
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, raw)
	}
	var out map[string]map[string]string
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	for k, want := range out["CRLF"] {
		if got := out["LF"][k]; got != want {
			t.Errorf("%s:\n LF   %s\n CRLF %s", k, got, want)
		}
	}
	if got := out["LF"]["(BODY.PEEK[])"]; !strings.HasSuffix(got, fmt.Sprintf("{%d}%x)", len(crlf), crlf)) {
		t.Errorf("BODY[] is not the CRLF form: %s", got)
	}
	if got := out["LF"]["(RFC822.SIZE BODYSTRUCTURE)"]; !strings.Contains(got, fmt.Sprintf("RFC822.SIZE %d", len(crlf))) {
		t.Errorf("RFC822.SIZE is not the CRLF size %d: %s", len(crlf), got)
	}
	if got := out["LF"]["larger"]; got != "1" {
		t.Errorf("SEARCH LARGER %d: %q", len(crlf)-1, got)
	}
	// The archive keeps the bytes as they came (verify, export, JMAP).
	snap, err := f.acme.Snapshot("alice@acme.example", folderID(t, f, "LF"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.acme.RawMessage(context.Background(), snap.MIDs[0])
	if err != nil || string(got) != lfMessage || stored[0].uid != 1 {
		t.Errorf("archived bytes changed: %v %q", err, got)
	}
}

func folderID(t *testing.T, f *fixture, name string) uint64 {
	t.Helper()
	fi, err := f.acme.FolderByName("alice@acme.example", f.acme.Readable("alice@acme.example")[0].ID, name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ID
}

// TestBinaryQPTrailingBlanks: BINARY of a quoted-printable part drops the
// blanks that end its encoded lines (RFC 2045 6.7) and keeps encoded ones.
func TestBinaryQPTrailingBlanks(t *testing.T) {
	f := newFixture(t, 0, false)
	f.wireFolder(t, "QP", "From: bob@acme.example\r\nTo: alice@acme.example\r\nSubject: qp\r\n"+
		"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"+
		"one \t\r\nkeep=20\r\nsoft=  \r\nbreak\r\n")
	c := dialRaw(t, f.addr)
	c.login("alice@acme.example")
	c.OK("EXAMINE QP")
	want := "one\r\nkeep \r\nsoftbreak\r\n"
	u := c.OK("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])")
	if len(u) != 1 || !strings.Contains(u[0], fmt.Sprintf("BINARY[1] ~{%d}%s", len(want), want)) || !strings.Contains(u[0], fmt.Sprintf("BINARY.SIZE[1] %d", len(want))) {
		t.Errorf("BINARY of quoted-printable: %q, want %q", u, want)
	}
}
