package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/store"
)

// A run deletes a list of placements in batches. Its list is written to
// retention.run beside meta.db before the first batch, so a run cut off by
// a crash resumes at the next open with the same list (each placement
// judged again), and removed when the run has finished.
type run struct {
	ID      string     `json:"id"`
	Actor   string     `json:"actor,omitempty"` // compliance user; "" for the retention job
	Reason  string     `json:"reason"`          // "policy" or "request"
	Auto    bool       `json:"auto"`
	Started time.Time  `json:"started"`
	Items   []PlanItem `json:"-"`
	// Placements as (folder, uid, mid) triples, compact on disk.
	Triples [][3]uint64 `json:"placements"`
	// touched are the messages the run has changed (placements removed).
	touched map[uint64]bool
}

func newRun(actor, reason string, auto bool, items []PlanItem, now time.Time) *run {
	b := make([]byte, 6)
	rand.Read(b)
	return &run{ID: now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b), Actor: actor, Reason: reason, Auto: auto, Started: now.UTC(), Items: items, touched: map[uint64]bool{}}
}

func (r *run) actor() string {
	if r.Actor == "" {
		return "retention-job"
	}
	return r.Actor
}

// RunReport is the outcome of one deletion run; the last ones are kept.
type RunReport struct {
	ID         string         `json:"id"`
	Actor      string         `json:"actor"`
	Reason     string         `json:"reason"`
	Started    time.Time      `json:"started"`
	Finished   time.Time      `json:"finished"`
	Resumed    bool           `json:"resumed,omitempty"`
	Planned    int            `json:"planned"`
	Placements int            `json:"placements"`          // removed
	Messages   int            `json:"messages"`            // deleted with their bytes
	Reclaimed  int64          `json:"reclaimed"`           // bytes the pack compaction gave back
	ByPolicy   map[string]int `json:"by_policy,omitempty"` // planned placements per policy
	Review     int            `json:"review,omitempty"`
	Held       int            `json:"held"`
	Took       time.Duration  `json:"took_ns"`
}

// RetentionProgress is what a running deletion has done so far.
type RetentionProgress struct {
	Running bool   `json:"running"`
	Run     string `json:"run,omitempty"`
	Done    int64  `json:"done"`
	Total   int64  `json:"total"`
}

const runBatch = 500

// packCompactDead is the share of shredded bytes from which a pack is
// rewritten without them after a run.
const packCompactDead = 0.05

func (t *Tenant) runFile() string { return filepath.Join(t.dir, "retention.run") }

func reportKey(id string) string { return "retention:report:" + id }

// RunRetention runs the retention job once: it deletes every placement
// past a maximum retention whose policy says delete, and under no hold.
func (t *Tenant) RunRetention(ctx context.Context) (*RunReport, error) {
	t.touch()
	ev, err := t.newEvaluator(ctx)
	if err != nil {
		return nil, err
	}
	pl, err := t.planDeletion(ctx, nil, true, ev)
	if err != nil {
		return nil, err
	}
	r := newRun("", "policy", true, pl.Items, ev.now)
	rep, err := t.runDeletion(ctx, r, ev)
	if rep != nil {
		rep.Review, rep.Held = len(pl.Review), pl.Held
	}
	return rep, err
}

// runDeletion deletes r's placements in batches, writing r's list first so
// that a crash resumes it.
func (t *Tenant) runDeletion(ctx context.Context, r *run, ev *evaluator) (*RunReport, error) {
	release := t.Hold()
	defer release()
	t.runMu.Lock()
	defer t.runMu.Unlock()
	start := time.Now()
	rep := &RunReport{ID: r.ID, Actor: r.actor(), Reason: r.Reason, Started: r.Started, Planned: len(r.Items), ByPolicy: map[string]int{}}
	if err := t.finishShreds(ctx); err != nil {
		return nil, err
	}
	if len(r.Items) == 0 {
		rep.Finished, rep.Took = t.p.now().UTC(), time.Since(start)
		return rep, nil
	}
	if err := t.writeRun(r); err != nil {
		return nil, err
	}
	t.Audit(ctx, r.actor(), "retention-run", fmt.Sprintf("run=%s reason=%s planned=%d", r.ID, r.Reason, len(r.Items)))
	t.runProgress.Store(&RetentionProgress{Running: true, Run: r.ID, Total: int64(len(r.Items))})
	defer t.runProgress.Store(&RetentionProgress{})
	lastLog := time.Now()
	for i := 0; i < len(r.Items); i += runBatch {
		if err := ctx.Err(); err != nil {
			return rep, err // the run file stays: the next open resumes
		}
		if t.retGen.Load() != ev.gen {
			// A hold or policy changed: judge the rest against it.
			var err error
			if ev, err = t.newEvaluator(ctx); err != nil {
				return rep, err
			}
		}
		batch := r.Items[i:min(i+runBatch, len(r.Items))]
		removed, deleted, err := t.deleteBatch(ctx, r, batch, ev)
		rep.Placements += removed
		rep.Messages += deleted
		if err != nil {
			return rep, fmt.Errorf("retention run %s: %w", r.ID, err)
		}
		for _, it := range batch {
			if it.Policy != "" {
				rep.ByPolicy[it.Policy]++
			}
		}
		t.runProgress.Store(&RetentionProgress{Running: true, Run: r.ID, Done: int64(i + len(batch)), Total: int64(len(r.Items))})
		if time.Since(lastLog) > 5*time.Second {
			t.log.Info("retention run progress", "run", r.ID, "done", i+len(batch), "of", len(r.Items))
			lastLog = time.Now()
		}
	}
	if c, ok := t.blobs.(interface {
		Compact(context.Context, float64) (int64, error)
	}); ok {
		n, err := c.Compact(ctx, packCompactDead)
		rep.Reclaimed += n
		if err != nil {
			t.log.Error("compacting packs after a deletion run", "err", err)
		}
	}
	if err := t.compactMeta(); err != nil {
		t.log.Error("compacting meta.db after a deletion run", "err", err)
	}
	rep.Finished, rep.Took = t.p.now().UTC(), time.Since(start)
	t.Audit(ctx, r.actor(), "retention-run-finished", fmt.Sprintf("run=%s placements=%d messages=%d", r.ID, rep.Placements, rep.Messages))
	if err := t.db.Update(func(tx *buntdb.Tx) error { return setJSON(tx, reportKey(r.ID), rep) }); err != nil {
		t.log.Error("storing the retention run report", "err", err)
	}
	if err := os.Remove(t.runFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return rep, err
	}
	t.log.Info("retention run finished", "run", r.ID, "placements", rep.Placements, "messages", rep.Messages, "took", rep.Took.Round(time.Millisecond))
	return rep, nil
}

func (t *Tenant) writeRun(r *run) error {
	r.Triples = make([][3]uint64, len(r.Items))
	for i, it := range r.Items {
		r.Triples[i] = [3]uint64{it.folder, uint64(it.UID), it.MID}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := store.WriteFileAtomic(t.runFile(), b, 0o600); err != nil {
		return fmt.Errorf("write retention run: %w", err)
	}
	return nil
}

// resumeRun continues a run a crash cut off, if there is one.
func (t *Tenant) resumeRun(ctx context.Context) {
	b, err := os.ReadFile(t.runFile())
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	r := run{touched: map[uint64]bool{}}
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		t.log.Error("cannot read the interrupted retention run; it is not resumed", "err", err)
		return
	}
	t.mu.RLock()
	for _, tr := range r.Triples {
		it := PlanItem{folder: tr[0], UID: uint32(tr[1]), MID: tr[2]}
		if f := t.folders[tr[0]]; f != nil {
			it.Folder = f.Name
		}
		r.Items = append(r.Items, it)
	}
	t.mu.RUnlock()
	t.log.Info("resuming an interrupted retention run", "run", r.ID, "placements", len(r.Items))
	ev, err := t.newEvaluator(ctx)
	if err == nil {
		var rep *RunReport
		if rep, err = t.runDeletion(ctx, &r, ev); err == nil {
			rep.Resumed = true
		}
	}
	if err != nil && ctx.Err() == nil {
		t.log.Error("resuming the retention run", "run", r.ID, "err", err)
	}
}

// RetentionReports returns the reports of past runs, oldest first.
func (t *Tenant) RetentionReports() ([]RunReport, error) {
	var out []RunReport
	err := t.db.View(func(tx *buntdb.Tx) error {
		var ierr error
		tx.AscendKeys("retention:report:*", func(k, v string) bool {
			var r RunReport
			if ierr = json.Unmarshal([]byte(v), &r); ierr != nil {
				return false
			}
			out = append(out, r)
			return true
		})
		return ierr
	})
	return out, err
}

// RetentionProgress returns the state of the running deletion, if any.
func (t *Tenant) RetentionProgress() RetentionProgress {
	if p := t.runProgress.Load(); p != nil {
		return *p
	}
	return RetentionProgress{}
}

// compactMeta rewrites meta.db to its current records, so that deleted
// records are gone from the file too. buntdb's rewrite is not flushed
// before it replaces the file, so the state is first saved, flushed, to
// meta.db.compact, which an open finding it puts back; writers wait
// meanwhile.
func (t *Tenant) compactMeta() error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	path := filepath.Join(t.dir, "meta.db")
	backup := path + ".compact"
	f, err := os.OpenFile(backup+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = t.db.Save(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(backup+".tmp", backup)
	}
	if err == nil {
		err = store.SyncDir(t.dir)
	}
	if err != nil {
		os.Remove(backup + ".tmp")
		return fmt.Errorf("save meta.db before compaction: %w", err)
	}
	if err := t.db.Shrink(); err != nil {
		return fmt.Errorf("compact meta.db: %w", err)
	}
	mf, err := os.Open(path)
	if err != nil {
		return err
	}
	err = mf.Sync()
	mf.Close()
	if err == nil {
		err = store.SyncDir(t.dir)
	}
	if err != nil {
		return fmt.Errorf("flush compacted meta.db: %w", err)
	}
	return os.Remove(backup)
}

// restoreCompaction puts back the state saved before a compaction that a
// crash interrupted (see compactMeta); called before meta.db is opened.
func restoreCompaction(dir string) error {
	path := filepath.Join(dir, "meta.db")
	backup := path + ".compact"
	if _, err := os.Stat(backup); errors.Is(err, os.ErrNotExist) {
		os.Remove(backup + ".tmp")
		return nil
	}
	if err := os.Rename(backup, path); err != nil {
		return fmt.Errorf("restore meta.db saved before compaction: %w", err)
	}
	return store.SyncDir(dir)
}

// runRetentionJob runs the retention job of every tenant each interval.
func (p *Provider) runRetentionJob(interval time.Duration) {
	defer p.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-p.stop:
			case <-ctx.Done():
			}
			cancel()
		}()
		if _, err := p.deleteDueTenants(ctx); err != nil {
			p.log.Error("retention job: tenant end of life", "err", err)
		}
		tenants, err := p.Tenants()
		if err != nil {
			p.log.Error("retention job: list tenants", "err", err)
			cancel()
			continue
		}
		for _, info := range tenants {
			t, err := p.Tenant(ctx, info.Name)
			if err != nil {
				p.log.Error("retention job: open tenant", "tenant", info.Name, "err", err)
				continue
			}
			if _, err := t.RunRetention(ctx); err != nil && ctx.Err() == nil {
				p.log.Error("retention job", "tenant", info.Name, "err", err)
			}
		}
		cancel()
	}
}
