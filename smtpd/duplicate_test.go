package smtpd

import (
	"context"
	"net/smtp"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/index"
)

// TestDuplicateCopyKeepsRecipients sends one message three times as plain
// journal copies, as Exchange does when it bifurcates delivery: the second
// copy names an external Bcc recipient that no archive mailbox claims, so
// its batch adds neither a message nor a placement. That recipient must
// still be recorded (and searchable) once the server said 250.
func TestDuplicateCopyKeepsRecipients(t *testing.T) {
	ctx := context.Background()
	p := openProvider(t, t.TempDir())
	defer p.Close()
	acme := createTenant(t, p, tenantSpec{name: "acme", domains: []string{"acme.example"},
		users: []string{"alice", "bob"}, networks: []string{"127.0.0.1"}})
	_, addr := startServer(t, p)
	msg := smtpForm([]byte("From: alice@acme.example\r\nTo: bob@acme.example\r\nSubject: Vertrag\r\n" +
		"Message-ID: <contract@acme.example>\r\n\r\nAnbei der Vertrag.\r\n"))
	for _, rcpt := range []string{
		"journal+rcpt=bob=acme.example@acme.example",
		"journal+rcpt=legal=partner.example@acme.example",
		"journal+rcpt=bob=acme.example@acme.example",
	} {
		if err := sendPlain(addr, "alice@acme.example", rcpt, msg); err != nil {
			t.Fatalf("send to %s: %v", rcpt, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := acme.WaitIndexed(wctx); err != nil {
		t.Fatal(err)
	}
	login := officer + "@acme.example"
	var journal uint64
	for _, mb := range acme.Readable(login) {
		if mb.Kind == backend.KindJournal {
			folders, err := acme.Folders(login, mb.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range folders {
				if f.Name == backend.FolderInbox {
					journal = f.ID
				}
			}
		}
	}
	if journal == 0 {
		t.Fatal("no journal INBOX")
	}
	for _, r := range []string{"legal@partner.example", "bob@acme.example"} {
		uids, err := acme.SearchFolder(ctx, login, journal, index.Text(index.FieldBcc, r))
		if err != nil {
			t.Fatal(err)
		}
		if len(uids) != 1 {
			t.Errorf("BCC %s finds %d messages in the journal, want the one copy", r, len(uids))
		}
	}
	if n := acme.Stats().Messages; n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

// sendPlain delivers one message without STARTTLS, as a journaling MTA on
// a trusted network may; the reply to DATA is the archive's 250.
func sendPlain(addr, from, rcpt string, msg []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
