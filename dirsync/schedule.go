package dirsync

import (
	"context"
	"time"

	"github.com/mailvault/mailvault/backend"
)

// Scheduler timing.
const (
	maxSleep   = time.Hour       // look at the profile list at least this often
	retryAfter = 5 * time.Minute // a failed run is retried sooner than its interval
)

// Schedule runs every profile with an interval when it is due, one run at
// a time, until ctx ends. A run is due an interval after the last one
// (after a restart too); a profile that never ran is left to its first run
// on demand; a failed run is retried after at most five minutes.
func (s *Syncer) Schedule(ctx context.Context) error {
	for {
		next := s.runDue(ctx)
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-s.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// reschedule drops the cached due time of a profile that changed.
func (s *Syncer) reschedule(tenant, name string) {
	s.mu.Lock()
	delete(s.due, backend.DirectoryProfileRef{Tenant: tenant, Name: name})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// runDue runs the due profiles and returns when the next one is due.
func (s *Syncer) runDue(ctx context.Context) time.Time {
	next := time.Now().Add(maxSleep)
	p := s.p.Load()
	if p == nil {
		return time.Now().Add(retryAfter)
	}
	refs, err := p.DirectoryProfiles()
	if err != nil {
		s.log.Error("directory sync schedule", "err", err)
		return time.Now().Add(retryAfter)
	}
	live := map[backend.DirectoryProfileRef]bool{}
	for _, ref := range refs {
		if ctx.Err() != nil {
			break
		}
		live[ref] = true
		due := s.dueTime(ctx, ref)
		if due.IsZero() {
			continue
		}
		if !due.After(time.Now()) {
			// Run logs and records its outcome, failures included.
			s.Run(ctx, ref.Tenant, ref.Name, false)
			s.mu.Lock()
			delete(s.due, ref)
			s.mu.Unlock()
			due = s.dueTime(ctx, ref)
			if !due.IsZero() && !due.After(time.Now()) {
				// The run did not get far enough to record itself (busy,
				// tenant or profile unreadable): do not spin on it.
				due = time.Now().Add(retryAfter)
				s.mu.Lock()
				s.due[ref] = due
				s.mu.Unlock()
			}
		}
		if !due.IsZero() && due.Before(next) {
			next = due
		}
	}
	s.mu.Lock()
	for ref := range s.due {
		if !live[ref] {
			delete(s.due, ref)
		}
	}
	s.mu.Unlock()
	return next
}

// dueTime returns when a profile runs next (zero: not scheduled), from the
// cache or from its interval and stored status.
func (s *Syncer) dueTime(ctx context.Context, ref backend.DirectoryProfileRef) time.Time {
	s.mu.Lock()
	due, ok := s.due[ref]
	s.mu.Unlock()
	if ok {
		return due
	}
	due, err := s.computeDue(ctx, ref)
	if err != nil {
		s.log.Error("directory sync schedule", "tenant", ref.Tenant, "directory", ref.Name, "err", err)
		return time.Now().Add(retryAfter) // not cached: looked at again then
	}
	s.mu.Lock()
	s.due[ref] = due
	s.mu.Unlock()
	return due
}

func (s *Syncer) computeDue(ctx context.Context, ref backend.DirectoryProfileRef) (time.Time, error) {
	t, err := s.tenant(ctx, ref.Tenant)
	if err != nil {
		return time.Time{}, err
	}
	prof, err := loadProfile(t, ref.Name)
	if err != nil {
		return time.Time{}, err
	}
	if prof.Interval == 0 {
		return time.Time{}, nil
	}
	st, err := loadStatus(t, ref.Name)
	if err != nil {
		return time.Time{}, err
	}
	wait := time.Duration(prof.Interval)
	if st.Error != "" {
		wait = min(wait, retryAfter)
	}
	if st.LastRun.IsZero() {
		// Never run: saving a profile must not sync before the operator
		// has looked at a dry run; the schedule starts after the first
		// run made on demand.
		return time.Time{}, nil
	}
	return st.LastRun.Add(wait), nil
}
