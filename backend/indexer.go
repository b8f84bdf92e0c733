package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/index"
	"github.com/mailvault/mailvault/mailparse"
)

type indexJob struct {
	mid     uint64
	modseq  uint64
	summary *mailparse.Summary // nil: rebuild from the blob
}

func (t *Tenant) queueIndex(j indexJob) {
	select {
	case t.indexQ <- j:
	case <-t.done:
	}
}

// catchUpIndex queues every message changed after the index's watermark, in
// modseq order, so an index that lagged at a crash catches up at start.
func (t *Tenant) catchUpIndex() {
	w := t.ix.Watermark()
	var todo []indexJob
	t.mu.RLock()
	for i := range t.msgs {
		if m := &t.msgs[i]; m.modseq > w {
			todo = append(todo, indexJob{mid: uint64(i + 1), modseq: m.modseq})
		}
	}
	t.mu.RUnlock()
	if len(todo) == 0 {
		return
	}
	sort.Slice(todo, func(i, j int) bool { return todo[i].modseq < todo[j].modseq })
	t.log.Info("index catching up", "messages", len(todo), "watermark", w)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for _, j := range todo {
			select {
			case t.indexQ <- j:
			case <-t.done:
				return
			}
		}
	}()
}

// indexer feeds the full-text index in batches, in two stages: this
// goroutine gathers a batch and analyzes it on all cores while
// indexCommitter writes the previous one, which is single-threaded in bluge.
func (t *Tenant) indexer() {
	defer t.wg.Done()
	const maxBatch = 4000
	prepared := make(chan preparedBatch) // unbuffered: at most one waits
	t.wg.Add(1)
	go t.indexCommitter(prepared)
	defer close(prepared)
	var batch []indexJob
	for {
		select {
		case j := <-t.indexQ:
			batch = append(batch[:0], j)
		case <-t.done:
			return
		}
		// Gather for a while: every Bluge batch is a segment and an fsync,
		// and many small segments make the merger burn the CPU that ingest
		// needs. A large batch goes as soon as the queue falls quiet: the
		// end of a burst is searchable without waiting out the second.
		deadline := time.After(time.Second)
		quiet := time.NewTimer(time.Hour)
	drain:
		for len(batch) < maxBatch {
			if len(batch) >= minQuietBatch {
				quiet.Reset(quietGap)
			}
			select {
			case j := <-t.indexQ:
				batch = append(batch, j)
			case <-deadline:
				break drain
			case <-quiet.C:
				break drain
			case <-t.done:
				quiet.Stop()
				return
			}
		}
		quiet.Stop()
		var pb preparedBatch
		for attempt := 0; ; attempt++ {
			var err error
			if pb, err = t.prepareBatch(batch); err == nil {
				break
			}
			t.log.Error("index batch failed; will retry", "messages", len(batch), "err", err)
			select {
			case <-time.After(time.Second << min(attempt, 5)):
			case <-t.done:
				return
			}
		}
		clear(batch) // drop references to parsed summaries until the next batch
		select {
		case prepared <- pb:
		case <-t.done:
			return
		}
	}
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
}

// indexCommitter writes prepared batches in order, retrying failures.
func (t *Tenant) indexCommitter(prepared <-chan preparedBatch) {
	defer t.wg.Done()
	for pb := range prepared {
		for attempt := 0; ; attempt++ {
			err := t.ix.Commit(context.Background(), pb.b, pb.upTo)
			if err == nil {
				break
			}
			t.log.Error("index batch failed; will retry", "messages", pb.b.Len(), "err", err)
			select {
			case <-time.After(time.Second << min(attempt, 5)):
			case <-t.done:
				return
			}
		}
	}
}

// prepareBatch builds and analyzes the documents of a batch.
func (t *Tenant) prepareBatch(batch []indexJob) (preparedBatch, error) {
	ctx := context.Background()
	docs := make([]index.Doc, 0, len(batch))
	var upTo uint64
	for _, j := range batch {
		upTo = max(upTo, j.modseq)
		d, err := t.indexDoc(ctx, j.mid, j.summary)
		if err != nil {
			// A message whose blob cannot be read is reported by verify;
			// it must not stop the index for every other message.
			t.log.Error("cannot index message", "mid", j.mid, "err", err)
			continue
		}
		docs = append(docs, d)
	}
	b, err := t.ix.Prepare(ctx, docs)
	return preparedBatch{b, upTo}, err
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
	out := make([]index.Address, len(l))
	for i, a := range l {
		out[i] = index.Address{Name: a.Name, Email: a.Mailbox + "@" + a.Host}
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

// Reindex queues every message for re-indexing from its blob (after an
// index was lost or its analysis changed) and returns how many.
func (t *Tenant) Reindex(ctx context.Context) int {
	t.mu.RLock()
	n := len(t.msgs)
	modseq := t.modseq
	t.mu.RUnlock()
	t.log.Info("reindex started", "messages", n)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for mid := uint64(1); mid <= uint64(n); mid++ {
			select {
			case t.indexQ <- indexJob{mid: mid, modseq: modseq}:
			case <-t.done:
				return
			}
		}
	}()
	return n
}
