package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/mailparse"
	"github.com/mailvault/mailvault/store"
)

// Bulk reads for protocol servers that list whole folders at once (IMAP
// FETCH 1:*, SEARCH, STATUS): one lock or one scan per folder instead of one
// per message.

// DefaultFlags returns the flags of a message the user never flagged.
func DefaultFlags() []string { return slices.Clone(defaultFlags) }

// FlagOverlay returns the flags the user set on messages of a folder they
// may read, by UID; a message not in the map has DefaultFlags. The map holds
// only the messages the user ever flagged, so it stays small for a large
// folder.
func (t *Tenant) FlagOverlay(login string, folder uint64) (map[uint32][]string, error) {
	t.mu.RLock()
	f := t.folders[folder]
	ok := f != nil && t.canReadLocked(login, t.mailboxes[f.Mailbox])
	t.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("folder %d: %w", folder, ErrNotFound)
	}
	out := map[uint32][]string{}
	prefix := fmt.Sprintf("flag:%s:%016x:", login, folder)
	err := t.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendRange("", prefix, prefix+"~", func(k, v string) bool {
			var uid uint32
			if _, err := fmt.Sscanf(k[len(prefix):], "%08x", &uid); err == nil {
				out[uid] = strings.Fields(v)
			}
			return true
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read flags of folder %d: %w", folder, err)
	}
	return out, nil
}

// MessageInfos returns the metadata of mids, in order, under one lock.
// Like Message, it is for MIDs taken from a snapshot the caller was allowed
// to take.
func (t *Tenant) MessageInfos(mids []uint64) ([]MessageInfo, error) {
	out := make([]MessageInfo, len(mids))
	t.mu.RLock()
	defer t.mu.RUnlock()
	for i, mid := range mids {
		if mid == 0 || mid > uint64(len(t.msgs)) {
			return nil, fmt.Errorf("message %d: %w", mid, ErrNotFound)
		}
		m := &t.msgs[mid-1]
		out[i] = MessageInfo{MID: mid, Size: m.size, IMAPSize: m.imapSize(), Received: time.Unix(m.received, 0).UTC(), ModSeq: m.modseq, SHA256: m.sum, ownKey: m.ownKey}
	}
	return out, nil
}

// ListedMessage is what a folder listing shows of one message.
type ListedMessage struct {
	MessageInfo
	Envelope *mailparse.Envelope
	// Head (header block and MIME tree) is set by ListHeads.
	Head *mailparse.Head
	// Err says why this message could not be read; the others still are.
	Err error
}

// ListMessages returns the metadata and envelopes of mids, in order: what
// a client listing a folder asks for (IMAP FETCH 1:* ENVELOPE). It reads
// the summaries in log order, in few large reads, instead of two reads per
// message. Like Message, it is for MIDs taken from a snapshot the caller
// was allowed to take. Only an ended ctx fails the whole call.
func (t *Tenant) ListMessages(ctx context.Context, mids []uint64) ([]ListedMessage, error) {
	return t.listMessages(ctx, mids, true, false, false)
}

// ListHeads is ListMessages with the Head of each message (header block,
// and the MIME tree if withStructure; see mailparse.Head), and the
// envelope only if withEnvelope: what a client listing a folder by header
// fields or structure asks for.
// Neither the messages nor the summaries' JSON are read, except for a
// message whose summary an older parser wrote, which is derived again
// from the message once and stored (see reparse.go).
func (t *Tenant) ListHeads(ctx context.Context, mids []uint64, withEnvelope, withStructure bool) ([]ListedMessage, error) {
	return t.listMessages(ctx, mids, withEnvelope, true, withStructure)
}

func (t *Tenant) listMessages(ctx context.Context, mids []uint64, withEnv, withHead, withStructure bool) ([]ListedMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]ListedMessage, len(mids))
	var at []int // indexes in out of the summaries to read
	var offs []int64
	var stale []bool // parallel to at: an older parser wrote the summary
	t.mu.RLock()
	for i, mid := range mids {
		if mid == 0 || mid > uint64(len(t.msgs)) {
			out[i].MID = mid
			out[i].Err = fmt.Errorf("message %d: %w", mid, ErrNotFound)
			continue
		}
		m := &t.msgs[mid-1]
		out[i].MessageInfo = MessageInfo{MID: mid, Size: m.size, IMAPSize: m.imapSize(), Received: time.Unix(m.received, 0).UTC(), ModSeq: m.modseq, SHA256: m.sum, ownKey: m.ownKey}
		at = append(at, i)
		offs = append(offs, m.sumOff)
		stale = append(stale, outdated(m))
	}
	t.mu.RUnlock()
	var damaged []int // indexes in out
	var old []stored  // summaries an older parser wrote
	// fill is given a record valid only during the call.
	fill := func(i int, rec []byte) {
		l := &out[i]
		head, js := splitRecord(rec)
		var err error
		if withEnv {
			if l.Envelope, err = decodeEnvelope(js); err != nil {
				l.Err = fmt.Errorf("envelope of message %d: %w", l.MID, err)
				return
			}
		}
		if !withHead {
			return
		}
		if head == nil {
			l.Err = fmt.Errorf("head of message %d: summary record without one", l.MID)
			return
		}
		decode := mailparse.DecodeHeader
		if withStructure {
			decode = mailparse.DecodeHead
		}
		if l.Head, err = decode(head); err != nil {
			l.Err = fmt.Errorf("head of message %d: %w", l.MID, err)
		}
	}
	var aad, plain []byte // reused for every record
	err := t.sums.ReadBatch(offs, func(k int, sealed []byte, err error) error {
		l := &out[at[k]]
		aad = appendSummaryAAD(aad[:0], t.seal, l.SHA256)
		rec, oerr := t.openReadTo(plain[:0], l.MID, aad, sealed, err)
		if rec != nil {
			plain = rec
		}
		if oerr != nil || err != nil {
			// Rebuilt below; a record whose checksum alone was hit is
			// rewritten too, so that verify finds the log whole again.
			damaged = append(damaged, at[k])
		}
		if oerr != nil {
			return nil
		}
		if stale[k] {
			old = append(old, stored{at[k], bytes.Clone(rec)})
			return nil
		}
		fill(at[k], rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, i := range damaged {
		l := &out[i]
		rec, err := t.rebuildSummary(ctx, l.MID)
		if l.Envelope != nil || l.Head != nil || l.Err != nil {
			continue // served from the authentic record
		}
		if err != nil {
			l.Err = err
			continue
		}
		fill(i, rec)
	}
	if len(old) > 0 {
		t.listDerived(ctx, old, out, fill)
	}
	return out, nil
}

// stored is a summary record as the log holds it, for out[i].
type stored struct {
	i   int
	rec []byte
}

// listDerived derives the summaries of old again (an older parser wrote
// them) and fills them in, with the size the new bare-LF count gives. A
// message that cannot be read is listed from its stored record.
func (t *Tenant) listDerived(ctx context.Context, old []stored, out []ListedMessage, fill func(int, []byte)) {
	mids := make([]uint64, len(old))
	for k, o := range old {
		mids[k] = out[o.i].MID
	}
	recs, errs, err := t.rederive(ctx, mids)
	if err != nil {
		t.log.Error("summaries derived again not stored; serving them", "messages", len(mids), "err", err)
	}
	t.mu.RLock()
	for k, o := range old {
		if errs[k] == nil {
			out[o.i].IMAPSize = t.msgs[mids[k]-1].imapSize()
		}
	}
	t.mu.RUnlock()
	for k, o := range old {
		if errs[k] != nil {
			if ctx.Err() == nil {
				t.log.Warn("summary of an older parser served as stored", "mid", mids[k], "err", errs[k])
			}
			recs[k] = o.rec
		}
		fill(o.i, recs[k])
	}
}

// Envelope returns the envelope stored in a message's summary, decoding
// nothing else: the rest of the summary (MIME tree, all header fields) is
// most of the record.
func (t *Tenant) Envelope(ctx context.Context, mid uint64) (*mailparse.Envelope, error) {
	rec, err := t.summaryRecord(ctx, mid)
	if err != nil {
		return nil, err
	}
	_, js := splitRecord(rec)
	env, err := decodeEnvelope(js)
	if err != nil {
		return nil, fmt.Errorf("envelope of message %d: %w", mid, err)
	}
	return env, nil
}

// summaryRecord reads and opens the sealed summary of a message (for
// Summary and Envelope). One an older parser wrote is derived again, and
// left for the pass to store (see reparse.go).
func (t *Tenant) summaryRecord(ctx context.Context, mid uint64) ([]byte, error) {
	t.mu.RLock()
	if mid == 0 || mid > uint64(len(t.msgs)) || t.msgs[mid-1].deleted {
		t.mu.RUnlock()
		return nil, fmt.Errorf("message %d: %w", mid, ErrNotFound)
	}
	m := t.msgs[mid-1]
	t.mu.RUnlock()
	if outdated(&m) {
		rec, _, err := t.derive(ctx, mid)
		if err == nil {
			return rec, nil
		}
		t.log.Warn("summary of an older parser served as stored", "mid", mid, "err", err)
	}
	sealed, rerr := t.sums.Read(m.sumOff)
	rec, err := t.openRead(mid, m.sum, sealed, rerr)
	if err != nil || rerr != nil {
		rebuilt, berr := t.rebuildSummary(context.WithoutCancel(ctx), mid)
		if err != nil {
			return rebuilt, berr
		}
	}
	return rec, nil
}

// openRead opens a summary record as the log returned it. A record whose
// checksum alone was hit still authenticates, and is used.
func (t *Tenant) openRead(mid uint64, sum [32]byte, sealed []byte, rerr error) ([]byte, error) {
	return t.openReadTo(nil, mid, appendSummaryAAD(nil, t.seal, sum), sealed, rerr)
}

// openReadTo is openRead appending to dst, with the record's additional
// data aad (appendSummaryAAD).
func (t *Tenant) openReadTo(dst []byte, mid uint64, aad, sealed []byte, rerr error) ([]byte, error) {
	if rerr != nil && !(errors.Is(rerr, store.ErrChecksum) && sealed != nil) {
		return nil, fmt.Errorf("summary of message %d: %w", mid, rerr)
	}
	rec, err := t.seal.AppendOpen(dst, sealed, aad)
	if err != nil {
		return nil, fmt.Errorf("summary of message %d: %w", mid, err)
	}
	if rerr != nil {
		t.log.Error("summary record checksum damaged; its content authenticates and is used", "mid", mid, "err", rerr)
	}
	return rec, nil
}

// rebuildSummary parses the archived message again when its summary record
// cannot be read (a summary is derived data; the message is the record),
// appends the new summary to the log and points the message at it. The
// message itself is untouched, and the hash chain does not cover where a
// summary lies.
func (t *Tenant) rebuildSummary(ctx context.Context, mid uint64) ([]byte, error) {
	t.mu.RLock()
	off := t.msgs[mid-1].sumOff
	t.mu.RUnlock()
	recs, errs, err := t.rederive(ctx, []uint64{mid})
	if errs[0] != nil {
		return nil, fmt.Errorf("rebuild summary of message %d: %w", mid, errs[0])
	}
	if err != nil {
		t.log.Error("rebuilt summary not stored; serving it", "mid", mid, "err", err)
		return recs[0], nil
	}
	t.log.Warn("summary record damaged; rebuilt from the archived message", "mid", mid)
	t.Audit(ctx, "", "summary-rebuilt", fmt.Sprintf("message %d: its summary record at offset %d was damaged and was rebuilt from the message", mid, off))
	return recs[0], nil
}

// rewrite is a summary record to store in place of the one at old, with
// the bare-LF count derived with it by the current parser.
type rewrite struct {
	mid     uint64
	old     int64
	sealed  []byte
	bareLFs uint32
}

// replaceSummaries stores new summary records, each unless another writer
// replaced it since it was read: the records are appended and flushed
// first, and only then, under wmu, the message records are pointed at
// them in one transaction, so that a commit waits for no flush of them.
// The records they replace (and those appended in vain) are then wiped:
// what a deleted message's summary held must not outlive its shredding in
// a record nothing points to. The pointing transaction also records them
// as a pending wipe (summary_wipe.go), so a crash before the wipe does not
// leave them readable.
func (t *Tenant) replaceSummaries(l []rewrite) error {
	var recs [][]byte
	var todo []rewrite
	t.mu.RLock()
	for _, r := range l {
		if m := &t.msgs[r.mid-1]; m.sumOff == r.old && !m.deleted {
			todo = append(todo, r)
			recs = append(recs, r.sealed)
		}
	}
	t.mu.RUnlock()
	if len(todo) == 0 {
		return nil
	}
	offs, err := t.sums.Append(recs)
	if err != nil {
		return err
	}
	if err := t.sums.Sync(); err != nil {
		return err
	}
	if err := t.pointSummaries(todo, offs); err != nil {
		return err
	}
	if t.summariesPointed != nil {
		t.summariesPointed()
	}
	// A backup copying the log defers the wiping to the next replacement
	// or deletion (which waits for it), or to the next open.
	if t.inPlace.TryLock() {
		t.wipeStale()
		t.inPlace.Unlock()
	}
	return nil
}

// pointSummaries points the message records of todo at the records stored
// at offs, where no writer replaced or deleted them meanwhile, and records
// the records no longer used as a pending wipe in the same transaction.
// They join staleSums before wmu is released, so a deletion committed
// after this sees them when it shreds.
func (t *Tenant) pointSummaries(todo []rewrite, offs []int64) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.mu.RLock()
	ms := make([]msgMeta, 0, len(todo))
	stale := make([]int64, 0, len(todo))
	var kept []int
	for i, r := range todo {
		m := t.msgs[r.mid-1]
		if m.sumOff != r.old || m.deleted {
			stale = append(stale, offs[i]) // appended in vain
			continue
		}
		m.sumOff, m.bareLFs, m.parser = offs[i], r.bareLFs, mailparse.Version
		ms = append(ms, m)
		kept = append(kept, i)
		stale = append(stale, r.old)
	}
	t.mu.RUnlock()
	// offs[0] is where this append began: no other pending wipe has it.
	key := wipeKey(offs[0])
	if err := t.db.Update(func(tx *buntdb.Tx) error {
		for k, i := range kept {
			if _, _, err := tx.Set(msgKey(todo[i].mid), encodeMsg(&ms[k]), nil); err != nil {
				return err
			}
		}
		_, _, err := tx.Set(key, encodeOffsets(stale), nil)
		return err
	}); err != nil {
		return err
	}
	t.mu.Lock()
	for _, i := range kept {
		r := todo[i]
		m := &t.msgs[r.mid-1]
		// A folder's size is of its messages as IMAP presents them.
		if d := int64(r.bareLFs) - int64(m.bareLFs); d != 0 {
			for _, mem := range m.members {
				if f := t.folders[mem.folder]; f != nil {
					f.size += d
				}
			}
		}
		m.sumOff, m.bareLFs, m.parser = offs[i], r.bareLFs, mailparse.Version
	}
	t.mu.Unlock()
	t.staleMu.Lock()
	t.staleSums = append(t.staleSums, stale...)
	t.staleKeys = append(t.staleKeys, key)
	t.staleMu.Unlock()
	return nil
}

// appendSummaryAAD appends the additional data that binds a sealed summary
// record to its message's content hash.
func appendSummaryAAD(dst []byte, seal *store.Sealer, sum [32]byte) []byte {
	return seal.AppendBlobKey(append(dst, "summary "...), sum)
}
