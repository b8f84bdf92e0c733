// Package imapwire is a minimal IMAP client for tests, independent of
// go-imap: it sends commands as written and returns the responses as they
// came, literals inlined. The tests of imapd and the end-to-end tests
// share it; no other code imports it.
package imapwire

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Timeout is how long a response line may take.
const Timeout = 30 * time.Second

// Conn is a client over a socket or a process's pipes.
type Conn struct {
	t        testing.TB
	conn     net.Conn // nil for pipes
	w        io.Writer
	r        *bufio.Reader
	deadline func(time.Time) error // a socket's read deadline; nil for pipes
	// kill ends a peer that does not answer in time, when there is no
	// deadline to set.
	kill func()
	cmd  string // the command being answered, for errors
	tag  int
}

// Dial connects to addr and reads the greeting, which must be OK.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return On(t, conn, true)
}

// On is a client on an established connection, closed when the test ends;
// with greeting, it reads the greeting, which must be OK.
func On(t testing.TB, conn net.Conn, greeting bool) *Conn {
	t.Helper()
	t.Cleanup(func() { conn.Close() })
	c := &Conn{t: t, conn: conn, w: conn, r: bufio.NewReader(conn), deadline: conn.SetReadDeadline}
	if greeting {
		if g := c.Line(); !strings.HasPrefix(g, "* OK") {
			t.Fatalf("greeting %q", g)
		}
	}
	return c
}

// OnPipes is a client writing to w and reading r, a process's pipes; kill
// ends the process when it does not answer in time. It reads no greeting.
func OnPipes(t testing.TB, w io.Writer, r io.Reader, kill func()) *Conn {
	return &Conn{t: t, w: w, r: bufio.NewReader(r), kill: kill}
}

// Net is the connection, for what a test writes outside a command (IDLE's
// DONE, raw bytes) or to start TLS on; nil for pipes.
func (c *Conn) Net() net.Conn { return c.conn }

// Line reads one response line, with its literals inlined.
func (c *Conn) Line() string {
	c.t.Helper()
	if c.deadline != nil {
		c.deadline(time.Now().Add(Timeout))
	} else if c.kill != nil {
		defer time.AfterFunc(Timeout, c.kill).Stop()
	}
	var b strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read the answer to %.80q: %v (so far %.200q)", c.cmd, err, b.String())
		}
		l = strings.TrimSuffix(l, "\r\n")
		b.WriteString(l)
		n, ok := LiteralSize(l)
		if !ok {
			return b.String()
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			c.t.Fatal(err)
		}
		b.Write(buf)
	}
}

// LiteralSize parses the {n} (or {n+}) that ends a line announcing a
// literal.
func LiteralSize(l string) (int, bool) {
	if !strings.HasSuffix(l, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(l, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(l[i+1:len(l)-1], "+"))
	return n, err == nil
}

// Do sends a command (its literals must be LITERAL+) and returns the
// untagged lines and the tagged status line without the tag.
func (c *Conn) Do(cmd string) (untagged []string, status string) {
	c.t.Helper()
	c.tag++
	tag := fmt.Sprintf("t%d", c.tag)
	c.cmd = cmd
	if _, err := fmt.Fprintf(c.w, "%s %s\r\n", tag, cmd); err != nil {
		c.t.Fatal(err)
	}
	for {
		l := c.Line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, l)
	}
}

// OK runs a command that must succeed and returns its untagged lines.
func (c *Conn) OK(cmd string) []string {
	c.t.Helper()
	u, st := c.Do(cmd)
	if !strings.HasPrefix(st, "OK") {
		c.t.Fatalf("%s: %s", cmd, st)
	}
	return u
}

// NO runs a command that must fail with NO and returns the status.
func (c *Conn) NO(cmd string) string {
	c.t.Helper()
	_, st := c.Do(cmd)
	if !strings.HasPrefix(st, "NO") {
		c.t.Fatalf("%s: want NO, got %s", cmd, st)
	}
	return st
}
