package jmap

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the series the JMAP handler updates, bound by the server to
// the protocol label "jmap".
type Metrics struct {
	// Sessions counts API requests in flight and open event streams (JMAP
	// holds no connection state between requests).
	Sessions     prometheus.Gauge
	LoginsFailed prometheus.Counter
	// Commands observes each method call's time, by method name; unknown
	// methods count as "other".
	Commands prometheus.ObserverVec
}

type metrics struct {
	Metrics
	methods map[string]prometheus.Observer // built once from the dispatch table, only read
	other   prometheus.Observer
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
	out := &metrics{Metrics: m, methods: make(map[string]prometheus.Observer, len(methods)), other: m.Commands.WithLabelValues("other")}
	for name := range methods {
		out.methods[name] = m.Commands.WithLabelValues(name)
	}
	return out
}

// SetMetrics binds the handler to the server's series; call it before
// serving.
func (h *Handler) SetMetrics(m Metrics) { h.met.Store(newMetrics(m)) }

type metricsPtr = atomic.Pointer[metrics]

func (h *Handler) methodDone(name string, start time.Time) {
	m := h.met.Load()
	o, ok := m.methods[name]
	if !ok {
		o = m.other
	}
	o.Observe(time.Since(start).Seconds())
}
