package imapd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/conf"
)

// Server serves the archive over IMAP, read-only.
type Server struct {
	p       *backend.Provider
	log     *slog.Logger
	tlsConf *tls.Config
	version string // answered to ID

	// The library decides per server, not per connection, whether plaintext
	// authentication is allowed: loopback connections go to local, which
	// allows it; all others to remote, which requires TLS (and so advertises
	// LOGINDISABLED until STARTTLS).
	local, remote   *imapserver.Server
	localQ, remoteQ *connQueue
	done            chan struct{}
	closeOnce       sync.Once
	mu              sync.Mutex
	listeners       map[net.Listener]struct{}
	wg              sync.WaitGroup
	closed          bool
	met             atomic.Pointer[metrics] // set before serving; the library's callbacks read it
}

// capabilities advertised besides those the library always adds (UNSELECT,
// IDLE, ENABLE, ...) or adds because session implements them (ID, SORT,
// ESORT, THREAD). session implements each; MOVE, part of IMAP4rev2,
// answers NO like every write.
var capabilities = []imap.Cap{
	imap.CapIMAP4rev1, imap.CapIMAP4rev2, imap.CapLiteralPlus, imap.CapCondStore, imap.CapQResync,
	imap.CapNamespace, imap.CapESearch, imap.CapSearchRes, imap.CapListExtended,
	imap.CapListStatus, imap.CapStatusSize, imap.CapBinary, imap.CapChildren,
	imap.CapSpecialUse, imap.CapMove,
}

// New prepares an IMAP server on the archive. The TLS certificate is
// cfg.CertFile/KeyFile, else a self-signed one kept in dataDir.
func New(p *backend.Provider, cfg conf.IMAP, dataDir string, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	tlsConf, err := loadTLS(cfg, dataDir, log)
	if err != nil {
		return nil, err
	}
	s := &Server{
		p: p, log: log, tlsConf: tlsConf, version: buildVersion(),
		localQ: newConnQueue(), remoteQ: newConnQueue(),
		done: make(chan struct{}), listeners: map[net.Listener]struct{}{},
	}
	s.met.Store(newMetrics(Metrics{}))
	caps := imap.CapSet{}
	for _, c := range capabilities {
		caps[c] = struct{}{}
	}
	opts := func(insecure bool) *imapserver.Options {
		return &imapserver.Options{
			NewSession:   s.newSession,
			Caps:         caps,
			Logger:       libLogger{log},
			TLSConfig:    tlsConf,
			InsecureAuth: insecure,
			CommandDone:  s.commandDone,
		}
	}
	s.local = imapserver.New(opts(true))
	s.remote = imapserver.New(opts(false))
	for _, x := range []struct {
		srv *imapserver.Server
		q   *connQueue
	}{{s.local, s.localQ}, {s.remote, s.remoteQ}} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			x.srv.Serve(x.q)
		}()
	}
	return s, nil
}

// Serve accepts plain connections on ln; clients may upgrade with
// STARTTLS. It returns when ln fails or the server is closed.
func (s *Server) Serve(ln net.Listener) error { return s.accept(ln) }

// ServeTLS accepts implicit-TLS connections (port 993 style) on ln.
func (s *Server) ServeTLS(ln net.Listener) error {
	return s.accept(tls.NewListener(ln, s.tlsConf))
}

// TLSListener returns the server as a listener whose Serve is ServeTLS, for
// code that starts listeners through one interface.
func (s *Server) TLSListener() interface {
	Serve(net.Listener) error
	Close() error
} {
	return tlsListener{s}
}

type tlsListener struct{ s *Server }

func (l tlsListener) Serve(ln net.Listener) error { return l.s.ServeTLS(ln) }
func (l tlsListener) Close() error                { return l.s.Close() }

func (s *Server) accept(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return nil
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("imap accept: %w", err)
			}
			// Out of file descriptors and the like: wait, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("imap accept failed; retrying", "err", err, "in", delay)
			select {
			case <-time.After(delay):
			case <-s.done:
				return nil
			}
			continue
		}
		delay = 0
		q := s.remoteQ
		if isLoopback(c.RemoteAddr()) {
			q = s.localQ
		}
		if !q.put(c) {
			c.Close()
		}
	}
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// Close stops accepting and ends every connection. It may be called more
// than once.
func (s *Server) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		close(s.done)
		s.mu.Lock()
		s.closed = true
		for ln := range s.listeners {
			errs = append(errs, ln.Close())
		}
		s.mu.Unlock()
		// The library's Serve registers itself only once running; closing
		// the library's server before that races with it.
		<-s.localQ.accepting
		<-s.remoteQ.accepting
		for _, srv := range []*imapserver.Server{s.local, s.remote} {
			errs = append(errs, srv.Close())
		}
		s.wg.Wait()
	})
	return errors.Join(errs...)
}

// connQueue is a net.Listener fed by Server.accept, so the library's servers
// accept connections that were already routed.
type connQueue struct {
	ch        chan net.Conn
	done      chan struct{}
	once      sync.Once
	accepting chan struct{} // closed at the first Accept
	started   sync.Once
}

func newConnQueue() *connQueue {
	return &connQueue{ch: make(chan net.Conn), done: make(chan struct{}), accepting: make(chan struct{})}
}

func (q *connQueue) put(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	q.started.Do(func() { close(q.accepting) })
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return queueAddr{} }

type queueAddr struct{}

func (queueAddr) Network() string { return "imapd" }
func (queueAddr) String() string  { return "imapd" }

// libLogger hands the library's messages to slog.
type libLogger struct{ log *slog.Logger }

func (l libLogger) Printf(format string, args ...any) {
	l.log.Warn(fmt.Sprintf(format, args...))
}

// buildVersion is the binary's module version, or for a build from a
// checkout its commit.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v != "" && v != "(devel)" {
		return v
	}
	for _, st := range bi.Settings {
		if st.Key == "vcs.revision" && len(st.Value) >= 12 {
			return "devel-" + st.Value[:12]
		}
	}
	return "devel"
}
