package tests

import (
	"context"
	"encoding/json"
	"net"
	"net/smtp"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/server"
)

// journalReport is an envelope journal report as Exchange sends it, with
// original attached as message/rfc822.
func journalReport(original string) string {
	return "From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@acme.example>\r\n" +
		"To: journal@acme.example\r\nSubject: Offer\r\nX-MS-Journal-Report:\r\n" +
		"Content-Type: multipart/mixed; boundary=\"_000_report_\"\r\nMIME-Version: 1.0\r\n\r\n" +
		"--_000_report_\r\nContent-Type: text/plain\r\n\r\n" +
		"Sender: alice@acme.example\r\nSubject: Offer\r\nMessage-Id: <offer@acme.example>\r\n" +
		"To: bob@acme.example\r\nBcc: carol@acme.example\r\n\r\n" +
		"--_000_report_\r\nContent-Type: message/rfc822\r\n\r\n" + original +
		"\r\n--_000_report_--\r\n"
}

// TestMalformedJournalReport delivers a journal report cut off inside its
// attached original over SMTP: it is archived as received in the journal
// mailbox's "Journal reports" and nowhere else, logged and counted; a whole
// report next to it is unwrapped for sender and recipients.
func TestMalformedJournalReport(t *testing.T) {
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	for _, u := range []string{"alice", "bob", "carol"} {
		in.mustCLI("user", "add", "-tenant", "acme", u+"@acme.example", "-password", u+"-secret")
	}
	in.mustCLI("user", "add", "-tenant", "acme", "legal@acme.example", "-password", "legal-secret", "-role", "compliance")
	in.mustCLI("journal", "allow", "-tenant", "acme", "127.0.0.1/32")

	original := "From: Alice <alice@acme.example>\r\nTo: bob@acme.example\r\nSubject: Offer\r\n" +
		"Message-Id: <offer@acme.example>\r\n\r\nThe price is 1,000 EUR per unit, valid until\r\n"
	whole := journalReport(original)
	// The report breaks off in the original, at a line end as SMTP
	// delivers it.
	cut := whole[:strings.Index(whole, "valid until")] + "\r\n"
	originalCut := original[:strings.Index(original, "valid until")] + "\r\n"
	second := strings.Replace(original, "Offer", "Second offer", 2)
	other := journalReport(second)
	for _, msg := range []string{cut, other} {
		if err := sendPlain(in.SMTP, "journal@exchange.acme.example", "journal@acme.example", msg); err != nil {
			t.Fatalf("SMTP delivery: %v", err)
		}
	}

	var st server.AllStats
	if err := in.client().Do("GET", "/api/v1/stats", nil, &st); err != nil {
		t.Fatal(err)
	}
	smtpStats, _ := json.Marshal(st.Endpoints["smtp"])
	if !strings.Contains(string(smtpStats), `"malformed_reports":1`) {
		t.Errorf("malformed report not counted: %s", smtpStats)
	}
	if !strings.Contains(in.logs(), "level=WARN msg=\"malformed journal report kept in the journal mailbox only\"") {
		t.Errorf("no warning logged:\n%s", in.logs())
	}
	in.stop()

	p := openData(t, in.dataDir)
	tn, err := p.Tenant(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		n := 0
		for folder, msgs := range readableContents(t, tn, u+"@acme.example") {
			for _, raw := range msgs {
				switch string(raw) {
				case second:
					n++
				case cut, originalCut:
					t.Errorf("%s reads the cut report or its cut original in %s", u, folder)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s holds the whole report's original %d times, want once", u, n)
		}
	}
	// The journal mailbox keeps the cut report byte-exact as evidence,
	// beside the whole report and its original.
	got := readableContents(t, tn, "legal@acme.example")
	var reports []string
	for folder, msgs := range got {
		for _, raw := range msgs {
			if string(raw) == cut && !strings.HasSuffix(folder, "/Journal reports") {
				t.Errorf("cut report filed in %s", folder)
			}
			if string(raw) == originalCut {
				t.Errorf("cut original filed in %s", folder)
			}
		}
		if strings.HasSuffix(folder, "/Journal reports") {
			for _, raw := range msgs {
				reports = append(reports, string(raw))
			}
		}
	}
	if len(reports) != 2 || !slices.Contains(reports, cut) || !slices.Contains(reports, other) {
		t.Errorf("journal reports folder holds %d messages, want the cut and the whole report", len(reports))
	}
}

// readableContents maps "mailbox/folder" -> raw messages of every archive
// mailbox login may read.
func readableContents(t *testing.T, tn *backend.Tenant, login string) map[string][][]byte {
	t.Helper()
	out := map[string][][]byte{}
	for _, mb := range tn.Readable(login) {
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
				out[mb.Address+"/"+f.Name] = append(out[mb.Address+"/"+f.Name], raw)
			}
		}
	}
	return out
}

// sendPlain delivers one message over SMTP without STARTTLS, as a mail
// server on an allowed network does.
func sendPlain(addr, from, to, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// TestREADMEJournalExample runs the README's journaling example: the
// network it allows is the one its swaks line sends from.
func TestREADMEJournalExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`mailvault journal allow -tenant acme (\S+)`).FindSubmatch(readme)
	s := regexp.MustCompile(`swaks --server (\S+):2525 --to (\S+) --from (\S+)`).FindSubmatch(readme)
	if m == nil || s == nil {
		t.Fatal("README has no journaling example")
	}
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("journal", "allow", "-tenant", "acme", string(m[1]))
	_, port, _ := net.SplitHostPort(in.SMTP)
	msg := "From: bob@acme.example\r\nTo: alice@acme.example\r\nSubject: test\r\n\r\nhello\r\n"
	if err := sendPlain(net.JoinHostPort(string(s[1]), port), string(s[3]), string(s[2]), msg); err != nil {
		t.Fatalf("the README example is refused: %v", err)
	}
}
