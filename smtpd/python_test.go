package smtpd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mailvault/mailvault/backend"
)

type pyJob struct {
	Kind        string   `json:"kind"`
	From        string   `json:"from"`
	To          []string `json:"to"`
	File        string   `json:"file,omitempty"`
	Original    string   `json:"original,omitempty"`
	Envelope    []string `json:"envelope,omitempty"`
	EnvelopeCTE string   `json:"envelope_cte,omitempty"`
	Subject     string   `json:"subject,omitempty"`
	Out         string   `json:"out,omitempty"`
}

type pyResult struct {
	Code  int    `json:"code"`
	Reply string `json:"reply"`
}

// sendPython delivers jobs with testdata/journal_sender.py over one session.
func sendPython(t *testing.T, addr string, jobs []pyJob) []pyResult {
	t.Helper()
	py := needTool(t, "python3")
	host, port, _ := strings.Cut(addr, ":")
	portN, _ := strconv.Atoi(port)
	spec, _ := json.Marshal(map[string]any{"host": host, "port": portN, "jobs": jobs})
	specFile := filepath.Join(t.TempDir(), "jobs.json")
	if err := os.WriteFile(specFile, spec, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, filepath.Join("testdata", "journal_sender.py"), specFile).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("journal_sender.py: %v\n%s", err, stderr)
	}
	var res []pyResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(jobs) {
		t.Fatalf("journal_sender.py output %q: %v", out, err)
	}
	return res
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPythonSenders delivers Exchange journal reports (Bcc, expanded lists,
// forwarding, two reports for one message), Google-style and
// address-encoded copies, broken messages and the real-world corpus with
// smtplib, and finds every original byte-exact in each mailbox it belongs
// to.
func TestPythonSenders(t *testing.T) {
	ctx := context.Background()
	p := openProvider(t, t.TempDir())
	defer p.Close()
	acme := createTenant(t, p, tenantSpec{name: "acme", domains: []string{"acme.example"},
		users:  []string{"alice", "bob", "carol", "dave", "erika", "frank", "ines"},
		shared: []string{"sales"}, networks: []string{"127.0.0.1"}, auto: true})
	if err := acme.Grant(ctx, "sales@acme.example", officer+"@acme.example"); err != nil {
		t.Fatal(err)
	}
	srv, addr := startServer(t, p)
	dir := t.TempDir()
	const journal = "journal@acme.example"
	officerLogin := officer + "@acme.example"

	orig1 := []byte("From: Alice <alice@acme.example>\r\nTo: bob@acme.example, Sales <sales@acme.example>\r\n" +
		"Cc: carol@acme.example\r\nSubject: Angebot =?utf-8?q?f=C3=BCr?= Q3\r\nDate: Mon, 2 Mar 2026 09:00:00 +0100\r\n" +
		"Message-ID: <q3-offer@acme.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		"Das Angebot liegt bei.\r\n.\r\n--_000_not_a_boundary\r\n")
	orig3 := []byte("From: bob@acme.example\r\nTo: team@partner.example\r\nSubject: google style\r\n" +
		"Message-ID: <g@acme.example>\r\n\r\nbody\r\n")
	google := append([]byte("X-Gm-Original-To: carol@acme.example\r\n"), orig3...)
	orig4 := []byte("From: dave@acme.example\r\nTo: undisclosed-recipients:;\r\nSubject: bcc only\r\n" +
		"Message-ID: <bcc@acme.example>\r\n\r\nonly the envelope knows alice\r\n")
	brokenReport := []byte("From: MicrosoftExchange@acme.example\r\nX-MS-Journal-Report:\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n" +
		"Sender: alice@acme.example\r\nTo: bob@acme.example\r\n--b--\r\n")
	garbage := []byte("\x00\xff\xfe no header at all\r\n\r\n\x01binary\r\n")

	envelope1 := []string{
		"Sender: alice@acme.example", "Subject: Angebot für Q3", "Message-Id: <q3-offer@acme.example>",
		"To: bob@acme.example", "Cc: carol@acme.example", "Bcc: dave@acme.example",
		"To: erika@acme.example, Expanded: sales@acme.example",
		"To: frank@acme.example, Expanded: sales@acme.example",
		"To: ines@acme.example, Forwarded: bob@acme.example",
	}
	// Bifurcation: a second report for the same message names a recipient
	// the first did not (unknown so far: the tenant creates its mailbox).
	envelope2 := []string{"Sender: alice@acme.example", "Subject: Angebot für Q3", "Message-Id: <q3-offer@acme.example>",
		"Bcc: zoe@acme.example"}
	jobs := []pyJob{
		{Kind: "exchange", From: "MicrosoftExchange@acme.example", To: []string{journal}, Original: writeFile(t, dir, "orig1.eml", orig1),
			Envelope: envelope1, EnvelopeCTE: "base64", Out: filepath.Join(dir, "report1.eml")},
		{Kind: "exchange", From: "MicrosoftExchange@acme.example", To: []string{journal}, Original: filepath.Join(dir, "orig1.eml"),
			Envelope: envelope2, EnvelopeCTE: "quoted-printable", Out: filepath.Join(dir, "report2.eml")},
		{Kind: "raw", From: "bob@acme.example", To: []string{journal}, File: writeFile(t, dir, "google.eml", google)},
		{Kind: "raw", From: "bounce@acme.example", To: []string{"journal+from=dave=acme.example@acme.example", "journal+rcpt=alice=acme.example@acme.example"},
			File: writeFile(t, dir, "orig4.eml", orig4)},
		{Kind: "raw", From: "MicrosoftExchange@acme.example", To: []string{journal}, File: writeFile(t, dir, "broken.eml", brokenReport)},
		{Kind: "raw", From: "", To: []string{journal}, File: writeFile(t, dir, "garbage.eml", garbage)},
	}
	// The real-world corpus, each message as a plain journal copy.
	var corpus [][]byte
	if cdir := filepath.Join(moduleRoot(t), "..", "shared", "corpus", "messages"); dirExists(cdir) {
		files, _ := filepath.Glob(filepath.Join(cdir, "*.eml"))
		for i, f := range files {
			m := smtpForm(readFile(t, f))
			corpus = append(corpus, m)
			jobs = append(jobs, pyJob{Kind: "raw", From: "corpus@acme.example", To: []string{journal}, File: writeFile(t, dir, fmt.Sprintf("c%d.eml", i), m)})
		}
	} else {
		t.Log("corpus not present: sending the built messages only")
	}

	res := sendPython(t, addr, jobs)
	for i, r := range res {
		if r.Code != 250 {
			t.Errorf("job %d (%s %s): %d %s", i, jobs[i].Kind, jobs[i].File, r.Code, r.Reply)
		}
	}
	// zoe's archive was created by the second report; her account comes later.
	if _, err := acme.CreateUser(ctx, backend.UserSpec{Login: "zoe@acme.example", Password: testPassword, Mailbox: true}); err != nil {
		t.Fatal(err)
	}

	wants := []want{
		{"alice@acme.example", "alice@acme.example", "Sent", orig1},
		{officerLogin, journal, "INBOX", orig1},
		{officerLogin, "sales@acme.example", "INBOX", orig1},
		{officerLogin, journal, backend.FolderJournalReports, readFile(t, filepath.Join(dir, "report1.eml"))},
		{officerLogin, journal, backend.FolderJournalReports, readFile(t, filepath.Join(dir, "report2.eml"))},
		{"carol@acme.example", "carol@acme.example", "INBOX", google},
		{"bob@acme.example", "bob@acme.example", "Sent", google},
		{officerLogin, journal, "INBOX", google},
		{"alice@acme.example", "alice@acme.example", "INBOX", orig4},
		{"dave@acme.example", "dave@acme.example", "Sent", orig4},
		{officerLogin, journal, "INBOX", orig4},
		{officerLogin, journal, backend.FolderJournalReports, brokenReport},
		{officerLogin, journal, "INBOX", garbage},
	}
	for _, u := range []string{"bob", "carol", "dave", "erika", "frank", "ines", "zoe"} {
		wants = append(wants, want{u + "@acme.example", u + "@acme.example", "INBOX", orig1})
	}
	for _, m := range corpus {
		wants = append(wants, want{officerLogin, journal, "INBOX", m})
	}
	checkPlaced(t, acme, wants)

	// The two reports of orig1 stored it once; the broken report is the
	// third, kept there only.
	if n := len(folderContents(t, acme, officerLogin, journal, backend.FolderJournalReports)); n != 3 {
		t.Errorf("journal reports folder holds %d reports, want 3", n)
	}
	if st := srv.Stats(); st.MalformedReports != 1 {
		t.Errorf("%d malformed reports counted, want 1", st.MalformedReports)
	}
	st := srv.Stats()
	if st.Accepted != int64(len(jobs)) || st.Duplicates < 1 || st.TempFailures != 0 {
		t.Errorf("stats %+v: want %d accepted, a duplicate, no failures", st, len(jobs))
	}
	rep, err := acme.Verify(ctx, nil)
	if err != nil || !rep.Clean() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
