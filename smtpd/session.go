package smtpd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/journal"
)

// session is one SMTP connection (from EHLO; STARTTLS starts a new one).
type session struct {
	s   *Server
	log *slog.Logger
	ip  netip.Addr

	login   string          // journal login after AUTH
	authed  *backend.Tenant // its tenant
	allowed map[string]bool // tenant name -> ip on its allow-list, asked once per connection

	// mu guards the transaction: go-smtp may call Logout from another
	// goroutine (server close, BDAT) while Data runs.
	mu      sync.Mutex
	from    string
	size    int64 // SIZE= of MAIL FROM, to size the buffer
	tenants []*rcptTenant
}

// rcptTenant gathers what the accepted RCPTs of one tenant say. The
// tenant is held open until the transaction ends.
type rcptTenant struct {
	t          *backend.Tenant
	release    func()
	sender     string   // decoded journal+from=
	recipients []string // decoded journal+rcpt=
}

func (s *Server) newSession(c *smtp.Conn) *session {
	var ip netip.Addr
	if a, ok := c.Conn().RemoteAddr().(*net.TCPAddr); ok {
		ip = a.AddrPort().Addr().Unmap()
	}
	_, tls := c.TLSConnectionState()
	s.stats.sessions.Add(1)
	s.met.Sessions.Inc()
	return &session{s: s, ip: ip, log: s.log.With("remote", ip.String(), "tls", tls)}
}

// Logout implements smtp.Session.
func (ss *session) Logout() error {
	ss.Reset()
	ss.s.stats.sessions.Add(-1)
	ss.s.met.Sessions.Dec()
	return nil
}

// Reset implements smtp.Session; go-smtp calls it after each DATA too.
func (ss *session) Reset() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, rt := range ss.tenants {
		rt.release()
	}
	ss.from, ss.size, ss.tenants = "", 0, nil
}

// AuthMechanisms implements smtp.AuthSession; go-smtp offers them only
// under TLS.
func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

// Auth implements smtp.AuthSession with journal logins.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return smtp.ErrAuthFailed
		}
		defer since(ss.s.cmds.auth, time.Now())
		ctx, cancel := context.WithTimeout(backend.WithRemote(ss.s.ctx, ss.ip), 30*time.Second)
		defer cancel()
		t, err := ss.s.p.JournalLogin(ctx, username, password)
		switch {
		case err == nil:
		case errors.Is(err, backend.ErrAuthFailed):
			ss.s.stats.authFailures.Add(1)
			ss.s.met.LoginsFailed.Inc()
			ss.log.Warn("journal login failed", "login", username)
			return smtp.ErrAuthFailed
		case errors.Is(err, backend.ErrLoginThrottled):
			ss.log.Warn("journal login throttled", "login", username)
			return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "too many failed logins for this account, try again later"}
		case errors.Is(err, backend.ErrLoginBusy):
			return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "too many logins at once, try again in a moment"}
		default:
			ss.log.Error("journal login", "login", username, "err", err)
			return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "temporary authentication failure, try again later"}
		}
		ss.login, ss.authed = username, t
		return nil
	}), nil
}

// Mail implements smtp.Session.
func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	defer since(ss.s.cmds.mail, time.Now())
	if ss.s.closing.Load() {
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "shutting down, try again later"}
	}
	ss.Reset()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.from = from
	if opts != nil {
		ss.size = opts.Size
	}
	return nil
}

// Rcpt implements smtp.Session: the journal address picks the tenant, whose
// access list decides.
func (ss *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	defer since(ss.s.cmds.rcpt, time.Now())
	err := ss.rcpt(to)
	if err != nil {
		ss.s.stats.rejectedRcpts.Add(1)
		ss.log.Warn("journal recipient refused", "rcpt", to, "login", ss.login, "reply", err.Error())
	}
	return err
}

func (ss *session) rcpt(to string) error {
	addr := journal.ParseAddress(to)
	base, err := backend.NormalizeAddress(addr.Base)
	if err != nil {
		return reply(550, 5, 1, 3, "<%s>: not a valid address", to)
	}
	t, err := ss.s.p.TenantForAddress(ss.s.ctx, base)
	if errors.Is(err, backend.ErrNotFound) {
		return reply(550, 5, 1, 1, "<%s>: no tenant of this archive has the domain %s", to, base[strings.LastIndexByte(base, '@')+1:])
	}
	if err != nil {
		ss.log.Error("find tenant", "rcpt", to, "err", err)
		return reply(451, 4, 3, 0, "temporary failure, try again later")
	}
	if !t.IsJournalAddress(base) {
		return reply(550, 5, 1, 1, "<%s>: not a journal address; journal copies go to journal@%s", to, base[strings.LastIndexByte(base, '@')+1:])
	}
	if err := ss.checkAccess(t); err != nil {
		return err
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var rt *rcptTenant
	for _, x := range ss.tenants {
		if x.t.Name == t.Name {
			rt = x
		}
	}
	if rt == nil {
		rt = &rcptTenant{t: t, release: t.Hold()}
		ss.tenants = append(ss.tenants, rt)
	}
	if addr.Sender != "" {
		rt.sender = addr.Sender
	}
	if addr.Recipient != "" {
		rt.recipients = append(rt.recipients, addr.Recipient)
	}
	return nil
}

// checkAccess lets a tenant's journal logins and allowed networks deliver.
func (ss *session) checkAccess(t *backend.Tenant) error {
	if ss.authed != nil {
		if ss.authed.Name != t.Name {
			return reply(550, 5, 7, 1, "journal login %s may not deliver for tenant %s", ss.login, t.Name)
		}
		return nil
	}
	ok, cached := ss.allowed[t.Name]
	if !cached {
		var err error
		if ok, err = t.JournalNetworkAllowed(ss.ip); err != nil {
			ss.log.Error("journal access", "tenant", t.Name, "err", err)
			return reply(451, 4, 3, 0, "temporary failure, try again later")
		}
		if ss.allowed == nil {
			ss.allowed = map[string]bool{}
		}
		ss.allowed[t.Name] = ok
	}
	if ok {
		return nil
	}
	if auth, err := t.JournalAuthConfigured(); err == nil && auth {
		return reply(530, 5, 7, 0, "authentication required: use STARTTLS and AUTH PLAIN with a journal login of tenant %s", t.Name)
	}
	return reply(550, 5, 7, 1, "%s may not deliver journal copies for tenant %s: allow its network or create a journal login", ss.ip, t.Name)
}

// Data implements smtp.Session: it answers nil (250) only once every
// tenant of the transaction holds the message durably.
func (ss *session) Data(r io.Reader) error {
	s := ss.s
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	start := time.Now()
	defer since(s.cmds.data, start)
	ss.mu.Lock()
	from, size, tenants := ss.from, ss.size, ss.tenants
	ss.mu.Unlock()

	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			s.bufs.Put(buf)
		}
	}()
	// Trust the announced SIZE only so far: it costs nothing to claim.
	if size > 0 && size <= maxPooledBuffer {
		buf.Grow(int(size) + 1)
	}
	if _, err := buf.ReadFrom(r); err != nil {
		return ss.readFailed(err)
	}
	raw := buf.Bytes()
	c := journal.Parse(raw)
	if c.Problem != "" {
		s.stats.malformedReports.Add(1)
	}
	var dup bool
	for _, rt := range tenants {
		jc := backend.JournalCopy{Original: c.Original, Received: start, Recipients: rt.recipients, Problem: c.Problem}
		if c.Format == journal.Exchange {
			jc.Report, jc.Sender = raw, c.Sender
		} else {
			jc.Sender = rt.sender
			if jc.Sender == "" {
				jc.Sender = from
			}
		}
		jc.Recipients = append(jc.Recipients, c.Addresses()...)
		res, err := rt.t.IngestJournal(s.ctx, jc)
		if err != nil {
			s.stats.tempFailures.Add(1)
			r := ingestFailed(err)
			ss.log.Error("journal copy not archived", "tenant", rt.t.Name, "size", len(raw), "reply", r.Error(), "err", err)
			return r
		}
		dup = dup || res.Duplicate
		ss.log.Info("journal copy archived", "tenant", rt.t.Name, "format", c.Format.String(), "size", len(c.Original),
			"recipients", len(jc.Recipients), "mid", res.MID, "duplicate", res.Duplicate, "took", time.Since(start).Round(time.Microsecond))
	}
	s.stats.accepted(int64(len(raw)), dup)
	return nil
}

// readFailed answers a message that did not arrive whole.
func (ss *session) readFailed(err error) error {
	var se *smtp.SMTPError
	switch {
	case errors.As(err, &se):
		// Over MaxMessageBytes: go-smtp's 552, as it is.
		ss.s.stats.tooLarge.Add(1)
		ss.log.Warn("journal copy refused", "reply", se.Error())
		return se
	}
	ss.s.stats.tempFailures.Add(1)
	ss.log.Warn("journal copy not received", "err", err)
	return reply(451, 4, 3, 0, "message not received completely, try again")
}

// ingestFailed maps an archive failure to a reply that makes the sender
// retry: always an *smtp.SMTPError and never wrapped, since go-smtp turns
// anything else into a permanent 554.
func ingestFailed(err error) *smtp.SMTPError {
	switch {
	case errors.Is(err, backend.ErrQuota):
		return reply(452, 4, 2, 2, "archive quota of the tenant reached, try again later")
	case errors.Is(err, syscall.ENOSPC):
		return reply(452, 4, 3, 1, "archive storage full, try again later")
	}
	return reply(451, 4, 3, 0, "message not archived: temporary failure, try again later")
}

func reply(code, class, subject, detail int, format string, args ...any) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{class, subject, detail}, Message: fmt.Sprintf(format, args...)}
}
