package smtpd

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// deliver runs one SMTP transaction on a plain socket and returns the reply
// to the end of DATA.
func deliver(t *testing.T, addr string, body []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func() string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if len(line) < 4 || line[3] != '-' {
				return strings.TrimSpace(line)
			}
		}
	}
	reply()
	for _, cmd := range []string{"EHLO mta.test", "MAIL FROM:<a@acme.example>", "RCPT TO:<journal@acme.example>", "DATA"} {
		fmt.Fprintf(c, "%s\r\n", cmd)
		if l := reply(); l[0] != '2' && l[0] != '3' {
			t.Fatalf("%s: %s", cmd, l)
		}
	}
	go func() { c.Write(append(body, ".\r\n"...)) }()
	return reply()
}

// TestLongLineArchived: a message line longer than any line limit (here 3
// MB, beyond the former 1 MiB) is data: archived byte for byte, not refused.
func TestLongLineArchived(t *testing.T) {
	p := openProvider(t, t.TempDir())
	defer p.Close()
	acme := createTenant(t, p, tenantSpec{name: "acme", domains: []string{"acme.example"}, networks: []string{"127.0.0.1"}})
	_, addr := startServer(t, p)
	body := []byte("From: a@acme.example\r\nSubject: one long line\r\n\r\n" + strings.Repeat("x", 3<<20) + "\r\nend\r\n")
	if l := deliver(t, addr, body); !strings.HasPrefix(l, "250 ") {
		t.Fatalf("long line: %s", l)
	}
	checkPlaced(t, acme, []want{{officer + "@acme.example", "journal@acme.example", "INBOX", body}})
}

// TestEmptyMessageArchived: an empty DATA is what the MTA sent: archived
// (zero bytes), as import archives an empty file.
func TestEmptyMessageArchived(t *testing.T) {
	p := openProvider(t, t.TempDir())
	defer p.Close()
	acme := createTenant(t, p, tenantSpec{name: "acme", domains: []string{"acme.example"}, networks: []string{"127.0.0.1"}})
	_, addr := startServer(t, p)
	if l := deliver(t, addr, nil); !strings.HasPrefix(l, "250 ") {
		t.Fatalf("empty message: %s", l)
	}
	checkPlaced(t, acme, []want{{officer + "@acme.example", "journal@acme.example", "INBOX", []byte{}}})
	if got := folderContents(t, acme, officer+"@acme.example", "journal@acme.example", "INBOX"); len(got) != 1 {
		t.Errorf("journal holds %d messages", len(got))
	}
}
