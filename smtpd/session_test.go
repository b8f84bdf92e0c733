package smtpd

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/conf"
)

func TestIngestFailedReplies(t *testing.T) {
	for _, tc := range []struct {
		err      error
		code     int
		enhanced smtp.EnhancedCode
	}{
		{fmt.Errorf("ingest: %w", backend.ErrQuota), 452, smtp.EnhancedCode{4, 2, 2}},
		{fmt.Errorf("store message: %w", &fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), 452, smtp.EnhancedCode{4, 3, 1}},
		{backend.ErrTenantClosed, 451, smtp.EnhancedCode{4, 3, 0}},
		{errors.New("commit metadata: i/o error"), 451, smtp.EnhancedCode{4, 3, 0}},
	} {
		r := ingestFailed(tc.err)
		if r.Code != tc.code || r.EnhancedCode != tc.enhanced || !r.Temporary() {
			t.Errorf("%v: %d %v %q", tc.err, r.Code, r.EnhancedCode, r.Message)
		}
	}
}

// TestFailuresAreRetried shows the answers a journaling MTA acts on: a full
// disk is 452 4.3.1 (retry) and the retry succeeds once there is space; a
// full quota is 452 4.2.2; an oversized message is 552. The archive runs on
// a small tmpfs, which needs root to mount.
func TestFailuresAreRetried(t *testing.T) {
	needTool(t, "swaks")
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dataDir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dataDir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dataDir).Run() })
	p := openProvider(t, dataDir)
	defer p.Close()
	acme := createTenant(t, p, tenantSpec{name: "acme", domains: []string{"acme.example"}, networks: []string{"127.0.0.1"}})
	createTenant(t, p, tenantSpec{name: "tiny", domains: []string{"tiny.example"}, networks: []string{"127.0.0.1"}, quota: 3000})
	_, addr := startServer(t, p, func(c *conf.SMTP) { c.MaxMessageBytes = 20000 })
	file := filepath.Join(t.TempDir(), "m.eml")
	os.WriteFile(file, []byte("From: a@acme.example\r\nSubject: retry\r\n\r\n"+strings.Repeat("body ", 300)+"\r\n"), 0o644)

	// Fill the disk: the message cannot be stored.
	ballast := filepath.Join(dataDir, "ballast")
	f, err := os.Create(ballast)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 8<<20)) // fails with ENOSPC once the disk is full
	f.Close()
	out := swaks(t, addr, "--from", "a@acme.example", "--to", "journal@acme.example", "--data", "@"+file)
	if serverReply(out, "452 4.3.1") == "" {
		t.Fatalf("full disk not answered 452 4.3.1:\n%s", out)
	}
	os.Remove(ballast)
	out = swaks(t, addr, "--from", "a@acme.example", "--to", "journal@acme.example", "--data", "@"+file)
	if serverReply(out, "250 2.0.0") == "" {
		t.Fatalf("retry not accepted:\n%s", out)
	}
	if n := len(folderContents(t, acme, officer+"@acme.example", "journal@acme.example", "INBOX")); n != 1 {
		t.Errorf("journal holds %d messages after the retry, want 1", n)
	}

	out = swaks(t, addr, "--from", "a@tiny.example", "--to", "journal@tiny.example", "--data", "@"+file)
	if serverReply(out, "250 2.0.0") == "" {
		t.Fatalf("first message within quota refused:\n%s", out)
	}
	out = swaks(t, addr, "--from", "a@tiny.example", "--to", "journal@tiny.example", "--body", strings.Repeat("more ", 300))
	if serverReply(out, "452 4.2.2") == "" {
		t.Errorf("full quota not answered 452 4.2.2:\n%s", out)
	}
	out = swaks(t, addr, "--from", "a@acme.example", "--to", "journal@acme.example", "--body", strings.Repeat("big ", 6000))
	if serverReply(out, "552 5.3.4") == "" {
		t.Errorf("oversized message not answered 552 5.3.4:\n%s", out)
	}
}

// TestIdleTimeout: the read timeout is per read, so a body trickling in for
// longer than the timeout is taken, and only a silent client is cut off.
func TestIdleTimeout(t *testing.T) {
	p := openProvider(t, t.TempDir())
	defer p.Close()
	acme := createTenant(t, p, tenantSpec{name: "acme", domains: []string{"acme.example"}, networks: []string{"127.0.0.1"}})
	const timeout = time.Second
	_, addr := startServer(t, p, func(c *conf.SMTP) { c.ReadTimeout = conf.Duration{Duration: timeout} })

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	expect := func(code string) string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %s: %v", code, err)
			}
			if !strings.HasPrefix(line, code) {
				t.Fatalf("want %s, got %q", code, line)
			}
			if line[3] == ' ' {
				return line
			}
		}
	}
	expect("220")
	for _, cmd := range []struct{ line, code string }{
		{"EHLO slow.test", "250"}, {"MAIL FROM:<a@acme.example>", "250"},
		{"RCPT TO:<journal@acme.example>", "250"}, {"DATA", "354"},
	} {
		fmt.Fprintf(c, "%s\r\n", cmd.line)
		expect(cmd.code)
	}
	body := "Subject: slow link\r\n\r\n"
	fmt.Fprint(c, body)
	start := time.Now()
	for i := 0; i < 12; i++ {
		time.Sleep(timeout / 4)
		line := fmt.Sprintf("chunk %d of a body that takes longer than the read timeout\r\n", i)
		body += line
		fmt.Fprint(c, line)
	}
	fmt.Fprint(c, ".\r\n")
	expect("250")
	if time.Since(start) < 2*timeout {
		t.Fatal("the body arrived too fast to test anything")
	}
	checkPlaced(t, acme, []want{{officer + "@acme.example", "journal@acme.example", "INBOX", []byte(body)}})

	// Silence is cut off after the timeout.
	start = time.Now()
	line := expect("421")
	if d := time.Since(start); d > 4*timeout {
		t.Errorf("idle connection closed after %v (%q)", d, line)
	}
}

func TestPerSecond(t *testing.T) {
	now := time.Now()
	c := &counters{started: now.Add(-10 * time.Second)}
	if r := c.perSecond(now, 50); r != 5 {
		t.Errorf("first minute: %v/s, want 5", r)
	}
	c = &counters{started: now.Add(-5 * time.Minute)}
	c.samples[0] = sample{at: now.Add(-65 * time.Second), accepted: 0}
	c.samples[1] = sample{at: now.Add(-55 * time.Second), accepted: 100}
	c.samples[2] = sample{at: now.Add(-5 * time.Second), accepted: 600}
	if r := c.perSecond(now, 650); r != 10 {
		t.Errorf("last minute: %v/s, want 10", r)
	}
}
