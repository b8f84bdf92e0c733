package backend

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/mailvault/mailvault/store"
)

// Problem is one difference verify found.
type Problem struct {
	MID    uint64 `json:"mid,omitempty"`
	Kind   string `json:"kind"` // record-missing, chain-broken, blob-missing, blob-corrupt, blob-altered, summary-corrupt, blob-orphan
	Detail string `json:"detail"`
}

// VerifyReport is the outcome of a full verification.
type VerifyReport struct {
	Tenant   string        `json:"tenant"`
	Messages int           `json:"messages"`
	Bytes    int64         `json:"bytes"`
	Problems []Problem     `json:"problems"`
	Took     time.Duration `json:"took_ns"`
	ChainTip string        `json:"chain_tip"`
}

// Verify re-reads every blob and checks every hash, the hash chain and the
// summaries, and names each difference. progress, if not nil, is called
// after each message.
func (t *Tenant) Verify(ctx context.Context, progress func(done, total int)) (*VerifyReport, error) {
	t.touch()
	start := time.Now()
	t.mu.RLock()
	msgs := make([]msgMeta, len(t.msgs))
	copy(msgs, t.msgs)
	t.mu.RUnlock()
	rep := &VerifyReport{Tenant: t.Name, Messages: len(msgs), Problems: []Problem{}}
	prev := chainGenesis(t.Name)
	known := make(map[string]bool, len(msgs))
	for i := range msgs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		mid := uint64(i + 1)
		m := &msgs[i]
		if progress != nil {
			progress(i+1, len(msgs))
		}
		if m.missing {
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "record-missing", Detail: "the metadata record of this message was removed"})
			// The chain resumes from the next record's own predecessor.
			if i+1 < len(msgs) {
				prev = [32]byte{}
			}
			continue
		}
		rep.Bytes += m.size
		want := chainHash(prev, mid, m.sum, m.size, m.archived)
		if prev != ([32]byte{}) && want != m.chain {
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "chain-broken", Detail: "the record does not match the hash chain (hash, size or time altered)"})
		}
		prev = m.chain
		key := t.seal.BlobKey(m.sum)
		known[key] = true
		sealed, err := t.blobs.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "blob-missing", Detail: "blob " + key + " is gone"})
			continue
		}
		if errors.Is(err, store.ErrCorrupt) {
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "blob-corrupt", Detail: err.Error()})
			continue
		}
		if err != nil {
			return nil, err
		}
		raw, err := t.seal.Open(sealed, []byte(key))
		if err != nil {
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "blob-corrupt", Detail: "blob " + key + ": " + err.Error()})
			continue
		}
		if sha256.Sum256(raw) != m.sum || int64(len(raw)) != m.size {
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "blob-altered", Detail: "content does not match its SHA-256"})
		}
		if s, err := t.sums.Read(m.sumOff); err != nil {
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "summary-corrupt", Detail: err.Error()})
		} else if _, err := t.seal.Open(s, []byte("summary "+key)); err != nil {
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "summary-corrupt", Detail: err.Error()})
		}
	}
	rep.ChainTip = fmt.Sprintf("%x", prev)
	err := t.blobs.List(ctx, func(key string) error {
		if !known[key] {
			// Left by a crash between blob write and commit; harmless, and
			// reused if the message arrives again.
			rep.Problems = append(rep.Problems, Problem{Kind: "blob-orphan", Detail: "blob " + key + " belongs to no message (interrupted ingest)"})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep.Took = time.Since(start)
	t.log.Info("verify finished", "messages", rep.Messages, "problems", len(rep.Problems), "took", rep.Took.Round(time.Millisecond))
	t.Audit(ctx, "", "verify", fmt.Sprintf("messages=%d problems=%d", rep.Messages, len(rep.Problems)))
	return rep, nil
}

// Clean reports whether the report has no problem that means lost or
// altered data (orphan blobs are not).
func (r *VerifyReport) Clean() bool {
	for _, p := range r.Problems {
		if p.Kind != "blob-orphan" {
			return false
		}
	}
	return true
}

// Stats are a tenant's counters.
type Stats struct {
	Tenant       string    `json:"tenant"`
	Users        int       `json:"users"`
	Mailboxes    int       `json:"mailboxes"`
	Folders      int       `json:"folders"`
	Messages     int       `json:"messages"`
	Placements   int       `json:"placements"`
	RawBytes     int64     `json:"raw_bytes"`
	Indexed      uint64    `json:"indexed"`
	IndexPending int       `json:"index_pending"`
	Archived     int64     `json:"archived_since_start"`
	Duplicates   int64     `json:"duplicates_since_start"`
	Failed       int64     `json:"failed_since_start"`
	LastMessage  time.Time `json:"last_message,omitempty"`
	ChainTip     string    `json:"chain_tip"`
	Disk         DiskSpace `json:"disk"`
}

// Stats returns the tenant's counters.
func (t *Tenant) Stats() Stats {
	t.touch()
	t.mu.RLock()
	s := Stats{Tenant: t.Name, Users: len(t.users), Mailboxes: len(t.mailboxes), Folders: len(t.folders),
		Messages: len(t.msgs), RawBytes: t.bytes, ChainTip: fmt.Sprintf("%x", t.lastChain)}
	for _, f := range t.folders {
		s.Placements += len(f.uids)
	}
	w := t.ix.Watermark()
	for i := range t.msgs {
		if t.msgs[i].modseq > w {
			s.IndexPending++
		}
	}
	t.mu.RUnlock()
	s.Indexed, _ = t.ix.Count()
	s.Archived = t.stats.archived.Load()
	s.Duplicates = t.stats.duplicates.Load()
	s.Failed = t.stats.failed.Load()
	s.Disk = t.diskSpace()
	if l := t.stats.last.Load(); l != 0 {
		s.LastMessage = time.Unix(0, l).UTC()
	}
	return s
}

// WaitIndexed blocks until the index has caught up with every committed
// change, or ctx ends.
func (t *Tenant) WaitIndexed(ctx context.Context) error {
	for {
		t.mu.RLock()
		target := t.modseq
		t.mu.RUnlock()
		if t.ix.Watermark() >= target {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
