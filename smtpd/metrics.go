package smtpd

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the series the endpoint updates, bound by the server to the
// protocol label "smtp".
type Metrics struct {
	Sessions     prometheus.Gauge
	LoginsFailed prometheus.Counter
	// Commands observes the time of MAIL, RCPT, DATA (until every tenant
	// holds the message durably) and AUTH, by command.
	Commands prometheus.ObserverVec
}

// commandObservers are bound once, so timing a command looks up no label.
type commandObservers struct {
	mail, rcpt, data, auth prometheus.Observer
}

func (m Metrics) bind() (Metrics, commandObservers) {
	if m.Sessions == nil {
		m.Sessions = prometheus.NewGauge(prometheus.GaugeOpts{Name: "unregistered"})
	}
	if m.LoginsFailed == nil {
		m.LoginsFailed = prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered"})
	}
	if m.Commands == nil {
		m.Commands = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "unregistered"}, []string{"command"})
	}
	return m, commandObservers{
		mail: m.Commands.WithLabelValues("MAIL"), rcpt: m.Commands.WithLabelValues("RCPT"),
		data: m.Commands.WithLabelValues("DATA"), auth: m.Commands.WithLabelValues("AUTH"),
	}
}

// SetMetrics binds the endpoint to the server's series; call it before
// Serve.
func (s *Server) SetMetrics(m Metrics) { s.met, s.cmds = m.bind() }

func since(o prometheus.Observer, start time.Time) { o.Observe(time.Since(start).Seconds()) }

// Collectors exposes the endpoint's own counters (see Stats) as
// Prometheus series, read when scraped.
func (s *Server) Collectors() []prometheus.Collector {
	c := &s.stats
	counter := func(name, help string, labels prometheus.Labels, n *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(n.Load()) })
	}
	const rejHelp = "SMTP refusals by reason: recipient (RCPT refused), auth (failed journal login), too_large, temp_failure (message answered 4xx)."
	return []prometheus.Collector{
		counter("mailvault_smtp_accepted_messages_total", "Messages the journal endpoint answered 250.", nil, &c.acceptedMsgs),
		counter("mailvault_smtp_accepted_bytes_total", "Bytes of the messages answered 250.", nil, &c.acceptedBytes),
		counter("mailvault_smtp_malformed_reports_total", "Journal reports that could not be unwrapped (kept in the journal mailbox only).", nil, &c.malformedReports),
		counter("mailvault_smtp_rejected_total", rejHelp, prometheus.Labels{"reason": "recipient"}, &c.rejectedRcpts),
		counter("mailvault_smtp_rejected_total", rejHelp, prometheus.Labels{"reason": "auth"}, &c.authFailures),
		counter("mailvault_smtp_rejected_total", rejHelp, prometheus.Labels{"reason": "too_large"}, &c.tooLarge),
		counter("mailvault_smtp_rejected_total", rejHelp, prometheus.Labels{"reason": "temp_failure"}, &c.tempFailures),
	}
}
