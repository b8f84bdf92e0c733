// Package pop3 is a small POP3 client (RFC 1939, STLS of RFC 2595): log
// in, list the messages with their unique ids (UIDL), retrieve one, quit.
// It reads what the server sends with limits, so a hostile server cannot
// make it hold more than one message's bytes.
package pop3

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Limits of what the client reads.
const (
	maxLine    = 64 << 10  // a status or listing line
	MaxMessage = 512 << 20 // one retrieved message
)

// ErrServer is wrapped around a server's -ERR answer.
var ErrServer = errors.New("POP3 server said")

// Client is one POP3 connection.
type Client struct {
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration
}

// Dial connects; with tlsConfig set and implicit, TLS starts at once,
// with tlsConfig set and not implicit, STLS upgrades the connection.
func Dial(addr string, tlsConfig *tls.Config, implicit bool, timeout time.Duration) (*Client, error) {
	d := &net.Dialer{Timeout: timeout}
	var conn net.Conn
	var err error
	if tlsConfig != nil && implicit {
		conn, err = tls.DialWithDialer(d, "tcp", addr, tlsConfig)
	} else {
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), timeout: timeout}
	if _, err := c.status(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if tlsConfig != nil && !implicit {
		if _, err := c.cmd("STLS"); err != nil {
			conn.Close()
			return nil, fmt.Errorf("STLS: %w", err)
		}
		tc := tls.Client(conn, tlsConfig)
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		c.conn, c.r = tc, bufio.NewReaderSize(tc, 64<<10)
	}
	return c, nil
}

// Close ends the connection without QUIT.
func (c *Client) Close() error { return c.conn.Close() }

// Login sends USER and PASS.
func (c *Client) Login(user, pass string) error {
	if strings.ContainsAny(user+pass, "\r\n") {
		return errors.New("login or password contains a line break")
	}
	if _, err := c.cmd("USER " + user); err != nil {
		return err
	}
	_, err := c.cmd("PASS " + pass)
	return err
}

// Message is a message of the maildrop: its number in this session and
// its unique id.
type Message struct {
	N   int
	UID string
}

// UIDL lists the messages with their unique ids.
func (c *Client) UIDL() ([]Message, error) {
	if _, err := c.cmd("UIDL"); err != nil {
		return nil, err
	}
	var out []Message
	err := readMulti(c.r, maxLine, func(line []byte) error {
		n, uid, ok := strings.Cut(strings.TrimSpace(string(line)), " ")
		num, err := strconv.Atoi(n)
		if !ok || err != nil || num <= 0 || uid == "" || len(uid) > 70 {
			return fmt.Errorf("bad UIDL line %q", line)
		}
		out = append(out, Message{N: num, UID: uid})
		return nil
	})
	return out, err
}

// Retr retrieves message n, its lines ending in CRLF as sent.
func (c *Client) Retr(n int) ([]byte, error) {
	if _, err := c.cmd("RETR " + strconv.Itoa(n)); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err := readMulti(c.r, MaxMessage, func(line []byte) error {
		b.Write(line)
		b.WriteString("\r\n")
		return nil
	})
	return b.Bytes(), err
}

// Quit ends the session; a server deletes messages marked with DELE only
// now (this client never marks any).
func (c *Client) Quit() error {
	_, err := c.cmd("QUIT")
	c.conn.Close()
	return err
}

func (c *Client) cmd(line string) (string, error) {
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		return "", err
	}
	return c.status()
}

// status reads a +OK or -ERR line.
func (c *Client) status() (string, error) {
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	l, err := readLine(c.r, maxLine)
	if err != nil {
		return "", err
	}
	s := string(l)
	switch {
	case strings.HasPrefix(s, "+OK"):
		return strings.TrimSpace(s[3:]), nil
	case strings.HasPrefix(s, "-ERR"):
		return "", fmt.Errorf("%w: %s", ErrServer, strings.TrimSpace(s[4:]))
	}
	return "", fmt.Errorf("not a POP3 answer: %.80q", s)
}

// readLine reads one line of at most max bytes without its CRLF (or bare
// LF). Lines longer than the reader's buffer are copied, the rest are not.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	l, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		long := append([]byte(nil), l...)
		for errors.Is(err, bufio.ErrBufferFull) && len(long) <= max {
			l, err = r.ReadSlice('\n')
			long = append(long, l...)
		}
		l = long
	}
	if len(l) > max+2 {
		return nil, fmt.Errorf("line longer than %d bytes", max)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	l = l[:len(l)-1]
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	return l, nil
}

// readMulti reads a multi-line response body up to its "." line, removing
// the dot-stuffing, and gives fn each line; it fails beyond limit bytes.
func readMulti(r *bufio.Reader, limit int, fn func(line []byte) error) error {
	total := 0
	for {
		l, err := readLine(r, limit)
		if err != nil {
			return err
		}
		if len(l) == 1 && l[0] == '.' {
			return nil
		}
		if len(l) > 0 && l[0] == '.' {
			l = l[1:]
		}
		if total += len(l) + 2; total > limit {
			return fmt.Errorf("response longer than %d bytes", limit)
		}
		if err := fn(l); err != nil {
			return err
		}
	}
}
