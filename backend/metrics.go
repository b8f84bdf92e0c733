package backend

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Intake names where a message came from, for the ingest metrics.
type Intake uint8

const (
	IntakeAPI    Intake = iota // the management API, the demo, the benchmark
	IntakeSMTP                 // the SMTP journal endpoint
	IntakeImport               // mailvault import (the batch import API)
	numIntakes
)

func (i Intake) String() string {
	switch i {
	case IntakeSMTP:
		return "smtp"
	case IntakeImport:
		return "import"
	default:
		return "api"
	}
}

// Reasons an ingest is refused, for mailvault_ingest_rejected_total.
const (
	rejectQuota = iota
	rejectDiskFull
	rejectInvalid
	rejectClosing
	rejectCanceled
	rejectError
	numRejects
)

var rejectNames = [numRejects]string{"quota", "disk_full", "invalid", "closing", "canceled", "error"}

func rejectReason(err error) int {
	var full *DiskFullError
	switch {
	case errors.Is(err, ErrQuota):
		return rejectQuota
	case errors.As(err, &full), errors.Is(err, syscall.ENOSPC):
		return rejectDiskFull
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrNotFound):
		return rejectInvalid
	case errors.Is(err, ErrTenantClosed):
		return rejectClosing
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return rejectCanceled
	default:
		return rejectError
	}
}

// metrics are the archive's Prometheus series. Every label value is bound
// when the provider opens, so that counting a message costs a few atomic
// adds and no label lookup.
type metrics struct {
	messages, bytes, duplicates [numIntakes]prometheus.Counter
	rejected                    [numIntakes][numRejects]prometheus.Counter
	commit                      prometheus.Histogram
	commitBatch                 prometheus.Histogram
}

func newMetrics(p *Provider, reg prometheus.Registerer) *metrics {
	m := &metrics{}
	labels := []string{"intake"}
	messages := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailvault_ingested_messages_total",
		Help: "Messages archived (new content or new placements), by intake.",
	}, labels)
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailvault_ingested_bytes_total",
		Help: "Raw bytes of the messages archived, by intake.",
	}, labels)
	dups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailvault_ingested_duplicates_total",
		Help: "Messages whose bytes the tenant held already (counted in mailvault_ingested_messages_total too), by intake.",
	}, labels)
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailvault_ingest_rejected_total",
		Help: "Messages the archive refused, by intake and reason (quota, disk_full, invalid, closing, canceled, error).",
	}, []string{"intake", "reason"})
	for i := Intake(0); i < numIntakes; i++ {
		m.messages[i] = messages.WithLabelValues(i.String())
		m.bytes[i] = bytes.WithLabelValues(i.String())
		m.duplicates[i] = dups.WithLabelValues(i.String())
		for r := range numRejects {
			m.rejected[i][r] = rejected.WithLabelValues(i.String(), rejectNames[r])
		}
	}
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "mailvault_commit_duration_seconds",
		Help:    "Time of one group commit (summaries, packs and anchor flushed, metadata fsynced).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	m.commitBatch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "mailvault_commit_batch_messages",
		Help:    "Messages per group commit.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
	})
	if reg != nil {
		reg.MustRegister(messages, bytes, dups, rejected, m.commit, m.commitBatch, tenantCollector{p})
	}
	return m
}

func (m *metrics) ingested(src Intake, size int, res IngestResult, err error) {
	if src >= numIntakes {
		src = IntakeAPI
	}
	if err != nil {
		m.rejected[src][rejectReason(err)].Inc()
		return
	}
	m.messages[src].Inc()
	if res.Duplicate {
		m.duplicates[src].Inc()
		return
	}
	m.bytes[src].Add(float64(size))
}

func (m *metrics) committed(start time.Time, n int) {
	m.commit.Observe(time.Since(start).Seconds())
	m.commitBatch.Observe(float64(n))
}

// tenantCollector reports the tenants' usage and the open tenants' index
// state when scraped; nothing is counted per message for it. A tenant not
// opened since the start is not reported.
type tenantCollector struct{ p *Provider }

var (
	descTenantMessages = prometheus.NewDesc("mailvault_tenant_messages", "Messages archived in a tenant (as of its closing, for a tenant closed while idle).", []string{"tenant"}, nil)
	descTenantBytes    = prometheus.NewDesc("mailvault_tenant_bytes", "Raw bytes archived in a tenant (as of its closing, for a tenant closed while idle).", []string{"tenant"}, nil)
	descIndexLag       = prometheus.NewDesc("mailvault_index_lag_messages", "Messages committed but not yet in the full-text index.", []string{"tenant"}, nil)
	descIndexPaused    = prometheus.NewDesc("mailvault_index_paused", "1 while a tenant's index is paused for disk space.", []string{"tenant"}, nil)
	descOutdated       = prometheus.NewDesc("mailvault_summaries_outdated", "Summaries of an older parser the tenant's summary pass has still to derive again, as of its last batch.", []string{"tenant"}, nil)
	descTenantsOpen    = prometheus.NewDesc("mailvault_tenants_open", "Tenants open now (a tenant is opened on use and closed when idle).", nil, nil)
)

func (c tenantCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTenantMessages, descTenantBytes, descIndexLag, descIndexPaused, descOutdated, descTenantsOpen} {
		ch <- d
	}
}

func (c tenantCollector) Collect(ch chan<- prometheus.Metric) {
	c.p.mu.Lock()
	open := make([]*Tenant, 0, len(c.p.tenants))
	for _, t := range c.p.tenants {
		open = append(open, t)
	}
	for name, u := range c.p.closedUsage {
		if c.p.tenants[name] == nil {
			ch <- prometheus.MustNewConstMetric(descTenantMessages, prometheus.GaugeValue, float64(u.messages), name)
			ch <- prometheus.MustNewConstMetric(descTenantBytes, prometheus.GaugeValue, float64(u.bytes), name)
		}
	}
	c.p.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descTenantsOpen, prometheus.GaugeValue, float64(len(open)))
	for _, t := range open {
		u := t.usage()
		ch <- prometheus.MustNewConstMetric(descTenantMessages, prometheus.GaugeValue, float64(u.messages), t.Name)
		ch <- prometheus.MustNewConstMetric(descTenantBytes, prometheus.GaugeValue, float64(u.bytes), t.Name)
		ch <- prometheus.MustNewConstMetric(descIndexLag, prometheus.GaugeValue, float64(u.indexLag), t.Name)
		paused := 0.0
		if t.ixs.paused.Load() {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(descIndexPaused, prometheus.GaugeValue, paused, t.Name)
		ch <- prometheus.MustNewConstMetric(descOutdated, prometheus.GaugeValue, float64(t.outdatedLeft.Load()), t.Name)
	}
}

type usage struct {
	messages, bytes int64
	indexLag        int
}

// usage is what a scrape reports of a tenant. The index lag walks the
// messages newer than the watermark only: msgs is in commit order, and a
// commit's modseq is above every earlier one, so the walk from the end
// stops at the first indexed new message (an older message whose flags or
// recipients changed after it is counted by Stats, not here).
func (t *Tenant) usage() usage {
	w := t.ix.Watermark()
	t.mu.RLock()
	defer t.mu.RUnlock()
	u := usage{messages: int64(len(t.msgs)), bytes: t.bytes}
	for i := len(t.msgs) - 1; i >= 0 && t.msgs[i].modseq > w; i-- {
		u.indexLag++
	}
	return u
}

// Ready reports whether the archive can take and serve mail: nil, or why
// not (a tenant that failed to open, intake refused or an index paused for
// disk space).
func (p *Provider) Ready() error {
	if st := p.space.state(); st.IntakeMinFree > 0 && st.Total > 0 && st.Free < st.IntakeMinFree {
		return fmt.Errorf("intake refused: %d bytes free, below the intake floor of %d", st.Free, st.IntakeMinFree)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return ErrTenantClosed
	}
	for _, err := range p.broken {
		return err
	}
	for _, t := range p.tenants {
		if t.ixs.paused.Load() {
			return errors.New("index of tenant " + t.Name + " paused: free disk space below the index floor")
		}
	}
	return nil
}
