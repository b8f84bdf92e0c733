package imapserver_test

// Tests of the mailvault patches (see third_party/README.md), each a real
// conversation with imapmemserver on loopback.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// idSession answers ID on top of imapmemserver's session.
type idSession struct {
	imapserver.Session
	client *imap.IDData
}

func (s *idSession) ID(client *imap.IDData) *imap.IDData {
	s.client = client
	return &imap.IDData{Name: "memserver", Version: "1.0"}
}

const message = "From: a@example.org\r\nSubject: test\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n"

// startServer runs imapmemserver with user/pass, INBOX holding one
// message, and a mailbox "R&D".
func startServer(t testing.TB) string {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("user", "pass")
	for _, name := range []string{"INBOX", "R&D"} {
		if err := u.Create(name, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := u.Append("INBOX", literal(message), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &idSession{Session: mem.NewSession()}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapBinary: {}},
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

type lit struct{ *strings.Reader }

func (l lit) Size() int64 { return l.Reader.Size() }

func literal(s string) imap.LiteralReader { return lit{strings.NewReader(s)} }

type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	n    int
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.line()
	return c
}

// line reads a response line with its literals inlined; the server must
// answer within 5 s (the library's own timeout is 30 s).
func (c *client) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v (after %q)", err, b.String())
		}
		l = strings.TrimSuffix(l, "\r\n")
		b.WriteString(l)
		i := strings.LastIndexByte(l, '{')
		if !strings.HasSuffix(l, "}") || i < 0 {
			return b.String()
		}
		n, err := strconv.Atoi(l[i+1 : len(l)-1])
		if err != nil {
			return b.String()
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			c.t.Fatal(err)
		}
		b.Write(buf)
	}
}

// do sends a command line and returns the untagged lines and the status
// line without its tag.
func (c *client) do(cmd string) ([]string, string) {
	c.t.Helper()
	c.n++
	tag := fmt.Sprintf("a%d", c.n)
	if _, err := fmt.Fprintf(c.conn, "%s %s\r\n", tag, cmd); err != nil {
		c.t.Fatal(err)
	}
	var untagged []string
	for {
		l := c.line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, l)
	}
}

func (c *client) want(cmd, prefix string) []string {
	c.t.Helper()
	u, st := c.do(cmd)
	if !strings.HasPrefix(st, prefix) {
		if len(cmd) > 80 {
			cmd = cmd[:80] + "..."
		}
		c.t.Fatalf("%s: got %q, want %s...", cmd, st, prefix)
	}
	return u
}

// closed checks that the server ends the connection after a BYE.
func (c *client) closed() {
	c.t.Helper()
	if l := c.line(); !strings.HasPrefix(l, "* BYE") {
		c.t.Fatalf("got %q, want BYE", l)
	}
	// EOF, or a reset when the server closed with unread input.
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.r.ReadByte()
	if ne, ok := err.(net.Error); err == nil || ok && ne.Timeout() {
		c.t.Fatalf("connection not closed: %v", err)
	}
}

// TestClientErrors: malformed client input is answered BAD (or NO for a
// mailbox name that is not modified UTF-7), never NO [SERVERBUG].
func TestClientErrors(t *testing.T) {
	c := dial(t, startServer(t))
	c.want("LOGIN user pass", "OK")
	c.want(`SELECT "&"`, "NO [CLIENTBUG]")
	c.want(`LIST "" "&"`, "NO [CLIENTBUG]")
	c.want(`STATUS "&Jjo" (MESSAGES)`, "NO [CLIENTBUG]")
	c.want("SELECT INBOX", "OK")
	for _, cmd := range []string{
		"FETCH 0 FLAGS",
		"FETCH 1:0 FLAGS",
		"UID FETCH 0 FLAGS",
		"SEARCH MODSEQ 1",
		"SEARCH SINCE 32-Foo-2020",
		"SEARCH " + strings.Repeat("NOT ", 101) + "ALL",
		"SEARCH " + strings.Repeat("OR ALL ", 101) + "ALL",
		"SEARCH " + strings.Repeat("(", 1001) + "ALL" + strings.Repeat(")", 1001),
		"FETCH 1 BODY[0]",
		"FETCH 1 BODY[4294967296]",
		"FETCH 1 BODY[1.4294967297.TEXT]",
		"FETCH 1 BINARY[4294967296]",
		"FETCH 1 BINARY[0]",
	} {
		c.want(cmd, "BAD")
	}
	// Nesting within the limit is fine.
	c.want("SEARCH "+strings.Repeat("NOT ", 50)+"ALL", "OK")
	c.want("NOOP", "OK")
	// A command over the size limit: answered, then the connection ends,
	// as the rest of the line was never read.
	c.want(`SELECT "`+strings.Repeat("x", 60*1024)+`"`, "BAD [TOOBIG]")
	c.closed()
}

// TestOversizedLiteral: a literal over the limit is refused at once.
func TestOversizedLiteral(t *testing.T) {
	addr := startServer(t)
	c := dial(t, addr)
	c.want("SELECT {5000}", "NO [TOOBIG]")
	c.want("LOGIN {5000}", "NO [TOOBIG]")
	c.want("LOGIN user pass", "OK")
	c.want("SELECT {5000}", "NO [TOOBIG]")
	c.want("NOOP", "OK")
	// A non-synchronizing one is on its way: its bytes cannot be told from
	// commands, so the connection ends after the answer.
	c = dial(t, addr)
	c.want("LOGIN user pass", "OK")
	fmt.Fprintf(c.conn, "b1 SELECT {5000+}\r\n%s\r\n", strings.Repeat("a", 5000))
	if l := c.line(); !strings.HasPrefix(l, "b1 BAD [TOOBIG]") {
		t.Fatalf("got %q", l)
	}
	c.closed()
}

// TestMailboxUTF8: after ENABLE UTF8=ACCEPT mailbox names are UTF-8 both
// ways, "&" included; before, they are modified UTF-7.
func TestMailboxUTF8(t *testing.T) {
	c := dial(t, startServer(t))
	c.want("LOGIN user pass", "OK")
	if u := c.want(`LIST "" "R*"`, "OK"); len(u) != 1 || !strings.HasSuffix(u[0], ` "R&-D"`) {
		t.Fatalf("LIST before ENABLE: %q", u)
	}
	c.want(`SELECT "R&-D"`, "OK")
	c.want("ENABLE UTF8=ACCEPT", "OK")
	if u := c.want(`LIST "" "R*"`, "OK"); len(u) != 1 || !strings.HasSuffix(u[0], ` "R&D"`) {
		t.Fatalf("LIST after ENABLE: %q", u)
	}
	c.want(`SELECT "R&D"`, "OK")
	c.want(`STATUS "R&D" (MESSAGES)`, "OK")
	c.want(`SELECT "R&-D"`, "NO")
}

// TestID: ID (RFC 2971) works in every state and is advertised.
func TestID(t *testing.T) {
	c := dial(t, startServer(t))
	u := c.want("CAPABILITY", "OK")
	if len(u) != 1 || !strings.Contains(u[0]+" ", " ID ") {
		t.Fatalf("CAPABILITY without ID: %q", u)
	}
	u = c.want(`ID ("name" "Thunderbird" "version" NIL "x-unknown" "1")`, "OK")
	if len(u) != 1 || u[0] != `* ID ("name" "memserver" "version" "1.0")` {
		t.Fatalf("ID: %q", u)
	}
	c.want("ID NIL", "OK")
	c.want("ID (\"name\")", "BAD")
	c.want("LOGIN user pass", "OK")
	c.want(`ID ("name" "x")`, "OK")
}

// TestUnknownCommandsBeforeAuth: unknown commands before login are
// answered BAD; only the third BAD ends the connection.
func TestUnknownCommandsBeforeAuth(t *testing.T) {
	addr := startServer(t)
	c := dial(t, addr)
	c.want("XYZZY", "BAD")
	c.want("NOOP", "OK")
	c.want("FETCH 1 (", "BAD")
	c.want("GET / HTTP/1.1", "BAD")
	c.closed()
	// After login, unknown commands do not end the connection.
	c = dial(t, addr)
	c.want("LOGIN user pass", "OK")
	for i := 0; i < 5; i++ {
		c.want("XYZZY", "BAD")
	}
	c.want("NOOP", "OK")
}

// TestPartialOrigin: a partial BODY or BINARY fetch names its origin, as
// large as the client asked it.
func TestPartialOrigin(t *testing.T) {
	c := dial(t, startServer(t))
	c.want("LOGIN user pass", "OK")
	c.want("SELECT INBOX", "OK")
	for cmd, want := range map[string]string{
		"FETCH 1 BINARY.PEEK[1]<6.5>":          "BINARY[1]<6> ~{5}world",
		"FETCH 1 BODY.PEEK[]<5000000000.5>":    "BODY[]<5000000000> {0}",
		"FETCH 1 BODY.PEEK[TEXT]<0.5>":         "BODY[TEXT]<0> {5}aGVsb",
		"FETCH 1 BINARY.PEEK[1]<4294967302.5>": "BINARY[1]<4294967302> ~{0}",
	} {
		u := c.want(cmd, "OK")
		if len(u) != 1 || !strings.Contains(u[0], want) {
			t.Errorf("%s: %q, want %q", cmd, u, want)
		}
	}
}

// FuzzCommand: whatever a client sends after the tag, in the selected
// state, is answered within seconds and never NO [SERVERBUG]: the parsers
// of the patched places (mailbox names, number sets, sections, SEARCH keys,
// ID) report client errors as BAD or NO.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{
		"FETCH 0 FLAGS", "FETCH 1 BODY[4294967296]", "FETCH 1 (BODY[1.2.MIME]<0.10> BINARY[1]<2.3>)",
		`SELECT "&"`, `LIST "" "&Jjo"`, `STATUS "R&-D" (MESSAGES)`, "SEARCH NOT (OR FROM a TO b) SINCE 1-Jan-2020",
		"SEARCH " + strings.Repeat("NOT ", 120) + "ALL", "UID SEARCH RETURN (MIN SAVE) 1:*", `ID ("name" "x" "version" NIL)`,
		"ID NIL", "XYZZY", "FETCH 1:* (FLAGS)", "SEARCH HEADER Message-ID \"abc\"",
	} {
		f.Add(s)
	}
	addr := startServer(f)
	f.Fuzz(func(t *testing.T, cmd string) {
		// One line, without literals (a literal would wait for its data).
		if strings.ContainsAny(cmd, "\r\n{") {
			return
		}
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		fmt.Fprintf(conn, "a LOGIN user pass\r\nb SELECT INBOX\r\nc %s\r\n", cmd)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("%q: no answer", cmd)
				}
				return // the command ended the connection (LOGOUT, too long)
			}
			if strings.Contains(l, "SERVERBUG") {
				t.Fatalf("%q: %q", cmd, l)
			}
			if strings.HasPrefix(l, "c ") || strings.HasPrefix(l, "+") {
				return // answered, or waiting for more (IDLE, AUTHENTICATE)
			}
		}
	})
}
