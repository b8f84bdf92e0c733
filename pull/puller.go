package pull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/server/answer"
)

// ErrBusy is returned for a run of a profile that is running already.
var ErrBusy = fmt.Errorf("pull %w", answer.ErrBusy)

// Puller keeps and runs the pull profiles of every tenant.
type Puller struct {
	log *slog.Logger
	p   *backend.Provider

	mu       sync.Mutex
	running  map[string]*Progress // by tenant/profile
	tenants  map[string]bool      // tenants with profiles, once scanned
	wake     chan struct{}
	dialWait time.Duration
}

// Progress is what a running pull has done so far.
type Progress struct {
	Folder   atomic.Pointer[string]
	Fetched  atomic.Int64
	Archived atomic.Int64
}

// New returns a Puller of the provider's tenants.
func New(p *backend.Provider, log *slog.Logger) *Puller {
	if log == nil {
		log = slog.Default()
	}
	return &Puller{log: log, p: p, running: map[string]*Progress{}, wake: make(chan struct{}, 1), dialWait: 30 * time.Second}
}

// PutProfile creates or replaces a profile. An empty password keeps the
// stored one. A changed server, login or target mailbox starts the
// folders over (dedup keeps what is archived from being stored twice).
func (s *Puller) PutProfile(ctx context.Context, tenant string, prof Profile) error {
	if err := prof.check(); err != nil {
		return err
	}
	t, err := s.p.Tenant(ctx, tenant)
	if err != nil {
		return err
	}
	if !hasMailbox(t, prof.Mailbox) {
		return fmt.Errorf("%w: tenant %q has no archive mailbox %s", backend.ErrNotFound, tenant, prof.Mailbox)
	}
	st := stored{Profile: prof}
	st.Password = ""
	if prof.Password != "" {
		st.Sealed = t.Seal(sealPurpose(prof.Name), []byte(prof.Password))
	} else if _, sealed, err := loadProfile(t, prof.Name); err == nil {
		st.Sealed = sealed
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := t.PutSetting(ctx, profileKey(prof.Name), b); err != nil {
		return err
	}
	s.mu.Lock()
	if s.tenants != nil {
		s.tenants[tenant] = true
	}
	s.mu.Unlock()
	t.Audit(ctx, backend.ActorOf(ctx), "pull-profile-put", fmt.Sprintf("%s %s %s:%d %s login %s into %s", prof.Name, prof.Protocol, prof.Host, prof.port(), prof.Security, prof.user(), prof.Mailbox))
	s.poke()
	return nil
}

func hasMailbox(t *backend.Tenant, addr string) bool {
	for _, m := range t.Mailboxes() {
		for _, a := range m.Addresses() {
			if strings.EqualFold(a, addr) {
				return true
			}
		}
	}
	return false
}

// DeleteProfile removes a profile and its progress; the archived mail
// stays.
func (s *Puller) DeleteProfile(ctx context.Context, tenant, name string) error {
	t, err := s.p.Tenant(ctx, tenant)
	if err != nil {
		return err
	}
	if _, _, err := loadProfile(t, name); err != nil {
		return err
	}
	if err := errors.Join(t.DeleteSetting(ctx, profileKey(name)), t.DeleteSetting(ctx, stateKey(name))); err != nil {
		return err
	}
	t.Audit(ctx, backend.ActorOf(ctx), "pull-profile-delete", name)
	return nil
}

// Info is a profile (without password) with its progress.
type Info struct {
	Profile
	PasswordSet bool     `json:"password_set"`
	State       *State   `json:"state"`
	Running     *Running `json:"running,omitempty"`
}

// Running is the progress of a run under way.
type Running struct {
	Folder   string `json:"folder"`
	Fetched  int64  `json:"fetched"`
	Archived int64  `json:"archived"`
}

// Profile returns one profile with its state.
func (s *Puller) Profile(ctx context.Context, tenant, name string) (*Info, error) {
	t, err := s.p.Tenant(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return s.info(t, name)
}

func (s *Puller) info(t *backend.Tenant, name string) (*Info, error) {
	p, sealed, err := loadProfile(t, name)
	if err != nil {
		return nil, err
	}
	st, err := loadState(t, name)
	if err != nil {
		return nil, err
	}
	in := &Info{Profile: *p, PasswordSet: len(sealed) > 0, State: st}
	s.mu.Lock()
	if pr := s.running[t.Name+"/"+name]; pr != nil {
		in.Running = &Running{Fetched: pr.Fetched.Load(), Archived: pr.Archived.Load()}
		if f := pr.Folder.Load(); f != nil {
			in.Running.Folder = *f
		}
	}
	s.mu.Unlock()
	return in, nil
}

// Profiles lists a tenant's profiles.
func (s *Puller) Profiles(ctx context.Context, tenant string) ([]*Info, error) {
	t, err := s.p.Tenant(ctx, tenant)
	if err != nil {
		return nil, err
	}
	keys, _, err := t.Settings(profilePrefix)
	if err != nil {
		return nil, err
	}
	out := make([]*Info, 0, len(keys))
	for _, k := range keys {
		in, err := s.info(t, strings.TrimPrefix(k, profilePrefix))
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

// Report is what one run did.
type Report struct {
	Tenant     string         `json:"tenant"`
	Profile    string         `json:"profile"`
	Started    time.Time      `json:"started"`
	Duration   Duration       `json:"duration"`
	Folders    []FolderReport `json:"folders"`
	Fetched    int            `json:"fetched"`
	Archived   int            `json:"archived"`
	Duplicates int            `json:"duplicates"`
	Errors     []string       `json:"errors,omitempty"`
	Error      string         `json:"error,omitempty"` // the run as a whole failed
}

// FolderReport is one source folder of a run.
type FolderReport struct {
	Source     string `json:"source"`
	Archive    string `json:"archive"`
	Fetched    int    `json:"fetched"`
	Archived   int    `json:"archived"`
	Duplicates int    `json:"duplicates"`
	Errors     int    `json:"errors,omitempty"`
	Restarted  bool   `json:"restarted,omitempty"` // UIDVALIDITY changed: fetched from the start
}

// Run pulls one profile now. The report comes back also when the run
// failed (Report.Error says why); what was archived before a failure stays
// archived and the next run goes on from there.
func (s *Puller) Run(ctx context.Context, tenant, name string) (*Report, error) {
	key := tenant + "/" + name
	pr := &Progress{}
	s.mu.Lock()
	if s.running[key] != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrBusy, key)
	}
	s.running[key] = pr
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, key)
		s.mu.Unlock()
	}()
	t, err := s.p.Tenant(ctx, tenant)
	if err != nil {
		return nil, err
	}
	prof, sealed, err := loadProfile(t, name)
	if err != nil {
		return nil, err
	}
	st, err := loadState(t, name)
	if err != nil {
		return nil, err
	}
	rep := &Report{Tenant: tenant, Profile: name, Started: time.Now().UTC(), Folders: []FolderReport{}}
	pass, err := password(t, name, sealed)
	if err == nil && prof.Protocol == "pop3" {
		err = s.runPOP3(ctx, t, prof, pass, st, rep, pr)
	} else if err == nil {
		err = s.runIMAP(ctx, t, prof, pass, st, rep, pr)
	}
	rep.Duration = Duration(time.Since(rep.Started))
	s.record(ctx, t, st, rep, err)
	return rep, err
}

// record logs, audits and stores the outcome of a run.
func (s *Puller) record(ctx context.Context, t *backend.Tenant, st *State, rep *Report, err error) {
	ctx = context.WithoutCancel(ctx)
	attrs := []any{"tenant", rep.Tenant, "profile", rep.Profile, "folders", len(rep.Folders), "fetched", rep.Fetched,
		"archived", rep.Archived, "duplicates", rep.Duplicates, "errors", len(rep.Errors), "took", time.Duration(rep.Duration).Round(time.Millisecond)}
	summary := fmt.Sprintf("%s: %d folders, %d fetched, %d archived, %d duplicates, %d errors",
		rep.Profile, len(rep.Folders), rep.Fetched, rep.Archived, rep.Duplicates, len(rep.Errors))
	action := "pull-run"
	st.LastRun, st.Error = rep.Started, ""
	if err != nil {
		rep.Error = err.Error()
		st.Error = rep.Error
		action = "pull-run-failed"
		summary += ": " + rep.Error
		s.log.Error("pull failed", append(attrs, "err", err)...)
	} else {
		st.LastSuccess = rep.Started
		s.log.Info("pull done", attrs...)
	}
	t.Audit(ctx, "pull/"+rep.Profile, action, summary)
	st.Last = rep
	if perr := saveState(ctx, t, rep.Profile, st); perr != nil {
		s.log.Error("store pull state", "tenant", rep.Tenant, "profile", rep.Profile, "err", perr)
	}
}

func saveState(ctx context.Context, t *backend.Tenant, name string, st *State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return t.PutSetting(ctx, stateKey(name), b)
}

// Schedule runs every profile with an interval when it is due, one run at
// a time, until ctx ends. A profile that never ran waits for its first run
// on demand, so that a mistyped profile does not pull on its own.
func (s *Puller) Schedule(ctx context.Context) error {
	const maxSleep = 5 * time.Minute
	for {
		next := time.Now().Add(maxSleep)
		for _, name := range s.scheduledTenants() {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if due := s.runDue(ctx, name); !due.IsZero() && due.Before(next) {
				next = due
			}
		}
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

// scheduledTenants returns the tenants that have pull profiles. Every
// tenant is opened once, at the first call; later calls return those found
// then and those that got a profile since, so that idle tenants stay
// closed.
func (s *Puller) scheduledTenants() []string {
	s.mu.Lock()
	known := s.tenants
	s.mu.Unlock()
	if known == nil {
		infos, err := s.p.Tenants()
		if err != nil {
			s.log.Error("pull schedule", "err", err)
			return nil
		}
		found := map[string]bool{}
		for _, ti := range infos {
			t, err := s.p.Tenant(context.Background(), ti.Name)
			if err != nil {
				continue
			}
			if keys, _, err := t.Settings(profilePrefix); err == nil && len(keys) > 0 {
				found[ti.Name] = true
			}
		}
		s.mu.Lock()
		if s.tenants == nil {
			s.tenants = found
		} else {
			maps.Copy(s.tenants, found)
		}
		known = s.tenants
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(known))
}

// runDue runs the tenant's due profiles and returns the earliest next due
// time (zero: none).
func (s *Puller) runDue(ctx context.Context, tenant string) time.Time {
	t, err := s.p.Tenant(ctx, tenant)
	if err != nil {
		return time.Time{}
	}
	keys, _, err := t.Settings(profilePrefix)
	if err != nil || len(keys) == 0 {
		return time.Time{}
	}
	var next time.Time
	for _, k := range keys {
		name := strings.TrimPrefix(k, profilePrefix)
		prof, _, err := loadProfile(t, name)
		if err != nil || prof.Interval == 0 {
			continue
		}
		st, err := loadState(t, name)
		if err != nil || st.LastRun.IsZero() {
			continue
		}
		wait := time.Duration(prof.Interval)
		if st.Error != "" {
			wait = min(wait, 5*time.Minute)
		}
		due := st.LastRun.Add(wait)
		if !due.After(time.Now()) {
			s.Run(ctx, tenant, name) // logs and records its outcome
			due = time.Now().Add(wait)
		}
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	return next
}

func (s *Puller) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
