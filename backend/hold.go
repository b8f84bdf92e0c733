package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/buntdb"
)

// Hold is a legal hold: while it is active, no placement it covers can be
// deleted, by the retention job, a compliance user or the provider. It
// covers placements by archive mailbox, by message date range and by
// query, each optional, combined (all that are given must match). A query
// hold is evaluated whenever deletion is considered, so it also covers mail
// that arrived after it was placed.
type Hold struct {
	ID        string          `json:"id"`
	Case      string          `json:"case"`
	Reason    string          `json:"reason"`
	Owner     string          `json:"owner"`
	Mailboxes []string        `json:"mailboxes,omitempty"`
	From      *time.Time      `json:"from,omitempty"` // message date at or after
	To        *time.Time      `json:"to,omitempty"`   // message date before
	Query     json.RawMessage `json:"query,omitempty"`
	Placed    time.Time       `json:"placed"`
	PlacedBy  string          `json:"placed_by"`
	Lifted    *time.Time      `json:"lifted,omitempty"`
	LiftedBy  string          `json:"lifted_by,omitempty"`
}

// Active reports whether the hold is in force.
func (h *Hold) Active() bool { return h.Lifted == nil }

func holdKey(id string) string { return "hold:" + id }

// Holds lists the tenant's legal holds, lifted ones too (they stay on
// record), in the order they were placed.
func (t *Tenant) Holds() ([]Hold, error) {
	t.touch()
	var out []Hold
	err := t.db.View(func(tx *buntdb.Tx) error {
		var ierr error
		tx.AscendKeys("hold:*", func(k, v string) bool {
			var h Hold
			if ierr = json.Unmarshal([]byte(v), &h); ierr != nil {
				return false
			}
			out = append(out, h)
			return true
		})
		return ierr
	})
	if err != nil {
		return nil, fmt.Errorf("read legal holds: %w", err)
	}
	return out, nil
}

// PlaceHold places a legal hold; only a compliance user may.
func (t *Tenant) PlaceHold(ctx context.Context, actor string, h Hold) (Hold, error) {
	t.touch()
	if err := t.requireCompliance(actor); err != nil {
		return Hold{}, err
	}
	h.Case, h.Reason, h.Owner = strings.TrimSpace(h.Case), strings.TrimSpace(h.Reason), strings.TrimSpace(h.Owner)
	if h.Case == "" || h.Reason == "" {
		return Hold{}, fmt.Errorf("%w: a legal hold needs a case id and a reason", ErrInvalid)
	}
	if h.Owner == "" {
		h.Owner = actor
	}
	for i, a := range h.Mailboxes {
		na, err := NormalizeAddress(a)
		if err != nil {
			return Hold{}, err
		}
		t.mu.RLock()
		_, ok := t.addrs[na]
		t.mu.RUnlock()
		if !ok {
			return Hold{}, fmt.Errorf("archive mailbox %s: %w", na, ErrNotFound)
		}
		h.Mailboxes[i] = na
	}
	if h.From != nil && h.To != nil && !h.To.After(*h.From) {
		return Hold{}, fmt.Errorf("%w: the hold's date range ends before it starts", ErrInvalid)
	}
	if len(bytes.TrimSpace(h.Query)) > 0 {
		if _, err := compileFilter(h.Query); err != nil {
			return Hold{}, fmt.Errorf("%w hold query: %v", ErrInvalid, err)
		}
	} else {
		h.Query = nil
	}
	now := t.p.now().UTC()
	h.Placed, h.PlacedBy, h.Lifted, h.LiftedBy = now, actor, nil, ""
	t.wmu.Lock()
	defer t.wmu.Unlock()
	n := 0
	if err := t.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendKeys("hold:*", func(k, v string) bool { n++; return true })
	}); err != nil {
		return Hold{}, err
	}
	h.ID = fmt.Sprintf("h%04d", n+1)
	if err := t.writeHold(actor, now, &h, "hold-place", fmt.Sprintf("%s case %q: %s; scope %s", h.ID, h.Case, h.Reason, h.scope())); err != nil {
		return Hold{}, err
	}
	return h, nil
}

// LiftHold lifts a legal hold; only a compliance user may.
func (t *Tenant) LiftHold(ctx context.Context, actor, id string) (Hold, error) {
	t.touch()
	if err := t.requireCompliance(actor); err != nil {
		return Hold{}, err
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	var h Hold
	err := t.db.View(func(tx *buntdb.Tx) error {
		v, err := tx.Get(holdKey(id))
		if err != nil {
			return err
		}
		return json.Unmarshal([]byte(v), &h)
	})
	if err == buntdb.ErrNotFound {
		return Hold{}, fmt.Errorf("legal hold %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Hold{}, err
	}
	if !h.Active() {
		return h, fmt.Errorf("legal hold %s was lifted already: %w", id, ErrInvalid)
	}
	now := t.p.now().UTC()
	h.Lifted, h.LiftedBy = &now, actor
	if err := t.writeHold(actor, now, &h, "hold-lift", fmt.Sprintf("%s case %q", h.ID, h.Case)); err != nil {
		return Hold{}, err
	}
	return h, nil
}

// writeHold stores a hold with its audit entry in one transaction. The
// caller holds wmu.
func (t *Tenant) writeHold(actor string, now time.Time, h *Hold, action, detail string) error {
	entries, next, undo := t.chainAudit(actor, now, []AuditEntry{{Action: action, Detail: detail}})
	err := t.db.Update(func(tx *buntdb.Tx) error {
		if err := setJSON(tx, holdKey(h.ID), h); err != nil {
			return err
		}
		return setJSON(tx, auditKey(entries[0].Seq), &entries[0])
	})
	if err != nil {
		undo()
		return fmt.Errorf("store legal hold: %w", err)
	}
	t.state.Audit, t.state.AuditHash = next.Audit, next.AuditHash
	t.retGen.Add(1)
	return nil
}

func (h *Hold) scope() string {
	var parts []string
	if len(h.Mailboxes) > 0 {
		parts = append(parts, "mailboxes "+strings.Join(h.Mailboxes, " "))
	}
	if h.From != nil {
		parts = append(parts, "from "+h.From.UTC().Format(time.DateOnly))
	}
	if h.To != nil {
		parts = append(parts, "to "+h.To.UTC().Format(time.DateOnly))
	}
	if len(h.Query) > 0 {
		parts = append(parts, "query "+string(h.Query))
	}
	if len(parts) == 0 {
		return "everything"
	}
	return strings.Join(parts, ", ")
}

// compiledHold is an active hold resolved for one evaluation.
type compiledHold struct {
	*Hold
	mailboxes map[uint64]bool // nil: any
	mids      map[uint64]bool // nil: no query
	from, to  int64           // unix seconds; 0: open
}

func (c *compiledHold) covers(f *folderState, mid uint64, m *msgMeta) bool {
	if c.mailboxes != nil && !c.mailboxes[f.Mailbox] {
		return false
	}
	if c.from != 0 && m.received < c.from || c.to != 0 && m.received >= c.to {
		return false
	}
	return c.mids == nil || c.mids[mid]
}
