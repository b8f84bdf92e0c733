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
	err := t.db.Update(func(tx *buntdb.Tx) error {
		e := AuditEntry{Seq: 1, Time: time.Now().UTC(), Actor: actor, Action: action, Detail: detail, Prev: strings.Repeat("0", 64)}
		// The last entry is the greatest key; buntdb iterates keys in order.
		tx.DescendKeys("audit:*", func(k, v string) bool {
			var last AuditEntry
			if json.Unmarshal([]byte(v), &last) == nil {
				e.Seq, e.Prev = last.Seq+1, last.Hash
			}
			return false
		})
		e.Hash = e.computeHash()
		return setJSON(tx, auditKey(e.Seq), &e)
	})
	if err != nil {
		t.log.Error("audit log write failed", "action", action, "err", err)
	}
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
