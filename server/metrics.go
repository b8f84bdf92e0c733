package server

import (
	"net/http"
	"runtime/debug"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// FrontEnd holds the series one protocol front end updates, each bound to
// its protocol label; the front end's own Metrics struct takes them.
type FrontEnd struct {
	Sessions     prometheus.Gauge
	LoginsFailed prometheus.Counter
	Commands     prometheus.ObserverVec // by "command"
}

// metrics is the server's registry and the series the front ends share.
type metrics struct {
	reg          *prometheus.Registry
	sessions     *prometheus.GaugeVec
	loginsFailed *prometheus.CounterVec
	commands     *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.sessions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mailvault_sessions",
		Help: "Open sessions by protocol (IMAP and SMTP connections; JMAP requests in flight and event streams).",
	}, []string{"protocol"})
	m.loginsFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailvault_logins_failed_total",
		Help: "Password logins refused as wrong (unknown user, wrong password), by protocol.",
	}, []string{"protocol"})
	m.commands = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mailvault_command_duration_seconds",
		Help:    "Time to answer a command (IMAP command, SMTP command, JMAP method call), by protocol and command.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"protocol", "command"})
	version := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	m.reg.MustRegister(m.sessions, m.loginsFailed, m.commands,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mailvault_build_info", Help: "Always 1; the version label names the build.",
			ConstLabels: prometheus.Labels{"version": version},
		}, func() float64 { return 1 }))
	return m
}

// Metrics is the registry served at /metrics; front ends register their
// own collectors here.
func (s *Server) Metrics() prometheus.Registerer { return s.met.reg }

// FrontEnd returns the shared series bound to one protocol ("imap",
// "smtp", "jmap"). The series of a protocol appear at once with 0.
func (s *Server) FrontEnd(protocol string) FrontEnd {
	m := s.met
	return FrontEnd{
		Sessions:     m.sessions.WithLabelValues(protocol),
		LoginsFailed: m.loginsFailed.WithLabelValues(protocol),
		Commands:     m.commands.MustCurryWith(prometheus.Labels{"protocol": protocol}),
	}
}

// opsRoutes adds /metrics, /healthz and /readyz; they need no token, as a
// scraper or a load balancer holds none.
func (s *Server) opsRoutes(mux *http.ServeMux, ready *atomic.Bool) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{s}}))
	// Alive: the process answers HTTP.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	// Ready: every listener bound, no tenant failed to open, the disk above
	// its floors, no index paused.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			http.Error(w, "starting: listeners not bound yet", http.StatusServiceUnavailable)
			return
		}
		if err := s.Provider.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
}

type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.Log.Error("metrics", "err", v) }
