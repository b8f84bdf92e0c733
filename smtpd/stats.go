package smtpd

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats is the journal endpoint's status since it started.
type Stats struct {
	Started  time.Time `json:"started"`
	Sessions int64     `json:"sessions"` // open SMTP sessions
	// Accepted counts messages answered 250, Duplicates those of them the
	// archive held already (retries, further journal reports).
	Accepted      int64     `json:"accepted"`
	AcceptedBytes int64     `json:"accepted_bytes"`
	Duplicates    int64     `json:"duplicates"`
	PerSecond     float64   `json:"per_second"` // accepted, over the last minute
	LastMessage   time.Time `json:"last_message,omitzero"`
	// Refusals: RCPTs refused (unknown tenant, not a journal address, not
	// allowed), failed logins, messages over the size or line limit, and
	// messages answered 4xx (archive failure, quota, disk full, cut off).
	RejectedRecipients int64 `json:"rejected_recipients"`
	AuthFailures       int64 `json:"auth_failures"`
	TooLarge           int64 `json:"too_large"`
	TempFailures       int64 `json:"temp_failures"`
	// MalformedReports counts accepted journal reports that could not be
	// unwrapped and were kept in the journal mailbox only.
	MalformedReports int64 `json:"malformed_reports"`
}

type counters struct {
	started                                          time.Time
	sessions                                         atomic.Int64
	acceptedMsgs, acceptedBytes, duplicates, lastMsg atomic.Int64
	rejectedRcpts, authFailures, tooLarge            atomic.Int64
	tempFailures, malformedReports                   atomic.Int64

	mu      sync.Mutex
	samples [rateWindow/sampleEvery + 1]sample // ring, for PerSecond
	next    int
}

type sample struct {
	at       time.Time
	accepted int64
}

const (
	sampleEvery = 10 * time.Second
	rateWindow  = time.Minute
	logEvery    = 6 // samples between status log lines
)

func (c *counters) accepted(bytes int64, duplicate bool) {
	c.acceptedMsgs.Add(1)
	c.acceptedBytes.Add(bytes)
	if duplicate {
		c.duplicates.Add(1)
	}
	c.lastMsg.Store(time.Now().UnixNano())
}

// Stats returns the endpoint's counters, for `mailvault stats`.
func (s *Server) Stats() Stats {
	c := &s.stats
	st := Stats{
		Started: c.started, Sessions: c.sessions.Load(),
		Accepted: c.acceptedMsgs.Load(), AcceptedBytes: c.acceptedBytes.Load(), Duplicates: c.duplicates.Load(),
		RejectedRecipients: c.rejectedRcpts.Load(), AuthFailures: c.authFailures.Load(),
		TooLarge: c.tooLarge.Load(), TempFailures: c.tempFailures.Load(), MalformedReports: c.malformedReports.Load(),
	}
	if l := c.lastMsg.Load(); l != 0 {
		st.LastMessage = time.Unix(0, l).UTC()
	}
	st.PerSecond = c.perSecond(time.Now(), st.Accepted)
	return st
}

// perSecond is the acceptance rate since the oldest sample of the last
// minute; in the first minute, since start.
func (c *counters) perSecond(now time.Time, accepted int64) float64 {
	from := sample{at: c.started}
	if now.Sub(c.started) > rateWindow {
		c.mu.Lock()
		for _, smp := range c.samples {
			if now.Sub(smp.at) <= rateWindow && (from.at.Equal(c.started) || smp.at.Before(from.at)) {
				from = smp
			}
		}
		c.mu.Unlock()
	}
	d := now.Sub(from.at).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(accepted-from.accepted) / d
}

// sampleStats keeps the samples for PerSecond and logs the endpoint status
// once a minute while there is traffic.
func (s *Server) sampleStats() {
	defer s.wg.Done()
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	var logged Stats
	for n := 1; ; n++ {
		select {
		case <-s.ctx.Done():
			return
		case now := <-tick.C:
			c := &s.stats
			c.mu.Lock()
			c.samples[c.next] = sample{at: now, accepted: c.acceptedMsgs.Load()}
			c.next = (c.next + 1) % len(c.samples)
			c.mu.Unlock()
		}
		if n%logEvery != 0 {
			continue
		}
		st := s.Stats()
		if st.Accepted == logged.Accepted && st.RejectedRecipients == logged.RejectedRecipients &&
			st.AuthFailures == logged.AuthFailures && st.TooLarge == logged.TooLarge && st.TempFailures == logged.TempFailures {
			continue
		}
		logged = st
		s.log.Info("journal endpoint status", "accepted", st.Accepted, "per_second", float64(int(st.PerSecond*10))/10,
			"duplicates", st.Duplicates, "last_message", st.LastMessage, "sessions", st.Sessions,
			"rejected_recipients", st.RejectedRecipients, "auth_failures", st.AuthFailures,
			"too_large", st.TooLarge, "temp_failures", st.TempFailures)
	}
}
