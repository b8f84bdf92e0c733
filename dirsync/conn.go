package dirsync

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// errUnreachable marks failures to reach or talk to the directory (as
// opposed to the directory refusing something).
var errUnreachable = errors.New("directory unreachable")

// conn is one LDAP connection of a run or a login.
type conn struct {
	l     *ldap.Conn
	e     *effective
	stop  func() bool // detaches the context watch
	pages int
}

// dial connects (TLS as configured) without binding. The connection is
// closed when ctx ends, which aborts a request in flight.
func dial(ctx context.Context, e *effective) (*conn, error) {
	u, err := url.Parse(e.URL)
	if err != nil {
		return nil, fmt.Errorf("directory URL %q: %w", e.URL, err)
	}
	tc := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if e.CAFile != "" {
		if tc.RootCAs, err = loadCAs(e.CAFile); err != nil {
			return nil, err
		}
	}
	d := &net.Dialer{Timeout: e.timeout}
	if dl, ok := ctx.Deadline(); ok {
		d.Deadline = dl
	}
	l, err := ldap.DialURL(e.URL, ldap.DialWithDialer(d), ldap.DialWithTLSConfig(tc))
	if err != nil {
		return nil, fmt.Errorf("%w: connect to %s: %v", errUnreachable, e.URL, err)
	}
	l.SetTimeout(e.timeout)
	c := &conn{l: l, e: e, stop: context.AfterFunc(ctx, func() { l.Close() })}
	if e.StartTLS {
		if err := l.StartTLS(tc); err != nil {
			c.close()
			return nil, fmt.Errorf("%w: StartTLS with %s: %v", errUnreachable, e.URL, err)
		}
	}
	return c, nil
}

func (c *conn) close() {
	c.stop()
	c.l.Close()
}

// bind authenticates the connection. A wrong DN or password is reported as
// such; other failures mean the directory cannot be used.
func (c *conn) bind(dn, password string) error {
	if password == "" {
		// An empty password would be an unauthenticated bind, which
		// succeeds without checking anything (RFC 4513 5.1.2).
		return fmt.Errorf("bind as %s: empty password", dn)
	}
	err := c.l.Bind(dn, password)
	switch {
	case err == nil:
		return nil
	case ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials):
		return &bindError{dn: dn, err: err}
	case c.broken(err):
		return fmt.Errorf("%w: bind as %s at %s: %v", errUnreachable, dn, c.e.URL, err)
	}
	return fmt.Errorf("bind as %s at %s: %w", dn, c.e.URL, err)
}

// bindError is a bind refused for wrong credentials.
type bindError struct {
	dn  string
	err error
}

func (b *bindError) Error() string {
	return "bind as " + b.dn + ": invalid credentials (" + b.err.Error() + ")"
}

func (b *bindError) Unwrap() error { return b.err }

// broken reports whether err means the connection is gone. go-ldap reports
// a connection the server dropped with a plain error, so the connection's
// state counts too.
func (c *conn) broken(err error) bool {
	return ldap.IsErrorWithCode(err, ldap.ErrorNetwork) || errors.Is(err, net.ErrClosed) || c.l.IsClosing()
}

// search runs a paged search and hands every entry to fn. Paging is done
// here, page by page: the library's SearchWithPaging would hold the whole
// directory in memory at once.
func (c *conn) search(ctx context.Context, base, filter string, attrs []string, fn func(*ldap.Entry) error) error {
	paging := ldap.NewControlPaging(uint32(c.e.pageSize))
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, []ldap.Control{paging})
	for {
		res, err := c.l.Search(req)
		if ctx.Err() != nil {
			err = ctx.Err() // the connection was closed because of it
		} else if err != nil && c.broken(err) {
			err = fmt.Errorf("%w: %v", errUnreachable, err)
		}
		if err != nil {
			return fmt.Errorf("search %s under %s (page %d): %w", filter, base, c.pages+1, err)
		}
		c.pages++
		for _, e := range res.Entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		pc, _ := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if pc == nil || len(pc.Cookie) == 0 {
			return nil
		}
		paging.SetCookie(pc.Cookie)
	}
}

// searcher is the part of *ldap.Conn that ranged retrieval needs.
type searcher interface {
	Search(*ldap.SearchRequest) (*ldap.SearchResult, error)
}

// rangedValues completes an attribute Active Directory returned in parts:
// a group with more than 1500 members comes back as "member;range=0-1499"
// and the rest must be asked for part by part, which go-ldap does not do.
// It returns the values of attr in e, complete.
func rangedValues(s searcher, e *ldap.Entry, attr string) ([]string, error) {
	var vals []string
	next := -1
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Name, attr) {
			vals = append(vals, a.Values...)
		} else if _, high, last, ok := rangeAttr(a.Name, attr); ok {
			vals = append(vals, a.Values...)
			if !last {
				next = high + 1
			}
		}
	}
	for next >= 0 {
		want := attr + ";range=" + strconv.Itoa(next) + "-*"
		req := ldap.NewSearchRequest(e.DN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{want}, nil)
		res, err := s.Search(req)
		if err != nil {
			return nil, fmt.Errorf("read %s of %s: %w", want, e.DN, err)
		}
		prev, found := next, false
		next = -1
		for _, r := range res.Entries {
			for _, a := range r.Attributes {
				if low, high, last, ok := rangeAttr(a.Name, attr); ok && low == prev {
					vals, found = append(vals, a.Values...), true
					if !last {
						next = high + 1
					}
				}
			}
		}
		if !found {
			// A partial member list would drop people from groups.
			return nil, fmt.Errorf("read %s of %s: the directory returned no such range", want, e.DN)
		}
	}
	return vals, nil
}
