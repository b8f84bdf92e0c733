package dirsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/server/answer"
)

// ErrBusy is returned for a run of a profile that is running already.
var ErrBusy = fmt.Errorf("directory sync %w", answer.ErrBusy)

// Syncer runs directory sync profiles and authenticates directory users.
// It is created before the provider (which needs it as its Authenticator)
// and attached to it once the provider is open.
type Syncer struct {
	log *slog.Logger
	p   atomic.Pointer[backend.Provider]

	mu      sync.Mutex
	running map[string]bool
	due     map[backend.DirectoryProfileRef]time.Time // scheduler's next runs; zero = not scheduled
	wake    chan struct{}

	runs runCounters
}

// runCounters count finished runs by result for the metrics
// (mailvault_dirsync_runs_total).
type runCounters struct{ ok, failed, dryRun, dryRunFailed atomic.Int64 }

// Collectors returns the Syncer's Prometheus series, for the server to
// register.
func (s *Syncer) Collectors() []prometheus.Collector {
	opts := func(result string) prometheus.CounterOpts {
		return prometheus.CounterOpts{
			Name:        "mailvault_dirsync_runs_total",
			Help:        "Directory sync runs finished, by result (ok, failed, dry_run, dry_run_failed).",
			ConstLabels: prometheus.Labels{"result": result},
		}
	}
	var out []prometheus.Collector
	for _, c := range []struct {
		result string
		n      *atomic.Int64
	}{{"ok", &s.runs.ok}, {"failed", &s.runs.failed}, {"dry_run", &s.runs.dryRun}, {"dry_run_failed", &s.runs.dryRunFailed}} {
		out = append(out, prometheus.NewCounterFunc(opts(c.result), func() float64 { return float64(c.n.Load()) }))
	}
	return out
}

// New returns a Syncer; Attach gives it the provider.
func New(log *slog.Logger) *Syncer {
	if log == nil {
		log = slog.Default()
	}
	return &Syncer{log: log, running: map[string]bool{}, due: map[backend.DirectoryProfileRef]time.Time{}, wake: make(chan struct{}, 1)}
}

// Attach connects the Syncer to the provider whose Options.Directory it is.
func (s *Syncer) Attach(p *backend.Provider) { s.p.Store(p) }

func (s *Syncer) tenant(ctx context.Context, name string) (*backend.Tenant, error) {
	p := s.p.Load()
	if p == nil {
		return nil, errors.New("directory sync is not attached to the archive yet")
	}
	return p.Tenant(ctx, name)
}

// PutProfile creates or replaces a profile (an empty bind password keeps the
// stored one) and claims its domains for it.
func (s *Syncer) PutProfile(ctx context.Context, tenant string, prof Profile) error {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return err
	}
	if err := saveProfile(ctx, t, prof); err != nil {
		return err
	}
	if err := s.p.Load().RegisterDirectoryProfile(tenant, prof.Name, true); err != nil {
		return err
	}
	t.Audit(ctx, backend.ActorOf(ctx), "dirsync-profile-put", fmt.Sprintf("%s %s base %s domains %s gone %s", prof.Name, prof.URL, prof.BaseDN, strings.Join(prof.Domains, ","), prof.Gone))
	s.reschedule(tenant, prof.Name)
	return nil
}

// DeleteProfile removes a profile and releases its domains. Its users stay
// but cannot log in until another profile of the same name feeds them.
func (s *Syncer) DeleteProfile(ctx context.Context, tenant, name string) error {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return err
	}
	if _, err := t.GetSetting(profileKey(name)); err != nil {
		return err
	}
	err = errors.Join(t.ClaimDirectoryDomains(ctx, name, nil), t.DeleteSetting(ctx, profileKey(name)),
		t.DeleteSetting(ctx, statusKey(name)), s.p.Load().RegisterDirectoryProfile(tenant, name, false))
	if err != nil {
		return err
	}
	t.Audit(ctx, backend.ActorOf(ctx), "dirsync-profile-delete", name)
	s.reschedule(tenant, name)
	return nil
}

// Profile returns a profile without its bind password.
func (s *Syncer) Profile(ctx context.Context, tenant, name string) (*Profile, error) {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return nil, err
	}
	p, err := loadProfile(t, name)
	if err != nil {
		return nil, err
	}
	p.BindPassword = ""
	return p, nil
}

// Profiles lists a tenant's profiles without bind passwords.
func (s *Syncer) Profiles(ctx context.Context, tenant string) ([]Profile, error) {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return listProfiles(t)
}

// Status is the outcome of a profile's last run (dry runs excluded).
type Status struct {
	LastRun     time.Time `json:"last_run"`
	Duration    Duration  `json:"duration"`
	Changes     int       `json:"changes"`
	Skipped     int       `json:"skipped"`
	Error       string    `json:"error,omitempty"`
	LastSuccess time.Time `json:"last_success,omitzero"`
}

// Status returns the last run of a profile; a profile that never ran has a
// zero Status.
func (s *Syncer) Status(ctx context.Context, tenant, name string) (*Status, error) {
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return loadStatus(t, name)
}

func loadStatus(t *backend.Tenant, name string) (*Status, error) {
	var st Status
	b, err := t.GetSetting(statusKey(name))
	if errors.Is(err, backend.ErrNotFound) {
		return &st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("status of directory profile %q: %w", name, err)
	}
	return &st, nil
}

// Report is what a run read, changed (or in a dry run would change) and
// left out.
type Report struct {
	Tenant   string                    `json:"tenant"`
	Profile  string                    `json:"profile"`
	DryRun   bool                      `json:"dry_run"`
	Started  time.Time                 `json:"started"`
	Duration Duration                  `json:"duration"`
	Read     ReadStats                 `json:"read"`
	Changes  []backend.DirectoryChange `json:"changes"`
	Skipped  []string                  `json:"skipped,omitempty"`
	Warnings []string                  `json:"warnings,omitempty"`
	Error    string                    `json:"error,omitempty"`
}

// Run reads the profile's directory completely and brings the tenant in
// line with it; a dry run only reports. A failed run changes nothing. The
// report is returned also when the run failed.
func (s *Syncer) Run(ctx context.Context, tenant, profile string, dryRun bool) (*Report, error) {
	key := tenant + "/" + profile
	s.mu.Lock()
	if s.running[key] {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrBusy, key)
	}
	s.running[key] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, key)
		s.mu.Unlock()
	}()

	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return nil, err
	}
	prof, err := loadProfile(t, profile)
	if err != nil {
		return nil, err
	}
	rep := &Report{Tenant: tenant, Profile: profile, DryRun: dryRun, Started: time.Now().UTC(), Changes: []backend.DirectoryChange{}}
	err = s.run(ctx, t, prof, rep)
	rep.Duration = Duration(time.Since(rep.Started))
	s.record(ctx, t, rep, err)
	return rep, err
}

func (s *Syncer) run(ctx context.Context, t *backend.Tenant, prof *Profile, rep *Report) error {
	e, err := prof.effective()
	if err != nil {
		return err
	}
	snap, stats, warnings, err := read(ctx, e)
	if stats != nil {
		rep.Read = *stats
	}
	rep.Warnings = warnings
	if err != nil {
		return fmt.Errorf("read directory %s: %w", e.URL, err)
	}
	res, err := t.SyncDirectory(ctx, snap, rep.DryRun)
	if err != nil {
		return err
	}
	rep.Changes, rep.Skipped = res.Changes, res.Skipped
	return nil
}

// record logs, audits and (for real runs) stores the outcome of a run.
func (s *Syncer) record(ctx context.Context, t *backend.Tenant, rep *Report, err error) {
	summary := fmt.Sprintf("%s: read %d users (%d disabled) and %d groups in %d pages; %d changes, %d skipped",
		rep.Profile, rep.Read.Users, rep.Read.Disabled, rep.Read.Groups, rep.Read.Pages, len(rep.Changes), len(rep.Skipped))
	action := "dirsync-run"
	if rep.DryRun {
		action = "dirsync-dry-run"
	}
	attrs := []any{"tenant", rep.Tenant, "directory", rep.Profile, "dry_run", rep.DryRun, "users", rep.Read.Users,
		"groups", rep.Read.Groups, "changes", len(rep.Changes), "skipped", len(rep.Skipped), "took", time.Duration(rep.Duration).Round(time.Millisecond)}
	switch {
	case err != nil && rep.DryRun:
		s.runs.dryRunFailed.Add(1)
	case err != nil:
		s.runs.failed.Add(1)
	case rep.DryRun:
		s.runs.dryRun.Add(1)
	default:
		s.runs.ok.Add(1)
	}
	if err != nil {
		rep.Error = err.Error()
		action += "-failed"
		summary = rep.Profile + ": " + rep.Error
		s.log.Error("directory sync failed; nothing was changed", append(attrs, "err", err)...)
	} else {
		s.log.Info("directory sync done", attrs...)
	}
	// The audit entry is written even if the caller has given up.
	ctx = context.WithoutCancel(ctx)
	t.Audit(ctx, "dirsync/"+rep.Profile, action, summary)
	if rep.DryRun {
		return
	}
	st, lerr := loadStatus(t, rep.Profile)
	if lerr != nil {
		st = &Status{}
	}
	st.LastRun, st.Duration, st.Changes, st.Skipped, st.Error = rep.Started, rep.Duration, len(rep.Changes), len(rep.Skipped), rep.Error
	if err == nil {
		st.LastSuccess = rep.Started
	}
	b, _ := json.Marshal(st)
	if perr := t.PutSetting(ctx, statusKey(rep.Profile), b); perr != nil {
		s.log.Error("store directory sync status", "tenant", rep.Tenant, "directory", rep.Profile, "err", perr)
	}
}

// WriteText prints the report for a person.
func (r *Report) WriteText(w io.Writer) error {
	verb := "made"
	if r.DryRun {
		verb = "would make"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "directory %s of tenant %s: read %d users (%d disabled) and %d groups in %d pages, %s\n",
		r.Profile, r.Tenant, r.Read.Users, r.Read.Disabled, r.Read.Groups, r.Read.Pages, time.Duration(r.Duration).Round(time.Millisecond))
	if r.Error != "" {
		fmt.Fprintf(&b, "FAILED, nothing changed: %s\n", r.Error)
	} else {
		fmt.Fprintf(&b, "%s %d changes\n", verb, len(r.Changes))
	}
	for _, c := range r.Changes {
		fmt.Fprintf(&b, "  %-16s %s", c.Action, c.Subject)
		if c.Detail != "" {
			b.WriteString("  " + c.Detail)
		}
		b.WriteByte('\n')
	}
	for _, l := range []struct {
		title string
		lines []string
	}{{"skipped", r.Skipped}, {"warnings", r.Warnings}} {
		if len(l.lines) > 0 {
			fmt.Fprintf(&b, "%s (%d):\n", l.title, len(l.lines))
			for _, s := range l.lines {
				b.WriteString("  " + s + "\n")
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
