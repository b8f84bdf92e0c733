package smtpd

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/conf"
	"github.com/mailvault/mailvault/tlscert"
)

const (
	// maxLineLength bounds a command line; AUTH PLAIN's may reach 12,288
	// bytes (RFC 4954). Message lines are not limited (go-smtp patch, see
	// third_party/README.md): a journal copy with a longer line is archived
	// as it came, within max_message_bytes.
	maxLineLength = 16 << 10
	// maxRecipients bounds one transaction; address-encoding journaling
	// (journal+rcpt=…) sends one RCPT per original recipient.
	maxRecipients = 10000
	// maxPooledBuffer keeps buffers of rare huge messages out of the pool.
	maxPooledBuffer = 4 << 20
	// shutdownGrace is how long Close lets transactions in progress finish.
	shutdownGrace = 10 * time.Second
)

// Server is the SMTP journal endpoint.
type Server struct {
	p    *backend.Provider
	cfg  conf.SMTP
	log  *slog.Logger
	smtp *smtp.Server

	// ctx ends when the server closes; ingest calls run under it.
	ctx      context.Context
	cancel   context.CancelFunc
	closing  atomic.Bool
	inflight atomic.Int64 // DATA transactions being archived
	bufs     sync.Pool
	stats    counters
	met      Metrics
	cmds     commandObservers
	wg       sync.WaitGroup
}

// New builds the endpoint. TLS material comes from the data directory (see
// tlscert.Load); journaling servers mostly accept a self-signed certificate
// (opportunistic TLS).
func New(p *backend.Provider, cfg conf.SMTP, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	tlsConfig, created, err := tlscert.Load(p.TLSDir(), cfg.Hostname)
	if err != nil {
		return nil, fmt.Errorf("smtp journal endpoint: %w", err)
	}
	if created {
		log.Warn("created a self-signed TLS certificate; replace it with a real pair to have clients verify the server", "dir", p.TLSDir())
	}
	s := &Server{p: p, cfg: cfg, log: log}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.bufs.New = func() any { return new(bytes.Buffer) }
	s.stats.started = time.Now()
	s.met, s.cmds = Metrics{}.bind()

	srv := smtp.NewServer(s)
	srv.Domain = cfg.Hostname
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxLineLength = maxLineLength
	srv.MaxRecipients = maxRecipients
	// The read timeout is an idle timeout set per read (idleConn): go-smtp
	// would arm it once for a whole message body.
	srv.WriteTimeout = cfg.ReadTimeout.Duration
	srv.TLSConfig = tlsConfig
	// Refusing what a journaling server sends means a bounce, i.e. a lost
	// copy: take UTF-8 envelopes and binary bodies too.
	srv.EnableSMTPUTF8 = true
	srv.EnableBINARYMIME = true
	srv.ErrorLog = errorLog{log}
	s.smtp = srv

	s.wg.Add(1)
	go s.sampleStats()
	return s, nil
}

// Serve answers SMTP on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	if d := s.cfg.ReadTimeout.Duration; d > 0 {
		ln = idleListener{ln, d}
	}
	return s.smtp.Serve(ln)
}

// Close stops taking transactions, lets the ones being archived finish and
// closes every connection.
func (s *Server) Close() error {
	if s.closing.Swap(true) {
		return nil
	}
	deadline := time.Now().Add(shutdownGrace)
	for s.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	err := s.smtp.Close()
	s.cancel()
	s.wg.Wait()
	if err == smtp.ErrServerClosed {
		err = nil
	}
	return err
}

// NewSession implements smtp.Backend; go-smtp calls it at EHLO/HELO.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return s.newSession(c), nil
}

// idleListener hands out idleConns.
type idleListener struct {
	net.Listener
	timeout time.Duration
}

func (l idleListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return idleConn{c, l.timeout}, nil
}

// idleConn re-arms the read deadline before every read, so that only a
// silent peer times out, never a large message on a slow link.
type idleConn struct {
	net.Conn
	timeout time.Duration
}

func (c idleConn) Read(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

// errorLog takes go-smtp's connection-level messages (handshake failures,
// resets) into the structured log.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Printf(format string, v ...any) { l.log.Info("smtp: " + fmt.Sprintf(format, v...)) }
func (l errorLog) Println(v ...any)               { l.log.Info("smtp: " + fmt.Sprint(v...)) }
