package backend

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"

	"github.com/mailvault/mailvault/store"
)

// DiskLimits keep free space on the data directory's filesystem for the
// archive. Below the index floor the full-text index pauses (it can be
// rebuilt from the archive, the archive cannot be rebuilt from anything);
// below the intake floor ingest refuses new messages before writing
// anything, so that what is left still takes audit entries, metadata
// commits and buntdb's rewrites. Each floor is the larger of its bytes and
// its percentage of the filesystem's size; zero disables it.
type DiskLimits struct {
	IndexMinFree         int64
	IndexMinFreePercent  int
	IntakeMinFree        int64
	IntakeMinFreePercent int
}

// DiskFullError is returned by Ingest when free space is below the intake
// floor. It wraps ENOSPC, so intakes answer it as a full disk (SMTP 452).
type DiskFullError struct {
	Free    int64 // bytes free, less what running ingests will still write
	Reserve int64 // the intake floor
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("archive storage full: %s free, intake keeps %s in reserve", mib(e.Free), mib(e.Reserve))
}

func (e *DiskFullError) Unwrap() error { return syscall.ENOSPC }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// DiskSpace is the free-space state shown by Stats.
type DiskSpace struct {
	Free          int64 `json:"free_bytes"`
	Total         int64 `json:"total_bytes"`
	IndexMinFree  int64 `json:"index_min_free_bytes"`
	IntakeMinFree int64 `json:"intake_min_free_bytes"`
	IndexPaused   bool  `json:"index_paused"`   // this tenant's index
	IntakeRefused int64 `json:"intake_refused"` // messages refused for space since start, all tenants
}

// diskGuard watches the data directory's filesystem for all tenants, which
// share it. A nil guard has no floors.
type diskGuard struct {
	dir      string
	lim      DiskLimits
	log      *slog.Logger
	inflight atomic.Int64 // bytes admitted ingests and an index batch may still write
	refused  atomic.Int64
	refusing atomic.Bool // logs the change, not every refused message
}

func newDiskGuard(dir string, lim DiskLimits, log *slog.Logger) *diskGuard {
	return &diskGuard{dir: dir, lim: lim, log: log}
}

func floor(total, bytes int64, percent int) int64 {
	return max(bytes, total/100*int64(percent))
}

// ingestNeed bounds what one message of n bytes writes: the sealed blob
// (compressed, so at most the raw size plus framing), the sealed summary
// (its decoded text is at most about the raw size) and metadata records.
func ingestNeed(n int) int64 { return 2*int64(n) + 64<<10 }

// admit reserves room for a message of n bytes, or refuses it with a
// *DiskFullError. Concurrent ingests count against each other until they
// release, so a burst cannot jointly overrun the floor.
func (g *diskGuard) admit(n int) (release func(), err error) {
	if g == nil || g.lim.IntakeMinFree <= 0 && g.lim.IntakeMinFreePercent <= 0 {
		return func() {}, nil
	}
	need := ingestNeed(n)
	inflight := g.inflight.Add(need)
	sp, err := store.StatDisk(g.dir)
	if err != nil {
		// Not knowing is no reason to refuse mail: the write itself
		// still reports a full disk.
		g.log.Warn("cannot check free disk space", "err", err)
		return func() { g.inflight.Add(-need) }, nil
	}
	reserve := floor(sp.Total, g.lim.IntakeMinFree, g.lim.IntakeMinFreePercent)
	if free := sp.Free - inflight; free < reserve {
		g.inflight.Add(-need)
		g.refused.Add(1)
		if !g.refusing.Swap(true) {
			g.log.Error("intake refused: free disk space below the intake reserve; free space or grow the filesystem",
				"free", sp.Free, "reserve", reserve, "dir", g.dir)
		}
		return nil, &DiskFullError{Free: max(free, 0), Reserve: reserve}
	}
	if g.refusing.Swap(false) {
		g.log.Info("intake accepting again: free disk space above the intake reserve", "free", sp.Free, "reserve", reserve)
	}
	return func() { g.inflight.Add(-need) }, nil
}

// indexRoom reports whether the index may write about need bytes: free
// space stays above the index floor after them. resume asks for a tenth of
// the floor more, so that a paused index does not flap around the floor.
func (g *diskGuard) indexRoom(need int64, resume bool) (ok bool, sp store.DiskSpace, limit int64) {
	if g == nil || g.lim.IndexMinFree <= 0 && g.lim.IndexMinFreePercent <= 0 {
		return true, sp, 0
	}
	sp, err := store.StatDisk(g.dir)
	if err != nil {
		g.log.Warn("cannot check free disk space", "err", err)
		return true, sp, 0
	}
	limit = floor(sp.Total, g.lim.IndexMinFree, g.lim.IndexMinFreePercent)
	if resume {
		need += limit / 10
	}
	return sp.Free-g.inflight.Load()-need >= limit, sp, limit
}

// hold counts n bytes as taken until release, so that ingest leaves them.
func (g *diskGuard) hold(n int64) (release func()) {
	if g == nil {
		return func() {}
	}
	g.inflight.Add(n)
	return func() { g.inflight.Add(-n) }
}

func (g *diskGuard) state() DiskSpace {
	if g == nil {
		return DiskSpace{}
	}
	sp, _ := store.StatDisk(g.dir)
	return DiskSpace{
		Free: sp.Free, Total: sp.Total,
		IndexMinFree:  floor(sp.Total, g.lim.IndexMinFree, g.lim.IndexMinFreePercent),
		IntakeMinFree: floor(sp.Total, g.lim.IntakeMinFree, g.lim.IntakeMinFreePercent),
		IntakeRefused: g.refused.Load(),
	}
}

func (t *Tenant) diskSpace() DiskSpace {
	d := t.p.space.state()
	d.IndexPaused = t.ixs.paused.Load()
	return d
}
