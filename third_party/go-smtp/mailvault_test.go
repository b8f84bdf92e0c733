package smtp_test

// Test of the mailvault patch that limits only command lines (see
// third_party/README.md).

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestLongDataLine: a message line over MaxLineLength is data and is
// received byte for byte (write it in a goroutine: the server reads while
// the client writes), while a command line over the limit still ends the
// connection.
func TestLongDataLine(t *testing.T) {
	be, s, c, scanner := testServerAuthenticated(t)
	defer s.Close()
	defer c.Close()
	if s.MaxLineLength != 2000 {
		t.Fatalf("MaxLineLength %d, want the default 2000", s.MaxLineLength)
	}
	for _, cmd := range []string{"MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA"} {
		io.WriteString(c, cmd+"\r\n")
		scanner.Scan()
		if code := scanner.Text(); !strings.HasPrefix(code, "250 ") && !strings.HasPrefix(code, "354 ") {
			t.Fatalf("%s: %s", cmd, code)
		}
	}
	long := bytes.Repeat([]byte("0123456789"), 300_000) // 3 MB, one line
	body := "Subject: long line\r\n\r\n" + string(long) + "\r\nshort\r\n" + string(long[:5000])
	go io.WriteString(c, body+"\r\n.\r\n")
	scanner.Scan()
	if !strings.HasPrefix(scanner.Text(), "250 ") {
		t.Fatalf("DATA: %s", scanner.Text())
	}
	if len(be.messages) != 1 || string(be.messages[0].Data) != body+"\r\n" {
		t.Fatalf("message not received byte for byte (%d messages)", len(be.messages))
	}

	io.WriteString(c, "NOOP "+strings.Repeat("x", 3000)+"\r\n")
	scanner.Scan()
	if !strings.HasPrefix(scanner.Text(), "500 5.4.0 Too long line") {
		t.Fatalf("long command line: %s", scanner.Text())
	}
}
