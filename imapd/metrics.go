package imapd

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the series the IMAP server updates, bound by the server to
// the protocol label "imap" (plain and TLS listeners together).
type Metrics struct {
	Sessions     prometheus.Gauge
	LoginsFailed prometheus.Counter
	// Commands observes each command's time by name (UID FETCH apart
	// from FETCH); IDLE, which lasts as long as the client waits, is left
	// out, and unknown commands count as "other".
	Commands prometheus.ObserverVec
}

// timedCommands are the command names observed; anything else from a
// client is "other", so that no client can add labels.
var timedCommands = []string{
	"NOOP", "CHECK", "LOGOUT", "CAPABILITY", "STARTTLS", "AUTHENTICATE", "UNAUTHENTICATE", "LOGIN", "ENABLE",
	"CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "STATUS", "LIST", "LSUB", "NAMESPACE",
	"SELECT", "EXAMINE", "CLOSE", "UNSELECT", "APPEND", "FETCH", "UID FETCH", "EXPUNGE", "UID EXPUNGE",
	"STORE", "UID STORE", "COPY", "UID COPY", "MOVE", "UID MOVE", "SEARCH", "UID SEARCH", "ID",
}

// metrics holds the bound series: the map is built once and only read.
type metrics struct {
	Metrics
	cmds  map[string]prometheus.Observer
	other prometheus.Observer
}

func newMetrics(m Metrics) *metrics {
	if m.Sessions == nil {
		m.Sessions = prometheus.NewGauge(prometheus.GaugeOpts{Name: "unregistered"})
	}
	if m.LoginsFailed == nil {
		m.LoginsFailed = prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered"})
	}
	if m.Commands == nil {
		m.Commands = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "unregistered"}, []string{"command"})
	}
	out := &metrics{Metrics: m, cmds: make(map[string]prometheus.Observer, len(timedCommands)), other: m.Commands.WithLabelValues("other")}
	for _, c := range timedCommands {
		out.cmds[c] = m.Commands.WithLabelValues(c)
	}
	return out
}

// SetMetrics binds the server to the server's series; call it before
// Serve.
func (s *Server) SetMetrics(m Metrics) { s.met.Store(newMetrics(m)) }

func (s *Server) commandDone(name string, d time.Duration) {
	if name == "IDLE" {
		return
	}
	m := s.met.Load()
	o, ok := m.cmds[name]
	if !ok {
		o = m.other
	}
	o.Observe(d.Seconds())
}
