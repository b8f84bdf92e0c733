package backend

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/mailvault/mailvault/cputime"
	"github.com/mailvault/mailvault/mailparse"
)

// A summary, its head and the message's bare-LF count are derived data:
// the archived message is the record, and they are what mailparse.Parse of
// some version made of it. One an older parser wrote (msgMeta.parser below
// mailparse.Version) lacks what the current one presents, so it is derived
// again from the message and stored again, keeping the message, its place
// in the hash chain, its UIDs, folders and flags:
//   - by a pass at tenant open, in the background, in MID order, a batch at
//     a time; each batch is stored like a commit (log flushed, records in
//     one transaction), so after a crash the next open goes on with what is
//     left, and a message already done is never parsed again;
//   - when a listing meets one before the pass did (listMessages), in one
//     write per listing, so what a client is shown is the current form.
//     A read of one message (summaryRecord: Summary, Envelope) derives it
//     in memory only: a scan of every message one by one (JMAP's thread
//     table) must not cost a write per message; the pass stores it.
// The caches made from listings (render cache, thread keys) therefore only
// ever hold what current summaries say, and need nothing dropped.

// A pass holds at most this many messages (or bytes of them) at once.
const (
	reparseBatch      = 256
	reparseBatchBytes = 16 << 20
	// reparseLogEvery is how often a running pass logs its progress.
	reparseLogEvery = 10 * time.Second
)

// Reparse starts the background pass over the summaries an older parser
// wrote, unless one is running (it starts at open), and returns how many
// are left. A message whose bytes could not be read is left for the next
// pass: this is how to retry after the blob store was repaired.
func (t *Tenant) Reparse() int {
	n := t.outdatedSummaries()
	if n > 0 {
		t.startReparse()
	}
	return n
}

// outdatedSummaries counts the messages whose summary an older parser wrote.
func (t *Tenant) outdatedSummaries() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	for i := range t.msgs {
		if m := &t.msgs[i]; outdated(m) {
			n++
		}
	}
	return n
}

func outdated(m *msgMeta) bool {
	return m.parser < mailparse.Version && !m.deleted && !m.missing
}

// startReparse runs reparsePass in the background unless it runs already.
func (t *Tenant) startReparse() {
	t.closeMu.RLock()
	defer t.closeMu.RUnlock()
	if t.closed || !t.reparsing.CompareAndSwap(false, true) {
		return
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer t.reparsing.Store(false)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-t.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		t.reparsePass(ctx)
	}()
}

// reparsePass derives again every summary an older parser wrote, in MID
// order, until none is left or ctx ends. It takes one core and holds the
// write lock only to point a batch's message records at their new
// summaries, so intake goes on beside it.
func (t *Tenant) reparsePass(ctx context.Context) {
	total := t.outdatedSummaries()
	t.outdatedLeft.Store(int64(total))
	if total == 0 {
		return
	}
	// Those left as they were, and those a listing derived meanwhile.
	defer func() { t.outdatedLeft.Store(int64(t.outdatedSummaries())) }()
	t.log.Info("summaries of an older parser: deriving them again from the messages", "messages", total, "parser", mailparse.Version)
	start, cpu0 := time.Now(), cputime.Process()
	logged := start
	done, failed := 0, 0
	for next := uint64(1); ; {
		mids, bytes, after := t.nextOutdated(next)
		if len(mids) == 0 {
			break
		}
		// Derived data yields to the archive, as the index does: below the
		// index floor the pass waits.
		if ok, _, _ := t.p.space.indexRoom(bytes, false); !ok {
			t.log.Warn("summary pass paused: free disk space below the index floor", "done", done, "left", total-done)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Minute):
			}
			continue
		}
		next = after
		t.touch() // a pass under way keeps the tenant open
		_, errs, err := t.rederive(ctx, mids)
		if err != nil {
			t.log.Error("summary pass stopped; it goes on at the next open", "done", done, "left", total-done-failed, "err", err)
			return
		}
		for i, err := range errs {
			switch {
			case err == nil:
				done++
			case ctx.Err() != nil:
			default:
				failed++
				t.log.Warn("summary not derived again; the message is left as it was", "mid", mids[i], "err", err)
			}
		}
		if ctx.Err() != nil {
			t.log.Info("summary pass stopped; it goes on at the next open", "done", done, "left", total-done-failed)
			return
		}
		t.outdatedLeft.Store(int64(total - done - failed))
		if now := time.Now(); now.Sub(logged) >= reparseLogEvery {
			logged = now
			t.log.Info("summary pass", "done", done, "of", total, "per_second", int(float64(done)/now.Sub(start).Seconds()))
		}
		t.log.Debug("summary pass batch", "done", done, "of", total)
	}
	took := time.Since(start)
	t.log.Info("summary pass finished", "derived", done, "failed", failed, "took", took.Round(time.Millisecond),
		"cpu_us_per_message", (cputime.Process()-cpu0).Microseconds()/int64(max(done, 1)))
}

// nextOutdated returns the next batch of messages from MID from on whose
// summary an older parser wrote, their size and the MID to go on from.
func (t *Tenant) nextOutdated(from uint64) (mids []uint64, bytes int64, next uint64) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	mid := from
	for ; mid <= uint64(len(t.msgs)) && len(mids) < reparseBatch && bytes < reparseBatchBytes; mid++ {
		if m := &t.msgs[mid-1]; outdated(m) {
			mids = append(mids, mid)
			bytes += m.size
		}
	}
	return mids, bytes, mid
}

// rederive parses mids again from their archived bytes and stores their
// summary records, bare-LF counts and the parser version in one write.
// recs[i] is the record of mids[i], or nil and errs[i] says why; err says
// why the records were not stored (they are still returned, to be served).
func (t *Tenant) rederive(ctx context.Context, mids []uint64) (recs [][]byte, errs []error, err error) {
	recs, errs = make([][]byte, len(mids)), make([]error, len(mids))
	redo := make([]rewrite, 0, len(mids))
	for i, mid := range mids {
		var r rewrite
		if recs[i], r, errs[i] = t.derive(ctx, mid); errs[i] == nil {
			redo = append(redo, r)
		}
	}
	if len(redo) == 0 {
		return recs, errs, nil
	}
	if err = t.replaceSummaries(redo); err != nil {
		return recs, errs, fmt.Errorf("store derived summaries: %w", err)
	}
	return recs, errs, nil
}

// derive parses mid again from its archived bytes: its summary record,
// and the rewrite that stores it in place of the record read before.
func (t *Tenant) derive(ctx context.Context, mid uint64) ([]byte, rewrite, error) {
	if err := ctx.Err(); err != nil {
		return nil, rewrite{}, err
	}
	t.mu.RLock()
	m := t.msgs[mid-1]
	t.mu.RUnlock()
	raw, err := t.RawMessage(ctx, mid)
	if err != nil {
		return nil, rewrite{}, fmt.Errorf("derive summary of message %d: %w", mid, err)
	}
	rec, err := encodeSummary(raw, mailparse.Parse(raw, mailparse.Options{MaxText: -1}))
	if err != nil {
		return nil, rewrite{}, fmt.Errorf("derive summary of message %d: %w", mid, err)
	}
	return rec, rewrite{
		mid: mid, old: m.sumOff,
		sealed:  t.seal.SealUncompressed(rec, appendSummaryAAD(nil, t.seal, m.sum)),
		bareLFs: uint32(min(mailparse.BareLFs(raw), math.MaxUint32)),
	}, nil
}
