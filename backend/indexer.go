package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/index"
	"github.com/mailvault/mailvault/mailparse"
)

type indexJob struct {
	mid     uint64
	modseq  uint64
	summary *mailparse.Summary // nil: rebuild from the blob
	size    int64              // of the raw message, set by the catch-up
}

// indexState is what the indexer, its committer and Reindex share.
type indexState struct {
	// commitMu makes the committer's check of gen and its Commit one step,
	// so that a batch from before a rewind cannot move the watermark.
	commitMu sync.Mutex
	gen      atomic.Uint64 // bumped when batches in flight are void: the indexer restarts from the watermark
	fails    atomic.Int64  // failed commits in a row, for the back-off
	paused   atomic.Bool
	need     atomic.Int64 // bytes the last batch dropped for space wanted
	reindex  atomic.Bool  // a rebuild from the archive was asked for
}

const (
	maxIndexBatch = 4000
	// maxBatchBytes bounds a batch by its messages' text (in a catch-up:
	// their sizes), which bounds both the memory to prepare it and the
	// disk space its segment takes.
	maxBatchBytes = 16 << 20
	// spaceCheck is how often an idle or paused indexer looks at the
	// free disk space.
	spaceCheck = time.Second
)

func (j *indexJob) textSize() int {
	if j.summary == nil {
		return 0
	}
	return len(j.summary.Text)
}

func (t *Tenant) queueIndex(j indexJob) {
	select {
	case t.indexQ <- j:
	case <-t.done:
	}
}

// catchUp feeds, in modseq order and read from the blobs, what the index's
// watermark does not cover: after a start, a failed batch or a pause. Jobs
// committed meanwhile keep arriving on indexQ and are drained, so that the
// archive never waits for the index.
type catchUp struct {
	todo      []indexJob // without summaries: a few words per message
	watermark uint64     // todo holds every message with watermark < modseq <= covered
	covered   uint64
	pending   []indexJob // queued jobs after covered, in order
	overflow  bool       // pending was full and jobs were dropped: scan again
}

func (t *Tenant) newCatchUp() *catchUp {
	cu := &catchUp{watermark: t.ix.Watermark()}
	t.mu.RLock()
	cu.covered = t.modseq
	for i := range t.msgs {
		if m := &t.msgs[i]; m.modseq > cu.watermark {
			cu.todo = append(cu.todo, indexJob{mid: uint64(i + 1), modseq: m.modseq, size: m.size})
		}
	}
	t.mu.RUnlock()
	sort.Slice(cu.todo, func(i, j int) bool { return cu.todo[i].modseq < cu.todo[j].modseq })
	if len(cu.todo) > 0 {
		t.log.Info("index catching up from the archive", "messages", len(cu.todo), "watermark", cu.watermark)
	}
	return cu
}

// take drops a queued job the scan covers and keeps a later one.
func (cu *catchUp) take(j indexJob) {
	switch {
	case j.modseq > cu.watermark && j.modseq <= cu.covered:
	case len(cu.pending) < maxIndexBatch:
		cu.pending = append(cu.pending, j)
	default:
		cu.overflow = true
	}
}

// drain takes queued jobs until stop is called, so the committer does not
// block while a catch-up batch is read and analyzed.
func (t *Tenant) drain(cu *catchUp) (stop func()) {
	quit, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case j := <-t.indexQ:
				cu.take(j)
			case <-quit:
				return
			case <-t.done:
				return
			}
		}
	}()
	return func() { close(quit); <-stopped }
}

// next returns the next catch-up batch and its watermark. Messages of one
// modseq stay within one watermark: a batch that ends inside a modseq
// claims only the one before.
func (cu *catchUp) next() ([]indexJob, uint64) {
	n, bytes := 0, int64(0)
	for n < min(len(cu.todo), maxIndexBatch) && (n == 0 || bytes+cu.todo[n].size <= maxBatchBytes) {
		bytes += cu.todo[n].size
		n++
	}
	batch := cu.todo[:n:n]
	cu.todo = cu.todo[n:]
	upTo := batch[n-1].modseq
	if len(cu.todo) > 0 && cu.todo[0].modseq == upTo {
		upTo--
	}
	return batch, upTo
}

// indexer feeds the full-text index in batches, in two stages: this
// goroutine gathers a batch and analyzes it on all cores while
// indexCommitter writes the previous one, which is single-threaded in bluge.
// The archive has priority over the index: below the index's floor of free
// disk space the index pauses and forgets what was queued; it catches up
// from the blobs when space is back.
func (t *Tenant) indexer() {
	defer t.wg.Done()
	prepared := make(chan preparedBatch) // unbuffered: at most one waits
	t.wg.Add(1)
	go t.indexCommitter(prepared)
	defer close(prepared)
	gen := t.ixs.gen.Load()
	cu := t.newCatchUp()
	var carry []indexJob
	for {
		if t.ixs.reindex.Load() {
			if err := t.rewindIndex(); err != nil {
				t.log.Error("reindex: cannot reset the index watermark; will retry", "err", err)
			} else {
				gen, cu, carry = t.ixs.gen.Load(), t.newCatchUp(), nil
			}
		}
		if g := t.ixs.gen.Load(); g != gen {
			// The committer dropped a batch: what it had added is
			// unpersisted state of bluge's, which reopening releases.
			gen, carry = g, nil
			if fails := t.ixs.fails.Load(); fails > 0 {
				t.resetIndexWriter()
				if !t.sleep(time.Second << min(fails-1, 5)) {
					return
				}
			}
			cu = t.newCatchUp()
		}
		if ok, sp, limit := t.p.space.indexRoom(t.ixs.need.Load(), false); !ok {
			if !t.pauseIndex(sp.Free, limit) {
				return
			}
			gen, cu, carry = t.ixs.gen.Load(), t.newCatchUp(), nil
			continue
		}
		var batch []indexJob
		var upTo uint64
		var stopDrain func()
		switch {
		case cu != nil && len(cu.todo) > 0:
			batch, upTo = cu.next()
			stopDrain = t.drain(cu)
		case cu != nil && cu.overflow:
			cu = t.newCatchUp()
			continue
		case cu != nil:
			if cu.covered > cu.watermark {
				t.log.Info("index caught up", "modseq", cu.covered)
			}
			carry, cu = cu.pending, nil
			continue
		default:
			var ok bool
			if batch, ok = t.gather(carry); !ok {
				return
			}
			carry = nil
			if len(batch) == 0 {
				continue // time to look at the disk space again
			}
			for _, j := range batch {
				upTo = max(upTo, j.modseq)
			}
		}
		pb, ok := t.prepareWithRetry(batch, upTo)
		clear(batch) // drop references to parsed summaries until the next batch
		if ok {
			pb.gen = gen
			ok = t.handOver(prepared, pb)
		}
		if stopDrain != nil {
			stopDrain()
		}
		if !ok {
			return
		}
	}
}

// handOver passes a prepared batch to the committer. Writing the one
// before may take long on a full disk (bluge's persister waits for its
// merger), so the disk space is watched meanwhile: below the floor the
// batch is dropped, and the indexer pauses. false: the tenant closes.
func (t *Tenant) handOver(prepared chan<- preparedBatch, pb preparedBatch) bool {
	tick := time.NewTicker(spaceCheck)
	defer tick.Stop()
	for {
		select {
		case prepared <- pb:
			return true
		case <-t.done:
			return false
		case <-tick.C:
			if ok, _, _ := t.p.space.indexRoom(0, false); !ok {
				t.ixs.gen.Add(1) // the batch is dropped: catch up after the pause
				return true
			}
		}
	}
}

// gather collects the next batch from indexQ, starting with carry. An
// empty batch means none came within spaceCheck; false means the tenant
// closes.
func (t *Tenant) gather(carry []indexJob) ([]indexJob, bool) {
	batch := carry
	if len(batch) == 0 {
		tick := time.NewTimer(spaceCheck)
		defer tick.Stop()
		select {
		case j := <-t.indexQ:
			batch = append(batch, j)
		case <-tick.C:
			return nil, true
		case <-t.done:
			return nil, false
		}
	}
	// Gather for a while: every Bluge batch is a segment and an fsync,
	// and many small segments make the merger burn the CPU that ingest
	// needs. A large batch goes as soon as the queue falls quiet: the
	// end of a burst is searchable without waiting out the second.
	deadline := time.After(time.Second)
	quiet := time.NewTimer(time.Hour)
	defer quiet.Stop()
	var bytes int
	for _, j := range batch {
		bytes += j.textSize()
	}
	for len(batch) < maxIndexBatch && bytes < maxBatchBytes {
		if len(batch) >= minQuietBatch {
			quiet.Reset(quietGap)
		}
		select {
		case j := <-t.indexQ:
			batch = append(batch, j)
			bytes += j.textSize()
		case <-deadline:
			return batch, true
		case <-quiet.C:
			return batch, true
		case <-t.done:
			return nil, false
		}
	}
	return batch, true
}

func (t *Tenant) prepareWithRetry(batch []indexJob, upTo uint64) (preparedBatch, bool) {
	for attempt := 0; ; attempt++ {
		pb, err := t.prepareBatch(batch)
		if err == nil {
			pb.upTo = upTo
			return pb, true
		}
		t.log.Error("index batch failed; will retry", "messages", len(batch), "err", err)
		if !t.sleep(time.Second << min(attempt, 5)) {
			return preparedBatch{}, false
		}
	}
}

// sleep waits d or until the tenant closes (false).
func (t *Tenant) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-t.done:
		return false
	}
}

// pauseIndex closes the index's writer until free space is back above its
// floor, dropping every queued job: the messages stay in the archive, and
// the catch-up after the pause reads them from there. false: the tenant
// closes.
func (t *Tenant) pauseIndex(free, limit int64) bool {
	// Pause waits for a batch being written; the queue is drained
	// meanwhile, so that commits never wait for the index.
	paused := make(chan error, 1)
	go func() { paused <- t.ix.Pause() }()
	for done := false; !done; {
		select {
		case <-t.indexQ:
		case err := <-paused:
			if err != nil {
				t.log.Error("pause index", "err", err)
			}
			done = true
		case <-t.done:
			return false
		}
	}
	t.ixs.paused.Store(true)
	t.log.Warn("index paused: free disk space below the index floor; the archive goes first, the index catches up when space is back",
		"free", free, "floor", limit)
	tick := time.NewTicker(spaceCheck)
	defer tick.Stop()
	for {
		select {
		case <-t.indexQ:
		case <-t.done:
			return false
		case <-tick.C:
			ok, sp, _ := t.p.space.indexRoom(t.ixs.need.Load(), true)
			if !ok {
				continue
			}
			if err := t.ix.Resume(); err != nil {
				t.log.Error("resume index; will retry", "err", err)
				continue
			}
			t.ixs.paused.Store(false)
			t.log.Info("index resumed: free disk space is back above the index floor", "free", sp.Free)
			return true
		}
	}
}

// resetIndexWriter reopens the index's writer after a failed batch: bluge
// keeps a batch it could not persist in memory and retries it with every
// later one.
func (t *Tenant) resetIndexWriter() {
	err := t.ix.Pause()
	if err == nil {
		err = t.ix.Resume()
	}
	if err != nil {
		t.log.Error("reopen index after a failed batch", "err", err)
	}
}

// rewindIndex voids the batches in flight and sets the watermark to 0, so
// the catch-up re-reads every message.
func (t *Tenant) rewindIndex() error {
	t.ixs.commitMu.Lock()
	defer t.ixs.commitMu.Unlock()
	t.ixs.gen.Add(1)
	if err := t.ix.Rewind(0); err != nil {
		return err
	}
	t.ixs.reindex.Store(false)
	return nil
}

// A batch of at least minQuietBatch messages is indexed once no message
// has come for quietGap.
const (
	minQuietBatch = 256
	quietGap      = 20 * time.Millisecond
)

type preparedBatch struct {
	b    *index.Prepared
	upTo uint64
	gen  uint64
	size int64 // bytes of text, for the disk space the segment needs
}

// indexCommitter writes prepared batches in order. A batch it cannot write
// is dropped and voids the ones after it (gen): the indexer starts again
// from the watermark, reading from the blobs, so nothing is skipped.
func (t *Tenant) indexCommitter(prepared <-chan preparedBatch) {
	defer t.wg.Done()
	for pb := range prepared {
		t.commitIndex(pb)
	}
}

// segmentNeed bounds the disk space of the segment for a batch of text
// bytes (docText). With word positions and the substring vocabulary (every
// suffix of each word new to the index) a segment outgrows its text.
// Measured (TestSegmentNeedBoundsSegments) on batches of 64 to 4,000
// messages, each written into a fresh index so that all its words are
// new: generated business mail took 1.3 to 2.3 bytes per byte of text
// (median 1.5, 34 batches), real-world mail 2.3 to 14.8 (median 7.9, 20
// batches), the most in small batches of short messages, whose vocabulary
// is large beside their text; 3.4 for 920 real messages in one batch. The
// largest segment measured fills 72% of this bound (it overran the former
// 3*text + 1 MiB by 44%).
func segmentNeed(text int64) int64 { return 4*text + 3<<20 }

func (t *Tenant) commitIndex(pb preparedBatch) {
	t.ixs.commitMu.Lock()
	defer t.ixs.commitMu.Unlock()
	if pb.gen != t.ixs.gen.Load() {
		return
	}
	// The room a segment may take is held while the batch is written:
	// bluge does not get over a segment it failed to persist until its
	// next batch, so ingest must not take the room meanwhile. Batches are
	// small (maxBatchBytes), so this raises the intake floor only a
	// little, and only for a moment.
	need := segmentNeed(pb.size)
	if ok, _, _ := t.p.space.indexRoom(need, false); !ok {
		t.ixs.need.Store(need)
		t.ixs.gen.Add(1) // the indexer pauses until there is room for it
		return
	}
	defer t.p.space.hold(need)()
	// A job queued before a catch-up may come after it: its batch must
	// not set the watermark back.
	err := t.ix.Commit(context.Background(), pb.b, max(pb.upTo, t.ix.Watermark()))
	switch {
	case err == nil:
		t.ixs.fails.Store(0)
		t.ixs.need.Store(0)
	case errors.Is(err, index.ErrPaused), errors.Is(err, index.ErrClosed):
		t.ixs.gen.Add(1)
	default:
		t.ixs.fails.Add(1)
		t.ixs.gen.Add(1)
		t.log.Error("index batch failed; its messages will be read from the archive again", "messages", pb.b.Len(), "err", err)
	}
}

// prepareBatch builds and analyzes the documents of a batch.
func (t *Tenant) prepareBatch(batch []indexJob) (preparedBatch, error) {
	ctx := context.Background()
	docs := make([]index.Doc, 0, len(batch))
	var size int64
	var deleted []uint64
	for _, j := range batch {
		t.mu.RLock()
		gone := t.msgs[j.mid-1].deleted
		t.mu.RUnlock()
		if gone {
			deleted = append(deleted, j.mid)
			continue
		}
		d, err := t.indexDoc(ctx, j.mid, j.summary)
		if err != nil {
			// A message whose blob cannot be read is reported by verify;
			// it must not stop the index for every other message.
			t.log.Error("cannot index message", "mid", j.mid, "err", err)
			continue
		}
		docs = append(docs, d)
		size += docText(d)
	}
	b, err := t.ix.Prepare(ctx, docs)
	if err == nil {
		b.Delete(deleted...)
	}
	return preparedBatch{b: b, size: size}, err
}

// docText is the text of a document a batch's size counts.
func docText(d index.Doc) int64 {
	n := int64(len(d.Body) + len(d.Subject))
	for _, h := range d.Headers {
		n += int64(len(h.Value))
	}
	return n
}

func (t *Tenant) indexDoc(ctx context.Context, mid uint64, s *mailparse.Summary) (index.Doc, error) {
	if s == nil || s.Text == "" && s.Structure == nil {
		raw, err := t.RawMessage(ctx, mid)
		if err != nil {
			return index.Doc{}, err
		}
		s = mailparse.Parse(raw, mailparse.Options{MaxText: t.p.opt.MaxIndexedText})
	}
	t.mu.RLock()
	m := t.msgs[mid-1]
	members := make([]index.Member, len(m.members))
	for i, mm := range m.members {
		members[i] = index.Member{Folder: mm.folder, UID: mm.uid}
	}
	t.mu.RUnlock()
	rcpts, err := t.recipients(mid)
	if err != nil {
		return index.Doc{}, err
	}
	e := &s.Envelope
	d := index.Doc{
		MID: mid, Members: members,
		From: addrs(e.From), To: addrs(e.To), Cc: addrs(e.Cc), Bcc: addrs(e.Bcc), Rcpt: rcpts,
		Subject: e.Subject, Body: s.Text, Attachments: s.Attachments, MessageID: e.MessageID,
		Sent: e.Date, Received: time.Unix(m.received, 0), Size: m.size, HasAttachment: s.HasAttachment,
	}
	d.Headers = make([]index.HeaderField, len(s.Headers))
	for i, h := range s.Headers {
		d.Headers[i] = index.HeaderField{Name: h.Name, Value: h.Value}
	}
	return d, nil
}

func addrs(l []mailparse.Address) []index.Address {
	out := make([]index.Address, 0, len(l))
	for _, a := range l {
		if !a.IsGroupMark() {
			out = append(out, index.Address{Name: a.Name, Email: a.Mailbox + "@" + a.Host})
		}
	}
	return out
}

func (t *Tenant) recipients(mid uint64) ([]string, error) {
	var out []string
	err := t.db.View(func(tx *buntdb.Tx) error {
		v, err := tx.Get(rcptKey(mid))
		if err == buntdb.ErrNotFound {
			return nil
		}
		if err != nil {
			return err
		}
		return json.Unmarshal([]byte(v), &out)
	})
	if err != nil {
		return nil, fmt.Errorf("read recipients of %d: %w", mid, err)
	}
	return out, nil
}

// mergedRecipients returns, for each MID whose stored envelope recipients
// gain an address from add, the new full list (stored order, then new ones
// in arrival order). The caller holds wmu, so the stored lists are stable
// until it writes the result in its commit.
func (t *Tenant) mergedRecipients(add map[uint64][]string) (map[uint64][]string, error) {
	out := map[uint64][]string{}
	err := t.db.View(func(tx *buntdb.Tx) error {
		for mid, addrs := range add {
			var cur []string
			if v, err := tx.Get(rcptKey(mid)); err == nil {
				if err := json.Unmarshal([]byte(v), &cur); err != nil {
					return fmt.Errorf("recipients of message %d: %w", mid, err)
				}
			} else if err != buntdb.ErrNotFound {
				return err
			}
			changed := false
			for _, a := range addrs {
				if !slices.Contains(cur, a) {
					cur = append(cur, a)
					changed = true
				}
			}
			if changed {
				out[mid] = cur
			}
		}
		return nil
	})
	return out, err
}

func setJSON(tx *buntdb.Tx, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, _, err = tx.Set(key, string(b), nil)
	return err
}

// Reindex rebuilds the index from the archive (after an index was lost or
// its analysis changed) in the background and returns how many messages
// it will read. It sets the watermark to 0, so the rebuild survives a
// pause and a restart.
func (t *Tenant) Reindex(ctx context.Context) int {
	t.mu.RLock()
	n := len(t.msgs)
	t.mu.RUnlock()
	t.log.Info("reindex started", "messages", n)
	if err := t.rewindIndex(); err != nil {
		t.log.Error("reindex: cannot reset the index watermark; will retry", "err", err)
		t.ixs.reindex.Store(true) // the indexer retries
	}
	return n
}
