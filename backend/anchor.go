package backend

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/store"
)

// An anchor is the state of a tenant's records at one point: how many
// messages the hash chain holds and its head, how many folder placements
// exist with a keyed sum over them, and the head of the audit chain. Before
// each metadata commit and each audit entry the state it will produce is
// sealed into the anchor log (anchors.log, beside meta.db), made durable
// with the same flush as the packs. The hash chains inside meta.db show
// edits and removals in the middle, but not records removed at its end;
// comparing meta.db with the newest anchors at open shows those too, and
// tells a torn final commit (which may be dropped: never acknowledged)
// from a removal of acknowledged records (which is reported, never
// "repaired").
type anchor struct {
	Seq        uint64
	Time       int64 // unix nanoseconds
	Messages   uint64
	Chain      [32]byte
	Placements uint64
	PlaceSum   [32]byte // XOR of the keyed hashes of every placement
	Audit      uint64
	AuditHash  [32]byte
}

const anchorPlainSize = 5*8 + 3*32

func (a *anchor) marshal() []byte {
	b := make([]byte, 0, anchorPlainSize)
	b = binary.BigEndian.AppendUint64(b, a.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(a.Time))
	b = binary.BigEndian.AppendUint64(b, a.Messages)
	b = append(b, a.Chain[:]...)
	b = binary.BigEndian.AppendUint64(b, a.Placements)
	b = append(b, a.PlaceSum[:]...)
	b = binary.BigEndian.AppendUint64(b, a.Audit)
	return append(b, a.AuditHash[:]...)
}

func unmarshalAnchor(b []byte) (anchor, error) {
	var a anchor
	if len(b) != anchorPlainSize {
		return a, fmt.Errorf("anchor of %d bytes, want %d", len(b), anchorPlainSize)
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(b[i:]) }
	a.Seq, a.Time, a.Messages = u(0), int64(u(8)), u(16)
	copy(a.Chain[:], b[24:56])
	a.Placements = u(56)
	copy(a.PlaceSum[:], b[64:96])
	a.Audit = u(96)
	copy(a.AuditHash[:], b[104:136])
	return a, nil
}

// sameState compares everything but the sequence number and time.
func (a anchor) sameState(b anchor) bool {
	a.Seq, a.Time, b.Seq, b.Time = 0, 0, 0, 0
	return a == b
}

func (t *Tenant) anchorAAD(seq uint64) []byte {
	return fmt.Appendf(nil, "anchor %s %d", t.Name, seq)
}

// anchorRecordSize is the sealed size of an anchor (fixed: not compressed).
func (t *Tenant) anchorRecordSize() int {
	return len(t.seal.SealUncompressed(make([]byte, anchorPlainSize), nil))
}

// placementHash is the keyed hash of one placement: whoever edits meta.db
// cannot compute it, so cannot make removed placements cancel out.
func (t *Tenant) placementHash(folder uint64, uid uint32, mid uint64) [32]byte {
	var b [32 + 8 + 4 + 8]byte
	copy(b[:32], t.placeKey[:])
	binary.BigEndian.PutUint64(b[32:], folder)
	binary.BigEndian.PutUint32(b[40:], uid)
	binary.BigEndian.PutUint64(b[44:], mid)
	return sha256.Sum256(b[:])
}

func xorInto(sum *[32]byte, h [32]byte) {
	for i := range sum {
		sum[i] ^= h[i]
	}
}

// appendAnchor seals a into the anchor log under the next sequence number.
// It is durable with the next flush of the tenant's filesystem (or Sync of
// the log). The caller holds wmu.
func (t *Tenant) appendAnchor(a anchor) error {
	a.Seq = uint64(t.anchors.Len()) + 1
	if err := t.anchors.Append(t.seal.SealUncompressed(a.marshal(), t.anchorAAD(a.Seq))); err != nil {
		return fmt.Errorf("write anchor: %w", err)
	}
	return nil
}

// dropAnchor takes back the anchor of a write that failed: left in place,
// it would claim records that were never written.
func (t *Tenant) dropAnchor() {
	if err := t.anchors.DropLast(); err != nil {
		t.log.Error("taking back the anchor of a failed write", "err", err)
	}
}

// openAnchors opens the anchor log and returns its newest two anchors
// (zero values where the log is shorter) and how many it holds.
func (t *Tenant) openAnchors() (last, prev anchor, n int64, err error) {
	l, torn, err := store.OpenFixedLog(filepath.Join(t.dir, "anchors.log"), t.anchorRecordSize())
	if err != nil {
		return last, prev, 0, err
	}
	t.anchors = l
	if torn > 0 {
		// An append torn by a crash before the flush: its commit never
		// reached meta.db either.
		t.log.Warn("cut a torn record off the anchor log", "bytes", torn)
	}
	n = l.Len()
	read := func(i int64) (anchor, error) {
		rec, err := l.Read(i)
		if err != nil {
			return anchor{}, err
		}
		plain, err := t.seal.Open(rec, t.anchorAAD(uint64(i+1)))
		if err != nil {
			return anchor{}, fmt.Errorf("anchor %d: %w", i+1, err)
		}
		return unmarshalAnchor(plain)
	}
	if n >= 1 {
		if last, err = read(n - 1); err != nil {
			return last, prev, n, err
		}
	}
	if n >= 2 {
		if prev, err = read(n - 2); err != nil {
			return last, prev, n, err
		}
	}
	return last, prev, n, nil
}

// integrityProblem records a finding of the open-time checks for verify
// and logs it.
func (t *Tenant) integrityProblem(kind, detail string) {
	t.log.Error("archive integrity: "+detail, "kind", kind)
	t.integrity = append(t.integrity, Problem{Kind: kind, Detail: detail})
}

func auditHashBytes(h string) [32]byte {
	var b [32]byte
	if d, err := hex.DecodeString(h); err == nil && len(d) == 32 {
		copy(b[:], d)
	}
	return b
}

// checkMessages decides from the newest anchors up to which MID message
// records were acknowledged (keepTo: one missing up to there was removed by
// someone) and from which MID records belong to a torn final commit and
// are dropped (tornFrom; past maxMID when there are none). pending says the
// final commit may not have finished (a crash, not a clean close).
func (t *Tenant) checkMessages(byMID map[uint64]msgMeta, maxMID uint64, last, prev anchor, n int64, anchored bool) (keepTo, tornFrom uint64, pending bool) {
	if n == 0 {
		if anchored {
			t.integrityProblem("anchors-missing", "the anchor log is gone although this archive kept one: removals at the end of its records cannot be ruled out")
			return maxMID, maxMID + 1, false
		}
		// An archive from before the anchor log: only the heuristic of the
		// time is left (a gap after which one batch's timestamp repeats).
		tornFrom = t.tornTail(byMID, maxMID)
		return tornFrom - 1, tornFrom, false
	}
	// Each commit anchors its state before it writes meta.db, and a clean
	// close anchors the state again: two equal newest anchors mean no
	// commit was under way.
	pending = n > 1 && !last.sameState(prev)
	switch {
	case maxMID > last.Messages:
		t.integrityProblem("anchors-behind", fmt.Sprintf("meta.db holds %d message records, the newest anchor only %d: the anchor log was cut or replaced", maxMID, last.Messages))
		return maxMID, maxMID + 1, pending
	case maxMID == last.Messages || !pending:
		if maxMID < last.Messages {
			t.integrityProblem("records-truncated", fmt.Sprintf("meta.db ends at message %d, but the anchor of %s counts %d acknowledged messages: the last %d message records were removed",
				maxMID, anchorTime(last), last.Messages, last.Messages-maxMID))
		}
		return last.Messages, last.Messages + 1, pending
	case maxMID >= prev.Messages:
		// The final commit did not finish: its records were never
		// acknowledged, as acknowledgement follows the commit.
		return prev.Messages, prev.Messages + 1, pending
	default:
		t.integrityProblem("records-truncated", fmt.Sprintf("meta.db ends at message %d, but the anchor of %s counts %d acknowledged messages: at least the last %d message records were removed",
			maxMID, anchorTime(prev), prev.Messages, prev.Messages-maxMID))
		return prev.Messages, prev.Messages + 1, pending
	}
}

// checkAnchoredState compares what meta.db holds after the repair of a
// torn final commit with the newest anchors: the chain head, the
// placements and the audit chain must each be in the state of one of them.
func (t *Tenant) checkAnchoredState(st anchor, last, prev anchor, n int64, pending bool) {
	if n == 0 {
		return
	}
	newest := []anchor{last}
	if n > 1 {
		newest = append(newest, prev)
	}
	for _, a := range newest {
		if a.Messages == st.Messages && a.Messages > 0 && !t.msgs[a.Messages-1].missing && a.Chain != st.Chain {
			t.integrityProblem("chain-anchor-mismatch", fmt.Sprintf("the chain head at message %d is not the anchored one of %s: message records were replaced", a.Messages, anchorTime(a)))
		}
	}
	if !slices.ContainsFunc(newest, func(a anchor) bool { return a.Placements == st.Placements && a.PlaceSum == st.PlaceSum }) {
		if pending && st.Placements >= prev.Placements && st.Placements <= last.Placements {
			t.log.Warn("placements of a torn final commit kept", "placements", st.Placements)
		} else {
			t.integrityProblem("placements-altered", fmt.Sprintf("meta.db holds %d folder placements that do not sum to the anchored %d of %s: placements were removed, added or changed",
				st.Placements, last.Placements, anchorTime(last)))
		}
	}
	if !slices.ContainsFunc(newest, func(a anchor) bool { return a.Audit == st.Audit && a.AuditHash == st.AuditHash }) {
		lowest := slices.MinFunc(newest, func(a, b anchor) int { return cmp.Compare(a.Audit, b.Audit) }).Audit
		switch {
		case st.Audit < lowest:
			t.integrityProblem("audit-truncated", fmt.Sprintf("the audit log ends at entry %d, but the anchor of %s counts %d entries: entries were removed at its end", st.Audit, anchorTime(last), last.Audit))
		case st.Audit > last.Audit:
			t.integrityProblem("audit-unanchored", fmt.Sprintf("the audit log holds %d entries, the newest anchor %d: an anchor write failed or the anchor log was cut", st.Audit, last.Audit))
		default:
			t.integrityProblem("audit-altered", fmt.Sprintf("audit entry %d is not the anchored one of %s: the audit log was edited", st.Audit, anchorTime(last)))
		}
	}
}

func anchorTime(a anchor) string {
	return time.Unix(0, a.Time).UTC().Format(time.RFC3339)
}

// startAnchors anchors the state just loaded, so that the next open
// compares with it, and records in meta.db that the archive keeps anchors.
// Problems the checks found go into the audit log: anchored in turn, they
// stay on record however often the archive is opened again.
func (t *Tenant) startAnchors() error {
	t.state.Time = time.Now().UnixNano()
	if err := t.appendAnchor(t.state); err != nil {
		return err
	}
	if err := t.anchors.Sync(); err != nil {
		return err
	}
	if err := t.db.Update(func(tx *buntdb.Tx) error {
		_, _, err := tx.Set("anchors:on", "1", nil)
		return err
	}); err != nil {
		return fmt.Errorf("mark anchored: %w", err)
	}
	for _, p := range t.integrity {
		t.Audit(context.Background(), "", "integrity", p.Kind+": "+p.Detail)
	}
	return nil
}

// closeAnchors anchors the final state at a clean close.
func (t *Tenant) closeAnchors() error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.state.Time = time.Now().UnixNano()
	if err := t.appendAnchor(t.state); err != nil {
		return err
	}
	return t.anchors.Sync()
}
