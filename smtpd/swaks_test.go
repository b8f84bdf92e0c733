package smtpd

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// swaks runs one SMTP transaction and returns its transcript.
func swaks(t *testing.T, addr string, args ...string) string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command(needTool(t, "swaks"), append([]string{"--server", host, "--port", port, "--helo", "mta.test", "--timeout", "30"}, args...)...)
	out, _ := cmd.CombinedOutput() // a refused transaction exits non-zero; the transcript tells
	return string(out)
}

// serverReply finds a server reply line with the given code in a swaks
// transcript ("<-  250 ..." or "<** 550 ...").
func serverReply(transcript, code string) string {
	m := regexp.MustCompile(`(?m)^ *<(?:-|\*\*|~\*?) +` + code + `[ -].*$`).FindString(transcript)
	return strings.TrimSpace(m)
}

func TestSwaks(t *testing.T) {
	needTool(t, "swaks")
	p := openProvider(t, t.TempDir())
	defer p.Close()
	acme := createTenant(t, p, tenantSpec{name: "acme", domains: []string{"acme.example"},
		users: []string{"alice", "bob", "carol"}, networks: []string{"127.0.0.0/8"}})
	globex := createTenant(t, p, tenantSpec{name: "globex", domains: []string{"globex.example"},
		users: []string{"gina"}, login: "mta"})
	_, addr := startServer(t, p)
	dir := t.TempDir()

	// A plain BCC copy with the envelope encoded in the journal addresses,
	// a 5,000-byte line (go-smtp's default limit is 2,000 inside DATA), a
	// line that needs dot-stuffing and 8-bit text.
	msg := "From: Alice <alice@acme.example>\nTo: undisclosed-recipients:;\nSubject: long lines\n" +
		"Message-ID: <long@acme.example>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n" +
		"Content-Transfer-Encoding: 8bit\n\nGrüße aus Köln\n" + strings.Repeat("x", 5000) + "\n.leading dot\n..two dots\n"
	file := filepath.Join(dir, "long.eml")
	os.WriteFile(file, []byte(msg), 0o644)
	out := swaks(t, addr, "--from", "alice@acme.example",
		"--to", "journal+rcpt=bob=acme.example@acme.example,journal+rcpt=carol=acme.example@acme.example,journal+from=alice=acme.example@acme.example",
		"--data", "@"+file)
	if serverReply(out, "250 2.0.0") == "" || !strings.Contains(out, "<-  250 2.0.0 OK") {
		t.Fatalf("plain copy not accepted:\n%s", out)
	}
	// swaks sends the file in SMTP form and ends DATA with one more CRLF.
	stored := append(smtpForm([]byte(msg)), '\r', '\n')
	checkPlaced(t, acme, []want{
		{"bob@acme.example", "bob@acme.example", "INBOX", stored},
		{"carol@acme.example", "carol@acme.example", "INBOX", stored},
		{"alice@acme.example", "alice@acme.example", "Sent", stored},
		{officer + "@acme.example", "journal@acme.example", "INBOX", stored},
	})

	// Refusals are permanent and say why.
	for _, tc := range []struct{ to, code, text string }{
		{"journal@nowhere.example", "550 5.1.1", "no tenant of this archive has the domain nowhere.example"},
		{"bob@acme.example", "550 5.1.1", "not a journal address"},
		{"journal@globex.example", "530 5.7.0", "authentication required"},
	} {
		out := swaks(t, addr, "--from", "alice@acme.example", "--to", tc.to, "--body", "x")
		if r := serverReply(out, tc.code); !strings.Contains(r, tc.text) {
			t.Errorf("RCPT %s: want %s %q, transcript:\n%s", tc.to, tc.code, tc.text, out)
		}
	}

	// globex has no allowed network: only its journal login, over STARTTLS.
	body := "From: gina@globex.example\r\nTo: partner@else.example\r\nSubject: tls\r\n\r\nvia STARTTLS and AUTH\r\n"
	gfile := filepath.Join(dir, "g.eml")
	os.WriteFile(gfile, []byte(body), 0o644)
	out = swaks(t, addr, "-tls", "--auth", "PLAIN", "--auth-user", "mta@globex.example", "--auth-password", testPassword,
		"--from", "gina@globex.example", "--to", "journal@globex.example", "--data", "@"+gfile)
	if !strings.Contains(out, "<~  250 2.0.0 OK") {
		t.Fatalf("authenticated copy not accepted:\n%s", out)
	}
	gstored := append([]byte(body), '\r', '\n')
	checkPlaced(t, globex, []want{
		{"gina@globex.example", "gina@globex.example", "Sent", gstored},
		{officer + "@globex.example", "journal@globex.example", "INBOX", gstored},
	})
	out = swaks(t, addr, "-tls", "--auth", "PLAIN", "--auth-user", "mta@globex.example", "--auth-password", "wrong-password!",
		"--from", "gina@globex.example", "--to", "journal@globex.example", "--body", "x")
	if serverReply(out, "535 5.7.8") == "" {
		t.Errorf("wrong password not refused with 535:\n%s", out)
	}
	// A login is good for its own tenant only, even from an allowed network.
	out = swaks(t, addr, "-tls", "--auth", "PLAIN", "--auth-user", "mta@globex.example", "--auth-password", testPassword,
		"--from", "gina@globex.example", "--to", "journal@acme.example", "--body", "x")
	if r := serverReply(out, "550 5.7.1"); !strings.Contains(r, "may not deliver for tenant acme") {
		t.Errorf("cross-tenant delivery not refused:\n%s", out)
	}
	// AUTH is not offered in the clear.
	out = swaks(t, addr, "--auth", "PLAIN", "--auth-user", "mta@globex.example", "--auth-password", testPassword,
		"--from", "gina@globex.example", "--to", "journal@globex.example", "--body", "x")
	if strings.Contains(out, "<-  250 2.0.0 OK") || !strings.Contains(out, "did not advertise authentication") {
		t.Errorf("AUTH accepted without TLS:\n%s", out)
	}
}
