package tests

import (
	"fmt"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailvault/mailvault/internal/imapwire"
)

// dovecotIMAP starts Debian's Dovecot imap process on a fresh Maildir,
// logged in (PREAUTH) as alice and talking over its standard input and
// output. The test is skipped when Dovecot is not installed (scripts/test
// installs dovecot-imapd).
func dovecotIMAP(t *testing.T) *imapwire.Conn {
	t.Helper()
	var bin string
	for _, p := range []string{"/usr/lib/dovecot/imap", "/usr/libexec/dovecot/imap"} {
		if _, err := os.Stat(p); err == nil {
			bin = p
		}
	}
	if bin == "" {
		t.Skip("Dovecot is not installed (Debian package dovecot-imapd)")
	}
	// Dovecot refuses to give root access to mail: as root it runs as
	// nobody, in a directory of its own that nobody can reach.
	dir, err := os.MkdirTemp("", "dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The archive's layout: "/" as the delimiter, INBOX and Sent (\Sent)
	// subscribed.
	conf := fmt.Sprintf(`base_dir = %[1]s/run
log_path = %[1]s/dovecot.log
mail_location = maildir:%[1]s/mail:LAYOUT=fs
protocols = imap
ssl = no
namespace inbox {
  inbox = yes
  separator = /
  mailbox INBOX {
    auto = subscribe
  }
  mailbox Sent {
    auto = subscribe
    special_use = \Sent
  }
}
`, dir)
	if err := os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "dovecot.conf"))
	cmd.Env = []string{"USER=alice", "HOME=" + dir, "PATH=/usr/bin:/bin"}
	if os.Geteuid() == 0 {
		const nobody = 65534
		if err := os.Chown(dir, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(dir, "dovecot.conf"), nobody, nobody); err != nil {
			t.Fatal(err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	c := imapwire.OnPipes(t, stdin, stdout, func() { cmd.Process.Kill() })
	if g := c.Line(); !strings.HasPrefix(g, "* PREAUTH") {
		log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
		t.Fatalf("Dovecot greeting %q\n%s\n%s", g, stderr.String(), log)
	}
	return c
}

// compareMessages are the messages both servers hold: plain and MIME
// structures, address forms and header encodings that the ENVELOPE,
// BODYSTRUCTURE, section and SEARCH answers depend on.
var compareMessages = []string{
	// Every envelope field.
	"Date: Sat, 03 Feb 2024 01:02:03 +0200\r\nSubject: quarterly figures\r\nFrom: Anna Berg <anna@partner.example>\r\n" +
		"Sender: Office <office@partner.example>\r\nReply-To: Replies <replies@partner.example>\r\nTo: Alice Smith <alice@acme.example>\r\n" +
		"Cc: Carol <carol@acme.example>\r\nBcc: Dave <dave@acme.example>\r\nIn-Reply-To: <earlier@partner.example>\r\n" +
		"Message-ID: <figures.4711@partner.example>\r\nX-Ticket: T-1234\r\n\r\nThe quarterly figures are attached below.\r\nRegards, Anna\r\n",
	// Only From and Date.
	"Date: Sun, 04 Feb 2024 10:00:00 +0000\r\nFrom: user@domain.example\r\n\r\nno subject here\r\n",
	// Groups, an empty group, comments and a quoted local part.
	"Date: Mon, 05 Feb 2024 11:30:00 -0500\r\nFrom: \"Berg, Anna\" <anna@partner.example> (sales)\r\n" +
		"To: undisclosed-recipients:;\r\nCc: team: bob@acme.example, \"Carol C.\" <carol@acme.example>;, \"odd local\"@acme.example\r\n" +
		"Subject: groups\r\nMessage-ID: <groups@partner.example>\r\n\r\nbody with groups\r\n",
	// Encoded words in the subject and display names.
	"Date: Tue, 06 Feb 2024 08:15:00 +0100\r\nFrom: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <juergen@acme.example>\r\n" +
		"To: =?ISO-8859-1?Q?Ren=E9?= <rene@partner.example>\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n" +
		"Message-ID: <koeln@acme.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln, die Stra\xc3\x9fe ist gesperrt.\r\n",
	// multipart/alternative, quoted-printable.
	"Date: Wed, 07 Feb 2024 09:00:00 +0000\r\nFrom: news@partner.example\r\nTo: alice@acme.example\r\nSubject: newsletter\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"alt-1\"\r\n\r\npreamble\r\n--alt-1\r\n" +
		"Content-Type: text/plain; charset=\"iso-8859-1\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 opening =\r\nhours\r\n" +
		"--alt-1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Caf\xc3\xa9 opening hours</p>\r\n--alt-1--\r\nepilogue\r\n",
	// multipart/mixed with a base64 attachment and every content field.
	"Date: Thu, 08 Feb 2024 14:45:00 +0000\r\nFrom: anna@partner.example\r\nTo: alice@acme.example\r\nSubject: contract draft\r\n" +
		"Message-ID: <contract@partner.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=mix\r\n\r\n--mix\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n\r\nPlease find the contract attached.\r\n--mix\r\n" +
		"Content-Type: application/pdf; name=\"contract.pdf\"\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <part2@partner.example>\r\n" +
		"Content-Description: the contract\r\nContent-Disposition: attachment; filename=\"contract.pdf\"; size=64\r\n" +
		"Content-Language: en, de\r\nContent-Location: http://partner.example/contract.pdf\r\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\r\n" +
		"JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n--mix--\r\n",
	// A forwarded message (message/rfc822) holding a multipart.
	"Date: Fri, 09 Feb 2024 16:00:00 +0000\r\nFrom: bob@acme.example\r\nTo: alice@acme.example\r\nSubject: Fwd: newsletter\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n" +
		"--outer\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n" +
		"Date: Wed, 07 Feb 2024 09:00:00 +0000\r\nFrom: news@partner.example\r\nTo: bob@acme.example\r\nSubject: inner newsletter\r\n" +
		"Message-ID: <inner@partner.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"in\"\r\n\r\n" +
		"--in\r\nContent-Type: text/plain\r\n\r\ninner plain text\r\n--in\r\nContent-Type: text/html\r\n\r\n<b>inner html</b>\r\n--in--\r\n" +
		"--outer--\r\n",
	// multipart/related inside multipart/mixed, with an image.
	"Date: Sat, 10 Feb 2024 12:00:00 +0100\r\nFrom: design@partner.example\r\nTo: alice@acme.example, bob@acme.example\r\nSubject: logo proposal\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"m1\"\r\n\r\n--m1\r\nContent-Type: multipart/related; boundary=\"r1\"; type=\"text/html\"\r\n\r\n" +
		"--r1\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<img src=\"cid:logo\">\r\n--r1\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--r1--\r\n--m1\r\nContent-Type: text/plain; format=flowed; delsp=yes\r\n\r\nnotes \r\nflowed\r\n--m1--\r\n",
	// Source route, a folded header, a long body for partial fetches.
	"Date: Sun, 11 Feb 2024 07:07:07 +0000\r\nFrom: <@relay.example:route@partner.example>\r\nTo: alice@acme.example\r\n" +
		"Subject: a long subject line that is folded\r\n over two lines\r\nMessage-ID: <long@partner.example>\r\nX-Ticket: T-5678\r\n\r\n" +
		strings.Repeat("line of the long report with the word budget in it\r\n", 400),
	// RFC 2231 parameters and an unknown transfer encoding name case.
	"Date: Mon, 12 Feb 2024 13:13:13 +0000\r\nFrom: anna@partner.example\r\nTo: alice@acme.example\r\nSubject: invoice\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\ninvoice 2024-02\r\n--b\r\n" +
		"Content-Type: application/octet-stream; name*=UTF-8''Rechnung%20M%C3%A4rz.bin\r\nContent-Disposition: attachment; filename*0=\"Rech\"; filename*1=\"nung.bin\"\r\n" +
		"Content-Transfer-Encoding: BASE64\r\n\r\nAAECAwQFBgc=\r\n--b--\r\n",
	// Reply with References, sent by alice.
	"Date: Tue, 13 Feb 2024 18:30:00 +0000\r\nFrom: Alice Smith <alice@acme.example>\r\nTo: Anna Berg <anna@partner.example>\r\n" +
		"Subject: Re: quarterly figures\r\nIn-Reply-To: <figures.4711@partner.example>\r\nReferences: <earlier@partner.example> <figures.4711@partner.example>\r\n" +
		"Message-ID: <reply.1@acme.example>\r\n\r\nThanks, the budget looks fine.\r\n",
	// A date without weekday, in an unknown zone (-0000), with a comment.
	"Date: 14 Feb 2024 06:00:00 -0000 (UTC)\r\nFrom: cron@acme.example\r\nTo: alice@acme.example\r\nSubject: nightly report\r\n\r\nall jobs done\r\n",
}

// compareCommands run on both servers after SELECT INBOX, in order.
var compareCommands = []string{
	"FETCH 1:* (FLAGS)",
	"FETCH 1:* (UID RFC822.SIZE INTERNALDATE)",
	"FETCH 1:* (ENVELOPE)",
	"FETCH 1:* (BODYSTRUCTURE)",
	"FETCH 1:* (BODY)",
	"FETCH 1:* (BODY.PEEK[])",
	"FETCH 1:* (BODY.PEEK[HEADER])",
	"FETCH 1:* (BODY.PEEK[TEXT])",
	"FETCH 1:* (BODY.PEEK[1])",
	"FETCH 1:* (BODY.PEEK[1.MIME])",
	"FETCH 1:* (BODY.PEEK[2])",
	"FETCH 1:* (BODY.PEEK[2.MIME])",
	"FETCH 1:* (BODY.PEEK[1.1])",
	"FETCH 1:* (BODY.PEEK[1.2])",
	"FETCH 7 (BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2.1] BODY.PEEK[2.2.MIME])",
	"FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT X-TICKET)])",
	"FETCH 1:* (BODY.PEEK[HEADER.FIELDS.NOT (FROM SUBJECT DATE)])",
	"FETCH 1:* (BODY.PEEK[]<0.20>)",
	"FETCH 1:* (BODY.PEEK[TEXT]<10.30>)",
	"FETCH 9 (BODY.PEEK[]<19000.5000>)",
	"FETCH 1:* (RFC822.HEADER)",
	"FETCH 1:* (RFC822.TEXT)",
	"FETCH 1:* (BINARY.PEEK[1] BINARY.SIZE[1])",
	"FETCH 5 (BINARY.PEEK[1] BINARY.PEEK[2])",
	"FETCH 6 (BINARY.PEEK[2] BINARY.SIZE[2])",
	"UID FETCH 1:* (FLAGS)",
	"UID FETCH 3,5:7 (RFC822.SIZE)",
	"STORE 2 +FLAGS (\\Flagged)",
	"STORE 3 +FLAGS ($Work)",
	"STORE 4 -FLAGS (\\Seen)",
	"STORE 5 +FLAGS.SILENT (\\Answered \\Draft)",
	"UID STORE 6 +FLAGS (\\Flagged)",
	"FETCH 1:* (FLAGS)",
	"SEARCH ALL",
	"SEARCH 2:4",
	"SEARCH UID 3:*",
	"SEARCH SEEN",
	"SEARCH UNSEEN",
	"SEARCH FLAGGED",
	"SEARCH KEYWORD $Work",
	"SEARCH UNKEYWORD $Work",
	"SEARCH ANSWERED DRAFT",
	"SEARCH NOT FLAGGED",
	"SEARCH OR FLAGGED UNSEEN",
	"SEARCH LARGER 1000",
	"SEARCH SMALLER 400",
	"SEARCH OR LARGER 5000 SMALLER 300",
	"SEARCH SINCE 8-Feb-2024",
	"SEARCH BEFORE 8-Feb-2024",
	"SEARCH ON 10-Feb-2024",
	"SEARCH SENTSINCE 8-Feb-2024",
	"SEARCH SENTBEFORE 6-Feb-2024",
	"SEARCH SENTON 5-Feb-2024",
	"SEARCH FROM anna@partner.example",
	"SEARCH FROM partner.example",
	"SEARCH TO alice@acme.example",
	"SEARCH CC carol",
	"SEARCH BCC dave@acme.example",
	"SEARCH SUBJECT newsletter",
	"SEARCH SUBJECT \"quarterly figures\"",
	"SEARCH BODY budget",
	"SEARCH TEXT budget",
	"SEARCH BODY \"contract attached\"",
	"SEARCH HEADER X-Ticket T-1234",
	"SEARCH HEADER X-Ticket \"\"",
	"SEARCH HEADER Message-ID <contract@partner.example>",
	"SEARCH NOT SUBJECT newsletter",
	"SEARCH (FROM anna SINCE 1-Feb-2024) NOT TO bob",
	"UID SEARCH SUBJECT invoice",
	"SORT (ARRIVAL) UTF-8 ALL",
	"SORT (DATE) UTF-8 ALL",
	"SORT (REVERSE DATE) UTF-8 ALL",
	"SORT (SIZE) UTF-8 ALL",
	"SORT (SUBJECT) UTF-8 ALL",
	"SORT (FROM) UTF-8 ALL",
	"SORT (TO) UTF-8 ALL",
	"SORT (CC) UTF-8 ALL",
	"SORT (SUBJECT REVERSE ARRIVAL) UTF-8 SINCE 6-Feb-2024",
	"UID SORT (DATE) UTF-8 ALL",
	"THREAD ORDEREDSUBJECT UTF-8 ALL",
	"THREAD REFERENCES UTF-8 ALL",
	"STATUS INBOX (MESSAGES UIDNEXT UNSEEN)",
	"LIST \"\" \"\"",
	"LIST \"\" \"*\"",
	"LIST \"\" \"%\"",
	"LSUB \"\" \"*\"",
	"NAMESPACE",
	"EXAMINE INBOX",
	"FETCH 1 (FLAGS)",
	"SELECT INBOX",
	// Writes: the archive refuses what Dovecot does.
	"STORE 1 +FLAGS (\\Deleted)",
	"COPY 1 INBOX",
	"MOVE 11 INBOX",
	appendCommand,
	"CREATE Trash",
	"RENAME Sent Old",
	"DELETE INBOX",
	"EXPUNGE",
	"UID SEARCH ALL",
}

const appendCommand = "APPEND INBOX {24+}\r\nSubject: x\r\n\r\nappended\r\n"

// difference is an answer in which mailvault differs from Dovecot on
// purpose: for the FETCH items of the messages listed, or, without
// messages, in the whole answer. docs/imap.md lists each with its reason.
type difference struct {
	cmd  string
	msgs []int
	why  string
	// flags: the difference is \Deleted in FLAGS and PERMANENTFLAGS only.
	flags bool
}

var differences = []difference{
	// A read-only archive must differ.
	{"SELECT INBOX", nil, "FLAGS and PERMANENTFLAGS never offer \\Deleted", true},
	{"EXAMINE INBOX", nil, "FLAGS never offers \\Deleted", true},
	{"STORE 1 +FLAGS (\\Deleted)", nil, "no message can be marked \\Deleted", false},
	{"COPY 1 INBOX", nil, "messages cannot be copied into archive folders", false},
	{"MOVE 11 INBOX", nil, "messages cannot be moved", false},
	{appendCommand, nil, "messages enter by journaling or import only", false},
	{"CREATE Trash", nil, "folders come from ingest and import only", false},
	{"RENAME Sent Old", nil, "folders cannot be renamed", false},
	{"DELETE INBOX", nil, "folders cannot be deleted (Dovecot refuses INBOX without a code)", false},
	{"EXPUNGE", nil, "Dovecot removes what was marked \\Deleted or moved; the archive has nothing to remove", false},
	{"UID SEARCH ALL", nil, "Dovecot holds the copied, moved and appended messages, the archive what it held", false},
	{"NAMESPACE", nil, "other archive mailboxes the user may read are the shared namespace Archive/", false},
	// Deliberate, with the reason in docs/imap.md.
	{"FETCH 1:* (ENVELOPE)", []int{4}, "encoded words are decoded at ingest and written as UTF-8 encoded words", false},
	{"FETCH 1:* (BODYSTRUCTURE)", []int{5, 6, 7, 8, 10}, "lines, nested multipart ends, parameter order, RFC 2231, Content-MD5", false},
	{"FETCH 1:* (BODY)", []int{5, 6, 7, 8, 10}, "lines, nested multipart ends, parameter order, RFC 2231", false},
	{"FETCH 1:* (BODY.PEEK[1])", []int{8}, "a nested multipart ends at its close delimiter", false},
	{"FETCH 1:* (BODY.PEEK[2])", []int{7}, "a nested multipart ends at its close delimiter", false},
	{"FETCH 7 (BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2.1] BODY.PEEK[2.2.MIME])", []int{7}, "a nested multipart ends at its close delimiter", false},
	{"FETCH 1:* (BINARY.PEEK[1] BINARY.SIZE[1])", []int{8}, "BINARY of a multipart is the part as stored", false},
	{"FETCH 1:* (BODY.PEEK[1.1])", []int{5, 6, 7, 10}, "a part that is not multipart or a message has no part 1", false},
}

// TestCompareWithDovecot loads the same messages into mailvault (by the
// import CLI) and into Debian's Dovecot 2.3 (by APPEND), runs the same
// read-only commands on both - FETCH of every kind, SEARCH, STORE of the
// user's flags, STATUS, LIST, NAMESPACE, SELECT - and wants the same
// answers, modulo what may differ between any two servers (UIDVALIDITY,
// \Recent, the order of LIST lines, the wording of tagged OK). The answers
// a read-only archive must give differently are listed with their reason
// in archiveDifferences and in docs/imap.md.
func TestCompareWithDovecot(t *testing.T) {
	dc := dovecotIMAP(t)
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	dir := t.TempDir()
	for i, m := range compareMessages {
		date := messageDate(t, m)
		dc.OK(fmt.Sprintf("APPEND INBOX (\\Seen) %q {%d+}\r\n%s", date.Format("02-Jan-2006 15:04:05 -0700"), len(m), m))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("m%02d.eml", i)), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in.mustCLI("import", "-quiet", "-tenant", "acme", "-mailbox", "alice@acme.example", dir)
	mv := imapwire.Dial(t, in.IMAP)
	mv.OK(`LOGIN "alice@acme.example" "alice-secret"`)
	dc.OK("SELECT INBOX")
	mv.OK("SELECT INBOX")
	// Text search follows the index by a moment.
	deadline := time.Now().Add(30 * time.Second)
	for {
		u, _ := mv.Do("SEARCH BODY budget")
		if len(u) > 0 && u[0] != "* SEARCH" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	used := map[int]bool{}
	for _, cmd := range compareCommands {
		du, ds := dc.Do(cmd)
		mu, ms := mv.Do(cmd)
		want, got := canonicalAnswer(cmd, du, ds), canonicalAnswer(cmd, mu, ms)
		if i := slices.IndexFunc(differences, func(d difference) bool { return d.cmd == cmd && d.flags }); i >= 0 {
			// Only \Deleted may differ in the flags a folder offers;
			// everything else, keywords included, must be equal.
			for j, l := range want {
				if strings.HasPrefix(l, "* FLAGS ") || strings.HasPrefix(l, "* OK [PERMANENTFLAGS ") {
					want[j] = strings.Replace(l, " \\Deleted", "", 1)
					used[i] = used[i] || want[j] != l
				}
			}
		}
		if slices.Equal(want, got) {
			continue
		}
		var unexplained, explained []string
		for _, l := range answerDiff(want, got) {
			i := slices.IndexFunc(differences, func(d difference) bool { return d.covers(cmd, l) })
			if i < 0 {
				unexplained = append(unexplained, l)
				continue
			}
			used[i] = true
			explained = append(explained, l+"\n   ("+differences[i].why+")")
		}
		if len(explained) > 0 {
			t.Logf("%s: differs as documented:\n %s", firstLine(cmd), strings.Join(explained, "\n "))
		}
		if len(unexplained) > 0 {
			t.Errorf("%s:\n %s", firstLine(cmd), strings.Join(unexplained, "\n "))
		}
	}
	doc, err := os.ReadFile("../docs/imap.md")
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range differences {
		if !used[i] {
			// Fixed since: time to take it off the list and the docs.
			t.Logf("%s %v: listed as a difference but answered as Dovecot does", firstLine(d.cmd), d.msgs)
		}
		if !strings.Contains(string(doc), "`"+firstLine(d.cmd)+"`") {
			t.Errorf("docs/imap.md does not list the difference of `%s`", firstLine(d.cmd))
		}
	}
}

// covers reports whether a differing line of the answer to cmd is this
// difference.
func (d difference) covers(cmd, line string) bool {
	if d.cmd != cmd || d.flags {
		return false
	}
	if len(d.msgs) == 0 {
		return true
	}
	n, _, _ := strings.Cut(strings.TrimPrefix(line, "mailvault: "), " ")
	n = strings.TrimPrefix(n, "dovecot:")
	if strings.HasPrefix(line, "dovecot:") {
		n, _, _ = strings.Cut(strings.TrimSpace(strings.TrimPrefix(line, "dovecot:")), " ")
	}
	num, err := strconv.Atoi(n)
	return err == nil && slices.Contains(d.msgs, num)
}

func firstLine(cmd string) string {
	l, _, _ := strings.Cut(cmd, "\r\n")
	return l
}

// messageDate is the Date: field of a message.
func messageDate(t *testing.T, m string) time.Time {
	t.Helper()
	for _, l := range strings.Split(m, "\r\n") {
		if v, ok := strings.CutPrefix(l, "Date: "); ok {
			d, err := mail.ParseDate(v)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatalf("no Date in %.100q", m)
	return time.Time{}
}

// answerDiff returns the lines of each answer that the other lacks,
// marked with the server that gave them.
func answerDiff(dovecot, mailvault []string) []string {
	var out []string
	for _, l := range dovecot {
		if !slices.Contains(mailvault, l) {
			out = append(out, "dovecot:   "+l)
		}
	}
	for _, l := range mailvault {
		if !slices.Contains(dovecot, l) {
			out = append(out, "mailvault: "+l)
		}
	}
	return out
}

// canonicalAnswer writes an answer in a form that is equal for two servers
// that mean the same: FETCH items by message and name, flags sorted and
// without \Recent, dates as instants, SEARCH results sorted, other lines
// parsed and sorted; of the tagged status only its kind and response code.
func canonicalAnswer(cmd string, untagged []string, status string) []string {
	var lines []string
	fetch := map[int]map[string]string{}
	for _, l := range untagged {
		if n, items, ok := fetchItems(l); ok {
			if fetch[n] == nil {
				fetch[n] = map[string]string{}
			}
			for k, v := range items {
				switch k {
				case "FLAGS":
					v.list = slices.DeleteFunc(v.list, func(f wireValue) bool { return strings.EqualFold(f.s, `\Recent`) })
					fetch[n][k] = sortedFlags(v)
				case "INTERNALDATE":
					d, err := time.Parse("_2-Jan-2006 15:04:05 -0700", v.s)
					if err != nil {
						fetch[n][k] = v.String()
					} else {
						fetch[n][k] = d.UTC().Format(time.RFC3339)
					}
				default:
					fetch[n][k] = v.String()
				}
			}
			continue
		}
		if rest, ok := strings.CutPrefix(l, "* SEARCH"); ok {
			var nums []int
			for _, f := range strings.Fields(rest) {
				n, _ := strconv.Atoi(f)
				nums = append(nums, n)
			}
			slices.Sort(nums)
			lines = append(lines, fmt.Sprint("SEARCH ", nums))
			continue
		}
		switch {
		case strings.Contains(l, "[UIDVALIDITY "), strings.HasSuffix(l, " RECENT"), strings.HasPrefix(l, "* OK [HIGHESTMODSEQ"),
			strings.HasPrefix(l, "* OK [UNSEEN") && strings.HasPrefix(cmd, "SELECT"), strings.HasPrefix(l, "* OK [UNSEEN") && strings.HasPrefix(cmd, "EXAMINE"):
			// Differ between any two servers, or are advisory.
			continue
		case strings.HasPrefix(l, "* OK ") && !strings.HasPrefix(l, "* OK ["):
			continue // text only
		case strings.Contains(cmd, "STORE ") && (strings.HasPrefix(l, "* FLAGS ") || strings.HasPrefix(l, "* OK [PERMANENTFLAGS")):
			// Dovecot announces a new keyword at once; mailvault lists
			// it at the next SELECT (docs/imap.md).
			continue
		}
		if rest, ok := strings.CutPrefix(l, "* OK [PERMANENTFLAGS "); ok {
			rest, _, _ = strings.Cut(rest, "]")
			if vs, err := parseWire(rest); err == nil && len(vs) == 1 {
				lines = append(lines, "* OK [PERMANENTFLAGS "+sortedFlags(vs[0])+"]")
				continue
			}
		}
		if i := strings.Index(l, "] "); strings.HasPrefix(l, "* OK [") && i > 0 {
			l = l[:i+1] // the code, not the text
		}
		vs, err := parseWire(l)
		if err != nil {
			lines = append(lines, l)
			continue
		}
		if len(vs) > 0 && (strings.HasPrefix(l, "* LIST ") || strings.HasPrefix(l, "* LSUB ")) && vs[len(vs)-1].kind == 'a' {
			vs[len(vs)-1].kind = 's' // INBOX or "INBOX": the same name
		}
		parts := make([]string, len(vs))
		for i, v := range vs {
			parts[i] = v.String()
			if v.kind == 'l' && (i == 2 && vs[1].s == "FLAGS") {
				parts[i] = sortedFlags(v)
			}
		}
		lines = append(lines, strings.Join(parts, " "))
	}
	slices.Sort(lines)
	var nums []int
	for n := range fetch {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	for _, n := range nums {
		var keys []string
		for k := range fetch[n] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			lines = append(lines, fmt.Sprintf("%d %s %s", n, k, fetch[n][k]))
		}
	}
	kind, rest, _ := strings.Cut(status, " ")
	code := ""
	if strings.HasPrefix(rest, "[") {
		code, _, _ = strings.Cut(rest, "]")
		code += "]"
		if c, _, _ := strings.Cut(code, " "); strings.HasPrefix(code, "[READ-") || strings.HasPrefix(code, "[CANNOT") || strings.HasPrefix(code, "[NO") || strings.HasPrefix(code, "[TRY") {
			code = strings.TrimSuffix(c, "]") + "]"
		} else {
			code = "" // APPENDUID, COPYUID and such
		}
	}
	return append(lines, kind+" "+code)
}
