package backend

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mailvault/mailvault/store"
)

// Problem is one difference verify found.
type Problem struct {
	MID uint64 `json:"mid,omitempty"`
	// Kind is one of record-missing, deletion-unauthenticated,
	// deletion-incomplete, chain-broken, blob-missing, key-missing,
	// blob-corrupt, blob-altered, blob-checksum, summary-corrupt,
	// summary-checksum,
	// blob-orphan, pack-damaged, pack-tail-cut, and those found at open
	// against the anchor log: records-truncated, placements-altered,
	// audit-truncated, audit-altered, audit-unanchored, chain-anchor-mismatch,
	// anchors-behind, anchors-missing; and for the RFC 3161 tokens:
	// timestamp-invalid (unreadable, bad signature, signer not of the TSA's
	// CA), timestamp-mismatch (the chain head at the token's sequence
	// number is not what the token covers).
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// VerifyReport is the outcome of a full verification.
type VerifyReport struct {
	Tenant   string        `json:"tenant"`
	Messages int           `json:"messages"`
	Deleted  int           `json:"deleted"` // removed by an authorised, recorded deletion
	Bytes    int64         `json:"bytes"`
	Problems []Problem     `json:"problems"`
	Took     time.Duration `json:"took_ns"`
	ChainTip string        `json:"chain_tip"`
	// Timestamps are the RFC 3161 tokens of the chain heads, checked.
	Timestamps *TimestampReport `json:"timestamps"`
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
	authorised, err := t.authorisedDeletions()
	if err != nil {
		return nil, err
	}
	live := make(map[[32]byte]bool, len(msgs))
	for i := range msgs {
		if !msgs[i].deleted && !msgs[i].missing {
			live[msgs[i].sum] = true
		}
	}
	var wrapped [store.WrappedKeySize]byte
	var revived []uint64 // deleted messages whose key is still there
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
		want := chainHash(prev, mid, m.sum, m.size, m.archived)
		if prev != ([32]byte{}) && want != m.chain {
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "chain-broken", Detail: "the record does not match the hash chain (hash, size or time altered)"})
		}
		prev = m.chain
		key := t.seal.BlobKey(m.sum)
		if m.deleted {
			rep.Messages--
			rep.Deleted++
			if !authorised[mid] {
				rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "deletion-unauthenticated", Detail: "the message is marked deleted, but no intact audit entry records its deletion"})
			}
			if ok, err := t.blobs.Has(ctx, key); err == nil && ok && !live[m.sum] {
				known[key] = true
				rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "deletion-incomplete", Detail: "the message was deleted but its blob " + key + " is still stored; the next retention run or open shreds it"})
			}
			if ok, err := t.keys.Get(mid, wrapped[:]); err != nil {
				return nil, err
			} else if ok && authorised[mid] {
				revived = append(revived, mid)
				rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "deletion-incomplete", Detail: "the message was deleted but its data key is in the key file (a deletion cut off, or an older copy of keys.dat put back); verify destroys it now"})
			} else if ok {
				// A deletion nobody recorded is not finished: the key may
				// be all that can bring the message back.
				rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "deletion-incomplete", Detail: "the message is marked deleted and its data key is still in the key file; kept, as the deletion is not recorded"})
			}
			continue
		}
		rep.Bytes += m.size
		known[key] = true
		sealed, err := t.blobs.Get(ctx, key)
		checksum := errors.Is(err, store.ErrChecksum) && sealed != nil
		switch {
		case errors.Is(err, store.ErrNotFound):
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "blob-missing", Detail: "blob " + key + " is gone"})
			continue
		case checksum:
			// Opening below authenticates the bytes: it tells whether they
			// or only the stored checksum were hit.
		case errors.Is(err, store.ErrCorrupt):
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "blob-corrupt", Detail: err.Error()})
			continue
		case err != nil:
			return nil, err
		}
		raw, err := t.openBlob(mid, m.ownKey, sealed, key)
		if errors.Is(err, ErrKeyGone) {
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "key-missing", Detail: "the data key of the message is gone from the key file; blob " + key + " cannot be opened"})
			continue
		}
		if err != nil {
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "blob-corrupt", Detail: "blob " + key + ": " + err.Error()})
			continue
		}
		if checksum {
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "blob-checksum", Detail: "the stored checksum of blob " + key + " is damaged; its content authenticates and is served whole"})
		}
		if sha256.Sum256(raw) != m.sum || int64(len(raw)) != m.size {
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "blob-altered", Detail: "content does not match its SHA-256"})
		}
		s, rerr := t.sums.Read(m.sumOff)
		switch _, err := t.openRead(mid, m.sum, s, rerr); {
		case err != nil:
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "summary-corrupt", Detail: err.Error() + "; the message is whole and its summary is rebuilt when it is next read"})
		case rerr != nil:
			rep.Problems = append(rep.Problems, Problem{MID: mid, Kind: "summary-checksum", Detail: "the checksum of the summary record is damaged; its content authenticates"})
		}
	}
	rep.ChainTip = fmt.Sprintf("%x", prev)
	if len(revived) > 0 {
		// Finishing a recorded deletion, as shred does: never a live key.
		t.inPlace.Lock()
		err := t.keys.Destroy(revived)
		t.inPlace.Unlock()
		if err != nil {
			return nil, fmt.Errorf("destroy keys of deleted messages: %w", err)
		}
		t.log.Warn("verify destroyed data keys of deleted messages found in the key file", "messages", len(revived))
	}
	if d, ok := t.blobs.(interface{ Damage() []store.PackDamage }); ok {
		for _, pd := range d.Damage() {
			rep.Problems = append(rep.Problems, packProblem(pd))
		}
	}
	found, err := t.integrityFindings()
	if err != nil {
		return nil, err
	}
	rep.Problems = append(rep.Problems, found...)
	var roots *x509.CertPool
	tsa := t.p.opt.TSA
	if tsa != nil {
		roots = tsa.Roots
	}
	ts, tsProblems, err := t.VerifyTimestamps(roots, tsa != nil && tsa.URL != "")
	if err != nil {
		return nil, err
	}
	rep.Timestamps = ts
	rep.Problems = append(rep.Problems, tsProblems...)
	err = t.blobs.List(ctx, func(key string) error {
		if !known[key] {
			// Left by a crash between blob write and commit; harmless, and
			// superseded if the message arrives again.
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
// altered data. Orphan blobs and a cut torn pack tail are what a crash
// leaves; if the tail held an acknowledged message, that message is named
// as missing.
func (r *VerifyReport) Clean() bool {
	for _, p := range r.Problems {
		if p.Kind != "blob-orphan" && p.Kind != "pack-tail-cut" {
			return false
		}
	}
	return true
}

func packProblem(d store.PackDamage) Problem {
	switch {
	case d.Tail:
		return Problem{Kind: "pack-tail-cut", Detail: fmt.Sprintf("%d bytes at offset %d of pack %s did not check out and were cut off at open (a crash before the flush leaves this); they are kept in %s", d.Bytes, d.Offset, d.Pack, d.SavedTo)}
	case d.Recovered:
		return Problem{Kind: "pack-damaged", Detail: fmt.Sprintf("the header of the record at offset %d of pack %s is damaged (%s); its data checks out and stays readable", d.Offset, d.Pack, d.Err)}
	default:
		return Problem{Kind: "pack-damaged", Detail: fmt.Sprintf("%d bytes at offset %d of pack %s are damaged (%s); the records after them stay readable, a message whose blob was there is named as missing", d.Bytes, d.Offset, d.Pack, d.Err)}
	}
}

// integrityFindings are the problems the checks at open found, now or at
// any earlier open: they are kept in the audit log (see startAnchors).
func (t *Tenant) integrityFindings() ([]Problem, error) {
	all, err := t.AuditLog(0, 0)
	if err != nil {
		return nil, err
	}
	var out []Problem
	for _, e := range all {
		if e.Action != "integrity" || e.Actor != "" {
			continue
		}
		kind, detail, _ := strings.Cut(e.Detail, ": ")
		out = append(out, Problem{Kind: kind, Detail: detail + " (found at open, " + e.Time.Format(time.RFC3339) + ")"})
	}
	return out, nil
}

// Stats are a tenant's counters.
type Stats struct {
	Tenant       string `json:"tenant"`
	Users        int    `json:"users"`
	Mailboxes    int    `json:"mailboxes"`
	Folders      int    `json:"folders"`
	Messages     int    `json:"messages"`
	Deleted      int    `json:"deleted"`
	Placements   int    `json:"placements"`
	RawBytes     int64  `json:"raw_bytes"`
	Indexed      uint64 `json:"indexed"`
	IndexPending int    `json:"index_pending"`
	// SummariesOutdated counts the summaries an older parser wrote that
	// are still to be derived again (see Reparse).
	SummariesOutdated int               `json:"summaries_outdated"`
	Archived          int64             `json:"archived_since_start"`
	Duplicates        int64             `json:"duplicates_since_start"`
	Failed            int64             `json:"failed_since_start"`
	LastMessage       time.Time         `json:"last_message,omitempty"`
	ChainTip          string            `json:"chain_tip"`
	Disk              DiskSpace         `json:"disk"`
	Retention         RetentionProgress `json:"retention"`
}

// Stats returns the tenant's counters.
func (t *Tenant) Stats() Stats {
	t.touch()
	t.mu.RLock()
	s := Stats{Tenant: t.Name, Users: len(t.users), Mailboxes: len(t.mailboxes), Folders: len(t.folders),
		Messages: len(t.msgs) - t.deletedCount, Deleted: t.deletedCount, RawBytes: t.bytes, ChainTip: fmt.Sprintf("%x", t.lastChain)}
	for _, f := range t.folders {
		s.Placements += len(f.uids)
	}
	w := t.ix.Watermark()
	for i := range t.msgs {
		if t.msgs[i].modseq > w {
			s.IndexPending++
		}
		if outdated(&t.msgs[i]) {
			s.SummariesOutdated++
		}
	}
	t.mu.RUnlock()
	s.Indexed, _ = t.ix.Count()
	s.Archived = t.stats.archived.Load()
	s.Duplicates = t.stats.duplicates.Load()
	s.Failed = t.stats.failed.Load()
	s.Disk = t.diskSpace()
	s.Retention = t.RetentionProgress()
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
