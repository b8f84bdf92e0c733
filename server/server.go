package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/conf"
	"github.com/mailvault/mailvault/dirsync"
	"github.com/mailvault/mailvault/pull"
)

// Listener is a protocol server started by Run (IMAP, SMTP, ...).
type Listener interface {
	Serve(ln net.Listener) error
	Close() error
}

// Server is a running mailvault.
type Server struct {
	Config   conf.Config
	Provider *backend.Provider
	Log      *slog.Logger
	// Directory runs the tenants' directory sync profiles.
	Directory *dirsync.Syncer
	// Pull runs the tenants' pull profiles (mail fetched from other
	// servers).
	Pull *pull.Puller

	httpSrv   *http.Server
	mu        sync.Mutex
	lns       []Listener
	addrs     map[string]net.Addr
	endpoints map[string]func() any
	wg        sync.WaitGroup

	stopBackground context.CancelFunc
	handlers       []Handler
	met            *metrics
	ready          atomic.Bool
	opsSrv         *http.Server // metrics and health on their own listener; nil: on httpSrv
}

// AddEndpointStats registers a protocol endpoint's counters for the stats
// API (`mailvault stats`).
func (s *Server) AddEndpointStats(name string, fn func() any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endpoints[name] = fn
}

// EndpointStats returns every registered endpoint's counters.
func (s *Server) EndpointStats() map[string]any { return s.endpointStats() }

func (s *Server) endpointStats() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]any{}
	for name, fn := range s.endpoints {
		out[name] = fn()
	}
	return out
}

// Protocol builds a protocol listener once the archive is open; Run calls it
// for each configured protocol.
type Protocol struct {
	Name string // "imap", "smtp", ...
	Addr string
	New  func(s *Server) (Listener, error)
}

// HTTPService is served on the HTTP listener beside the management API
// (JMAP).
type HTTPService struct {
	Patterns []string
	New      func(s *Server) (Handler, error)
}

// Handler is an HTTP service that holds connections open (event streams)
// and is closed before the HTTP server shuts down.
type Handler interface {
	http.Handler
	Close() error
}

// Start opens the archive and starts every listener.
func Start(ctx context.Context, cfg conf.Config, log *slog.Logger, protocols []Protocol, services ...HTTPService) (*Server, error) {
	syncer := dirsync.New(log.With("component", "dirsync"))
	tsa, err := tsaOptions(cfg.Evidence)
	if err != nil {
		return nil, err
	}
	s3, err := S3Options(cfg.Store)
	if err != nil {
		return nil, err
	}
	met := newMetrics()
	met.reg.MustRegister(syncer.Collectors()...)
	p, err := backend.Open(backend.Options{
		S3:      s3,
		TSA:     tsa,
		DataDir: cfg.DataDir, Logger: log, MaxIndexedText: cfg.Store.MaxIndexedText,
		IdleClose: cfg.Store.IdleClose.Duration, CommitDelay: cfg.Store.CommitDelay.Duration,
		RetentionInterval: cfg.Store.RetentionInterval.Duration,
		Disk: &backend.DiskLimits{
			IndexMinFree: cfg.Store.IndexMinFreeBytes, IndexMinFreePercent: cfg.Store.IndexMinFreePercent,
			IntakeMinFree: cfg.Store.IntakeMinFreeBytes, IntakeMinFreePercent: cfg.Store.IntakeMinFreePercent,
		},
		Directory: syncer,
		Login:     backend.LoginLimits{Checks: cfg.Login.MaxChecks, Waiting: cfg.Login.MaxWaiting},
		Metrics:   met.reg,
	})
	if err != nil {
		return nil, err
	}
	syncer.Attach(p)
	s := &Server{Config: cfg, Provider: p, Log: log, Directory: syncer, addrs: map[string]net.Addr{}, endpoints: map[string]func() any{}, met: met}
	mux := http.NewServeMux()
	api := NewAPI(p, log.With("component", "api"))
	api.Endpoints = s.endpointStats
	syncer.Routes(api.mux)
	puller := pull.New(p, log.With("component", "pull"))
	s.Pull = puller
	puller.Routes(api.mux)
	mux.Handle("/api/v1/", api)
	schedCtx, stopSched := context.WithCancel(context.Background())
	s.stopBackground = stopSched
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := syncer.Schedule(schedCtx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("directory sync scheduler stopped", "err", err)
		}
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := puller.Schedule(schedCtx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("pull scheduler stopped", "err", err)
		}
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := p.TimestampLoop(schedCtx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("timestamp scheduler stopped", "err", err)
		}
	}()
	s.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	if cfg.HTTP.MetricsListen == "" {
		s.opsRoutes(mux, &s.ready)
	} else {
		opsMux := http.NewServeMux()
		s.opsRoutes(opsMux, &s.ready)
		// The main listener still answers /healthz: it is how a client
		// learns the API is up.
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
		s.opsSrv = &http.Server{Handler: opsMux, ReadHeaderTimeout: 30 * time.Second}
	}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	for _, svc := range services {
		h, err := svc.New(s)
		if err != nil {
			return nil, err
		}
		s.handlers = append(s.handlers, h)
		for _, pat := range svc.Patterns {
			mux.Handle(pat, h)
		}
	}
	if err := s.listen("http", cfg.HTTP.Listen, func(ln net.Listener) error { return s.httpSrv.Serve(ln) }); err != nil {
		return nil, err
	}
	if s.opsSrv != nil {
		if err := s.listen("metrics", cfg.HTTP.MetricsListen, func(ln net.Listener) error { return s.opsSrv.Serve(ln) }); err != nil {
			return nil, err
		}
	}
	for _, pr := range protocols {
		if pr.Addr == "" {
			continue
		}
		l, err := pr.New(s)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", pr.Name, err)
		}
		s.mu.Lock()
		s.lns = append(s.lns, l)
		s.mu.Unlock()
		if err := s.listen(pr.Name, pr.Addr, l.Serve); err != nil {
			return nil, err
		}
	}
	ok = true
	s.ready.Store(true)
	return s, nil
}

// tsaOptions reads the [evidence] section; nil when no TSA is configured.
func tsaOptions(ev conf.Evidence) (*backend.TSAOptions, error) {
	if ev.TSAURL == "" {
		return nil, nil
	}
	opt := &backend.TSAOptions{URL: ev.TSAURL, Interval: ev.Interval.Duration}
	if ev.TSACAFile != "" {
		pem, err := os.ReadFile(ev.TSACAFile)
		if err != nil {
			return nil, fmt.Errorf("evidence.tsa_ca_file: %w", err)
		}
		opt.Roots = x509.NewCertPool()
		if !opt.Roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("evidence.tsa_ca_file %s: no PEM certificate", ev.TSACAFile)
		}
	}
	return opt, nil
}

// Mux lets protocol packages add HTTP handlers (JMAP) before serving.
func (s *Server) Mux() *http.ServeMux { return s.httpSrv.Handler.(*http.ServeMux) }

func (s *Server) listen(name, addr string, serve func(net.Listener) error) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s on %s: %w", name, addr, err)
	}
	s.mu.Lock()
	s.addrs[name] = ln.Addr()
	s.mu.Unlock()
	s.Log.Info("listening", "protocol", name, "addr", ln.Addr().String())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.Log.Error("listener stopped", "protocol", name, "err", err)
		}
	}()
	return nil
}

// Addr returns the bound address of a protocol listener ("http", "imap", ...).
func (s *Server) Addr(name string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[name]
}

// Close stops the listeners, then closes the archive so that every commit
// in flight finishes first.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, h := range s.handlers {
		errs = append(errs, h.Close())
	}
	s.ready.Store(false)
	if s.httpSrv != nil {
		errs = append(errs, s.httpSrv.Shutdown(ctx))
	}
	if s.opsSrv != nil {
		errs = append(errs, s.opsSrv.Shutdown(ctx))
	}
	s.mu.Lock()
	lns := s.lns
	s.mu.Unlock()
	for _, l := range lns {
		errs = append(errs, l.Close())
	}
	if s.stopBackground != nil {
		s.stopBackground()
	}
	s.wg.Wait()
	errs = append(errs, s.Provider.Close())
	return errors.Join(errs...)
}

// TokenFile is where the provider token lives in a data directory.
func TokenFile(dataDir string) string { return filepath.Join(dataDir, "provider.token") }

// ReadToken reads the provider token of a data directory.
func ReadToken(dataDir string) (string, error) {
	b, err := os.ReadFile(TokenFile(dataDir))
	if err != nil {
		return "", fmt.Errorf("read provider token (is the server started with this data directory?): %w", err)
	}
	return string(trimSpace(b)), nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
