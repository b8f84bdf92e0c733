package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/buntdb"
)

// AuditEntry is one line of a tenant's audit log. Entries are hash-chained
// like messages, so removing or editing one is evident.
type AuditEntry struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor,omitempty"` // login, "provider" or "" for the system
	Action string    `json:"action"`
	Detail string    `json:"detail,omitempty"`
	Prev   string    `json:"prev"`
	Hash   string    `json:"hash"`
}

func auditKey(seq uint64) string { return fmt.Sprintf("audit:%016x", seq) }

func (e *AuditEntry) computeHash() string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%d\x00%s\x00%s\x00%s\x00%s", e.Seq, e.Time.UnixNano(), e.Actor, e.Action, e.Detail, e.Prev)
	return hex.EncodeToString(h.Sum(nil))
}

// Audit appends an entry. Failing to audit is logged, not returned: the
// action it records has already happened.
func (t *Tenant) Audit(ctx context.Context, actor, action, detail string) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	entries, next, undo := t.chainAudit(actor, time.Now().UTC(), []AuditEntry{{Action: action, Detail: detail}})
	err := t.db.Update(func(tx *buntdb.Tx) error {
		return setJSON(tx, auditKey(entries[0].Seq), &entries[0])
	})
	if err != nil {
		undo()
		t.log.Error("audit log write failed", "action", action, "err", err)
		return
	}
	t.state.Audit, t.state.AuditHash = next.Audit, next.AuditHash
}

// chainAudit fills in the entries (Action and Detail given) chained onto
// the end of the audit log, and anchors the state they lead to first (see
// anchor.go), so that removing entries at the end of the log shows. The
// caller holds wmu, writes the entries in its transaction and, once that
// has committed, takes the audit head of next into t.state; if it fails,
// it calls undo, which takes the anchor back.
func (t *Tenant) chainAudit(actor string, now time.Time, entries []AuditEntry) (_ []AuditEntry, next anchor, undo func()) {
	return t.chainAuditFrom(t.state, actor, now, entries)
}

// chainAuditFrom is chainAudit onto base, a state the caller's transaction
// leads to besides the audit entries (a deletion's placements): one anchor
// covers both. The caller takes all of next into t.state.
func (t *Tenant) chainAuditFrom(base anchor, actor string, now time.Time, entries []AuditEntry) (_ []AuditEntry, next anchor, undo func()) {
	next = base
	prev := strings.Repeat("0", 64)
	if next.Audit > 0 {
		prev = hex.EncodeToString(next.AuditHash[:])
	}
	for i := range entries {
		e := &entries[i]
		e.Seq, e.Time, e.Actor, e.Prev = next.Audit+1, now, actor, prev
		e.Hash = e.computeHash()
		next.Audit, next.AuditHash, prev = e.Seq, auditHashBytes(e.Hash), e.Hash
	}
	next.Time = now.UnixNano()
	// Still audit if anchoring fails: a missing anchor is reported by the
	// next open, a missing entry would be lost for good.
	if err := t.appendAnchor(next); err != nil {
		t.log.Error("anchoring the audit log failed", "err", err)
		return entries, next, func() {}
	}
	if err := t.anchors.Sync(); err != nil {
		t.log.Error("anchoring the audit log failed", "err", err)
	}
	return entries, next, t.dropAnchor
}

// AuditLog returns entries with Seq > after, at most limit, and whether the
// chain over the returned entries is intact.
func (t *Tenant) AuditLog(after uint64, limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := t.db.View(func(tx *buntdb.Tx) error {
		var ierr error
		tx.AscendGreaterOrEqual("", auditKey(after+1), func(k, v string) bool {
			if !strings.HasPrefix(k, "audit:") || limit > 0 && len(out) >= limit {
				return false
			}
			var e AuditEntry
			if ierr = json.Unmarshal([]byte(v), &e); ierr != nil {
				return false
			}
			out = append(out, e)
			return true
		})
		return ierr
	})
	return out, err
}

// VerifyAudit checks the audit chain and returns the sequence numbers of
// entries that are altered or follow a removed one.
func (t *Tenant) VerifyAudit() ([]uint64, error) {
	all, err := t.AuditLog(0, 0)
	if err != nil {
		return nil, err
	}
	var bad []uint64
	prev := strings.Repeat("0", 64)
	for i, e := range all {
		if e.Hash != e.computeHash() || e.Prev != prev || e.Seq != uint64(i+1) {
			bad = append(bad, e.Seq)
		}
		prev = e.Hash
	}
	return bad, nil
}
