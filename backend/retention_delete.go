package backend

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/buntdb"
)

// ErrStale is returned when a deletion is confirmed with a token from a dry
// run whose plan no longer holds (new policies, holds, or messages): dry-run
// again.
var ErrStale = errors.New("the deletion plan changed since the dry run")

// evaluator judges placements against one version of the policies and
// holds, at one moment.
type evaluator struct {
	now       time.Time
	gen       uint64
	version   int
	policies  []compiledPolicy
	def       Policy
	holds     []compiledHold
	watermark uint64 // messages changed after it are not judged by queries yet
}

func (t *Tenant) newEvaluator(ctx context.Context) (*evaluator, error) {
	gen := t.retGen.Load()
	ps, err := t.RetentionPolicies()
	if err != nil {
		return nil, err
	}
	holds, err := t.Holds()
	if err != nil {
		return nil, err
	}
	// The watermark is read before the queries run: whatever it covers,
	// their index readers cover too.
	e := &evaluator{now: t.p.now(), gen: gen, version: ps.Version, def: DefaultPolicy(), watermark: t.ix.Watermark()}
	resolve := func(addrs []string) map[uint64]bool {
		if len(addrs) == 0 {
			return nil
		}
		set := map[uint64]bool{}
		t.mu.RLock()
		for _, a := range addrs {
			if id, ok := t.addrs[a]; ok {
				set[id] = true
			}
		}
		t.mu.RUnlock()
		return set
	}
	for i := range ps.Policies {
		p := &ps.Policies[i]
		cp := compiledPolicy{Policy: p, mailboxes: resolve(p.Mailboxes)}
		q, ok, err := messageQuery(p.Addresses, p.Query)
		if err != nil {
			return nil, fmt.Errorf("policy %q: %w", p.Name, err)
		}
		if ok {
			if cp.mids, err = t.findAll(ctx, q); err != nil {
				return nil, err
			}
		}
		e.policies = append(e.policies, cp)
	}
	for i := range holds {
		h := &holds[i]
		if !h.Active() {
			continue
		}
		ch := compiledHold{Hold: h, mailboxes: resolve(h.Mailboxes)}
		if h.From != nil {
			ch.from = h.From.Unix()
		}
		if h.To != nil {
			ch.to = h.To.Unix()
		}
		q, ok, err := messageQuery(nil, h.Query)
		if err != nil {
			return nil, fmt.Errorf("hold %s: %w", h.ID, err)
		}
		if ok {
			if ch.mids, err = t.findAll(ctx, q); err != nil {
				return nil, err
			}
		}
		e.holds = append(e.holds, ch)
	}
	return e, nil
}

// policy returns the policy that applies to a placement. The caller holds
// t.mu for reading.
func (e *evaluator) policy(f *folderState, mb *Mailbox, mid uint64) *Policy {
	for i := range e.policies {
		if e.policies[i].matches(f, mb, mid) {
			return e.policies[i].Policy
		}
	}
	return &e.def
}

// held reports whether any active hold covers the placement.
func (e *evaluator) held(f *folderState, mid uint64, m *msgMeta) bool {
	for i := range e.holds {
		if e.holds[i].covers(f, mid, m) {
			return true
		}
	}
	return false
}

// PlacementRetention is the effective retention of one placement.
type PlacementRetention struct {
	Mailbox   string     `json:"mailbox"`
	Folder    string     `json:"folder"`
	UID       uint32     `json:"uid"`
	Policy    string     `json:"policy"`
	MinUntil  time.Time  `json:"min_until"`
	MaxUntil  *time.Time `json:"max_until,omitempty"`
	MaxAction string     `json:"max_action,omitempty"`
	Holds     []string   `json:"holds,omitempty"`
	Deletable bool       `json:"deletable"` // past its minimum, under no hold
}

// Retention is the effective retention of a message: per placement, and
// for its bytes, which the longest minimum of any placement protects.
type Retention struct {
	MID           uint64               `json:"mid"`
	Received      time.Time            `json:"received"`
	Archived      time.Time            `json:"archived"`
	PolicyVersion int                  `json:"policy_version"`
	Placements    []PlacementRetention `json:"placements"`
	MinUntil      time.Time            `json:"min_until"`
	MaxUntil      *time.Time           `json:"max_until,omitempty"`
	Holds         []HoldRef            `json:"holds,omitempty"`
	// IndexPending: the index has not caught up with the message, so
	// policies and holds with queries cannot be judged yet; it is not
	// deletable until they can.
	IndexPending bool `json:"index_pending,omitempty"`
}

// HoldRef names a hold that covers a message.
type HoldRef struct {
	ID   string `json:"id"`
	Case string `json:"case"`
}

// EffectiveRetention returns the retention of one message. ErrNotFound:
// no such message, or it was deleted.
func (t *Tenant) EffectiveRetention(ctx context.Context, mid uint64) (*Retention, error) {
	t.touch()
	ev, err := t.newEvaluator(ctx)
	if err != nil {
		return nil, err
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if mid == 0 || mid > uint64(len(t.msgs)) || t.msgs[mid-1].missing || t.msgs[mid-1].deleted {
		return nil, fmt.Errorf("message %d: %w", mid, ErrNotFound)
	}
	m := &t.msgs[mid-1]
	r := &Retention{MID: mid, Received: time.Unix(m.received, 0).UTC(), Archived: time.Unix(0, m.archived).UTC(),
		PolicyVersion: ev.version, IndexPending: m.modseq > ev.watermark}
	seen := map[string]bool{}
	for _, mm := range m.members {
		f := t.folders[mm.folder]
		mb := t.mailboxes[f.Mailbox]
		p := ev.policy(f, mb, mid)
		pr := PlacementRetention{Mailbox: mb.Address, Folder: f.Name, UID: mm.uid, Policy: p.Name, MinUntil: p.Min.until(m.received, m.archived)}
		if p.Max != nil {
			u := p.Max.until(m.received, m.archived)
			pr.MaxUntil, pr.MaxAction = &u, p.MaxAction
			if r.MaxUntil == nil || u.After(*r.MaxUntil) {
				r.MaxUntil = &u
			}
		}
		for i := range ev.holds {
			if h := &ev.holds[i]; h.covers(f, mid, m) {
				pr.Holds = append(pr.Holds, h.ID)
				if !seen[h.ID] {
					seen[h.ID] = true
					r.Holds = append(r.Holds, HoldRef{ID: h.ID, Case: h.Case})
				}
			}
		}
		pr.Deletable = !ev.now.Before(pr.MinUntil) && len(pr.Holds) == 0 && !r.IndexPending
		if pr.MinUntil.After(r.MinUntil) {
			r.MinUntil = pr.MinUntil
		}
		r.Placements = append(r.Placements, pr)
	}
	return r, nil
}

// DeleteRequest selects placements a compliance user wants deleted. The
// conditions are ANDed; at least one must be given (All selects every
// placement). Only those past their minimum retention and under no hold
// are deleted.
type DeleteRequest struct {
	Mailboxes []string        `json:"mailboxes,omitempty"`
	Folders   []string        `json:"folders,omitempty"`
	Query     json.RawMessage `json:"query,omitempty"`
	Before    *time.Time      `json:"before,omitempty"` // message date before
	MIDs      []uint64        `json:"mids,omitempty"`
	All       bool            `json:"all,omitempty"`
}

func (r *DeleteRequest) empty() bool {
	return len(r.Mailboxes) == 0 && len(r.Folders) == 0 && len(r.Query) == 0 && r.Before == nil && len(r.MIDs) == 0 && !r.All
}

// PlanItem is one placement a deletion removes.
type PlanItem struct {
	MID     uint64 `json:"mid"`
	Mailbox string `json:"mailbox"`
	Folder  string `json:"folder"`
	UID     uint32 `json:"uid"`
	Policy  string `json:"policy"`
	folder  uint64
}

// DeletionPlan is what a deletion would do: the answer of a dry run.
type DeletionPlan struct {
	Token         string         `json:"token"`
	AsOf          time.Time      `json:"as_of"`
	PolicyVersion int            `json:"policy_version"`
	Placements    int            `json:"placements"`
	Messages      int            `json:"messages"` // messages whose last placement goes: their bytes are destroyed
	Bytes         int64          `json:"bytes"`
	ByPolicy      map[string]int `json:"by_policy"`
	Items         []PlanItem     `json:"items"`
	// Review lists placements past a maximum retention whose policy asks
	// for review rather than deletion (retention job only).
	Review []PlanItem `json:"review,omitempty"`
	// Placements the selection named that stay: under a hold, before
	// their minimum, or not indexed yet.
	Held      int `json:"held"`
	Protected int `json:"protected"`
	Unindexed int `json:"unindexed"`
}

// planDeletion works out a deletion: auto for the retention job (placements past
// a maximum retention), else the placements req selects.
func (t *Tenant) planDeletion(ctx context.Context, req *DeleteRequest, auto bool, ev *evaluator) (*DeletionPlan, error) {
	var sel struct {
		mailboxes map[uint64]bool
		mids      map[uint64]bool
		query     map[uint64]bool
		before    int64
	}
	if !auto {
		if req.empty() {
			return nil, fmt.Errorf("%w: select what to delete (mailboxes, folders, query, before, mids, or all)", ErrInvalid)
		}
		if len(req.Mailboxes) > 0 {
			sel.mailboxes = map[uint64]bool{}
			t.mu.RLock()
			for _, a := range req.Mailboxes {
				na, _ := NormalizeAddress(a)
				id, ok := t.addrs[na]
				if !ok {
					t.mu.RUnlock()
					return nil, fmt.Errorf("archive mailbox %s: %w", a, ErrNotFound)
				}
				sel.mailboxes[id] = true
			}
			t.mu.RUnlock()
		}
		if len(req.MIDs) > 0 {
			sel.mids = map[uint64]bool{}
			for _, m := range req.MIDs {
				sel.mids[m] = true
			}
		}
		if len(req.Query) > 0 {
			q, ok, err := messageQuery(nil, req.Query)
			if err != nil {
				return nil, fmt.Errorf("%w query: %v", ErrInvalid, err)
			}
			if ok {
				if sel.query, err = t.findAll(ctx, q); err != nil {
					return nil, err
				}
			}
		}
		if req.Before != nil {
			sel.before = req.Before.Unix()
		}
		folders := make([]string, len(req.Folders))
		for i, f := range req.Folders {
			p := Policy{Name: "selection", Folders: []string{f}}
			if err := t.checkPolicy(&p); err != nil {
				return nil, fmt.Errorf("%w folder %q", ErrInvalid, f)
			}
			folders[i] = p.Folders[0]
		}
		req.Folders = folders
	}
	pl := &DeletionPlan{AsOf: ev.now.UTC(), PolicyVersion: ev.version, ByPolicy: map[string]int{}, Items: []PlanItem{}}
	goes := map[uint64]int{}
	t.mu.RLock()
	ids := make([]uint64, 0, len(t.folders))
	for id := range t.folders {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, fid := range ids {
		f := t.folders[fid]
		mb := t.mailboxes[f.Mailbox]
		if mb == nil {
			continue
		}
		if !auto {
			if sel.mailboxes != nil && !sel.mailboxes[f.Mailbox] {
				continue
			}
			if len(req.Folders) > 0 && !slices.ContainsFunc(req.Folders, func(p string) bool { return folderMatches(p, f.Name) }) {
				continue
			}
		}
		for i, mid := range f.mids {
			m := &t.msgs[mid-1]
			if !auto && (sel.mids != nil && !sel.mids[mid] || sel.query != nil && !sel.query[mid] || sel.before != 0 && m.received >= sel.before) {
				continue
			}
			p := ev.policy(f, mb, mid)
			if auto {
				if p.Max == nil || ev.now.Before(p.Max.until(m.received, m.archived)) {
					continue
				}
			}
			switch {
			case ev.now.Before(p.Min.until(m.received, m.archived)):
				pl.Protected++
				continue
			case ev.held(f, mid, m):
				pl.Held++
				continue
			case m.modseq > ev.watermark:
				pl.Unindexed++
				continue
			}
			it := PlanItem{MID: mid, Mailbox: mb.Address, Folder: f.Name, UID: f.uids[i], Policy: p.Name, folder: fid}
			if auto && p.MaxAction == ActionReview {
				pl.Review = append(pl.Review, it)
				continue
			}
			pl.Items = append(pl.Items, it)
			pl.ByPolicy[p.Name]++
			if goes[mid]++; goes[mid] == len(m.members) {
				pl.Messages++
				pl.Bytes += m.size
			}
		}
	}
	t.mu.RUnlock()
	pl.Placements = len(pl.Items)
	pl.Token = t.planToken(ev, auto, pl.Items)
	return pl, nil
}

// planToken binds a confirmation to exactly this plan under these
// policies and holds; it is keyed, so only a dry run can produce it.
func (t *Tenant) planToken(ev *evaluator, auto bool, items []PlanItem) string {
	k := t.seal.DeriveKey("retention confirm")
	m := hmac.New(sha256.New, k[:])
	fmt.Fprintf(m, "%d %d %v %d\n", ev.version, ev.gen, auto, len(items))
	var b [20]byte
	for _, it := range items {
		binary.BigEndian.PutUint64(b[:], it.folder)
		binary.BigEndian.PutUint32(b[8:], it.UID)
		binary.BigEndian.PutUint64(b[12:], it.MID)
		m.Write(b[:])
	}
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// DryRun returns what Delete would delete for req now, with the token
// that confirms it. The provider may ask too (it may not delete).
func (t *Tenant) DryRun(ctx context.Context, req DeleteRequest) (*DeletionPlan, error) {
	t.touch()
	ev, err := t.newEvaluator(ctx)
	if err != nil {
		return nil, err
	}
	return t.planDeletion(ctx, &req, false, ev)
}

// RetentionDryRun returns what the retention job would delete now.
func (t *Tenant) RetentionDryRun(ctx context.Context) (*DeletionPlan, error) {
	t.touch()
	ev, err := t.newEvaluator(ctx)
	if err != nil {
		return nil, err
	}
	return t.planDeletion(ctx, nil, true, ev)
}

// Delete deletes what the dry run of req planned, confirmed by its token;
// only a compliance user may. ErrStale: the plan changed since.
func (t *Tenant) Delete(ctx context.Context, actor string, req DeleteRequest, token string) (*RunReport, error) {
	t.touch()
	if err := t.requireCompliance(actor); err != nil {
		return nil, err
	}
	ev, err := t.newEvaluator(ctx)
	if err != nil {
		return nil, err
	}
	pl, err := t.planDeletion(ctx, &req, false, ev)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal([]byte(pl.Token), []byte(token)) {
		return nil, ErrStale
	}
	return t.runDeletion(ctx, newRun(actor, "request", false, pl.Items, ev.now), ev)
}

// deleteBatch removes one batch of placements, re-judged under wmu: a
// placement gone meanwhile, under a hold placed meanwhile, or (never,
// since periods only run out) before its minimum is skipped. Messages
// whose last placement goes become deletion records that keep their place
// in the hash chain; their bytes are shredded, their summaries wiped. The
// audit entries and the anchor of the new state are in the same commit.
func (t *Tenant) deleteBatch(ctx context.Context, r *run, items []PlanItem, ev *evaluator) (removed, deleted int, err error) {
	gone, touched, modseq, removed, err := t.commitDeletion(r, items, ev)
	if err != nil || removed == 0 {
		return removed, 0, err
	}
	// The bytes go outside wmu, so ingest commits meanwhile; the deleted
	// messages keep their hashes until then, so no commit can take them
	// up again (see commit).
	if err := t.shred(ctx, gone); err != nil {
		// The markers stay; the next run or open finishes the shredding.
		return removed, len(gone), err
	}
	for _, mid := range touched {
		t.queueIndex(indexJob{mid: mid, modseq: modseq})
	}
	return removed, len(gone), nil
}

// commitDeletion is the part of deleteBatch under wmu: the metadata
// commit and the in-memory state. It returns the messages whose last
// placement went, every message it changed and their new modseq.
func (t *Tenant) commitDeletion(r *run, items []PlanItem, ev *evaluator) (gone, touched []uint64, modseq uint64, removed int, err error) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	type rm struct {
		folder uint64
		uid    uint32
		mid    uint64
		reason string
	}
	var rms []rm
	left := map[uint64]int{} // mid -> placements left after the batch
	t.mu.RLock()
	for _, it := range items {
		f := t.folders[it.folder]
		if f == nil {
			continue
		}
		i, ok := slices.BinarySearch(f.uids, it.UID)
		if !ok || f.mids[i] != it.MID {
			continue // gone already (a resumed run)
		}
		m := &t.msgs[it.MID-1]
		mb := t.mailboxes[f.Mailbox]
		p := ev.policy(f, mb, it.MID)
		// A message this run changed itself waits for no re-indexing:
		// its content, which queries judge, is the same.
		if ev.now.Before(p.Min.until(m.received, m.archived)) || ev.held(f, it.MID, m) || m.modseq > ev.watermark && !r.touched[it.MID] {
			continue
		}
		if _, ok := left[it.MID]; !ok {
			left[it.MID] = len(m.members)
		}
		left[it.MID]--
		reason := "request:" + r.ID
		if r.Auto {
			reason = "policy:" + p.Name
		}
		rms = append(rms, rm{it.folder, it.UID, it.MID, reason})
	}
	t.mu.RUnlock()
	if len(rms) == 0 {
		return nil, nil, 0, 0, nil
	}
	for mid, n := range left {
		if n == 0 {
			gone = append(gone, mid)
		}
	}
	slices.Sort(gone)

	now := t.p.now().UTC()
	modseq = t.modseq + 1
	next := t.state
	next.Time = now.UnixNano()
	byReason := map[string][]rm{}
	var reasons []string
	for _, x := range rms {
		next.Placements--
		xorInto(&next.PlaceSum, t.placementHash(x.folder, x.uid, x.mid))
		if byReason[x.reason] == nil {
			reasons = append(reasons, x.reason)
		}
		byReason[x.reason] = append(byReason[x.reason], x)
	}
	var entries []AuditEntry
	for _, reason := range reasons {
		var mids, del []uint64
		for _, x := range byReason[reason] {
			mids = append(mids, x.mid)
			if left[x.mid] == 0 {
				del = append(del, x.mid)
			}
		}
		entries = append(entries, AuditEntry{Action: "retention-delete", Detail: fmt.Sprintf("run=%s reason=%s placements=%d mids=%s deleted=%s",
			r.ID, reason, len(byReason[reason]), formatRanges(mids), formatRanges(del))})
	}
	entries, next, undo := t.chainAuditFrom(next, r.actor(), now, entries)

	// Removed placements' flags go too.
	removedSet := make(map[member]bool, len(rms))
	folders := map[uint64]bool{}
	for _, x := range rms {
		removedSet[member{x.folder, x.uid}] = true
		folders[x.folder] = true
	}
	var flagKeys []string
	if err := t.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendKeys("flag:*", func(k, v string) bool {
			if mm, ok := parseFlagKey(k); ok && removedSet[mm] {
				flagKeys = append(flagKeys, k)
			}
			return true
		})
	}); err != nil {
		undo()
		return nil, nil, 0, 0, err
	}
	t.mu.RLock()
	updated := map[uint64]msgMeta{}
	for _, x := range rms {
		m := t.msgs[x.mid-1]
		m.modseq = modseq
		if left[x.mid] == 0 {
			m.deleted = true
		}
		updated[x.mid] = m
	}
	t.mu.RUnlock()
	err = t.db.Update(func(tx *buntdb.Tx) error {
		for _, x := range rms {
			if _, err := tx.Delete(memKey(x.folder, x.uid)); err != nil && err != buntdb.ErrNotFound {
				return err
			}
		}
		for _, k := range flagKeys {
			if _, err := tx.Delete(k); err != nil && err != buntdb.ErrNotFound {
				return err
			}
		}
		for mid, m := range updated {
			if _, _, err := tx.Set(msgKey(mid), encodeMsg(&m), nil); err != nil {
				return err
			}
			if m.deleted {
				if _, err := tx.Delete(rcptKey(mid)); err != nil && err != buntdb.ErrNotFound {
					return err
				}
				if _, _, err := tx.Set(shredKey(mid), "1", nil); err != nil {
					return err
				}
			}
		}
		for i := range entries {
			if err := setJSON(tx, auditKey(entries[i].Seq), &entries[i]); err != nil {
				return err
			}
		}
		for fid := range folders {
			if _, _, err := tx.Set(removedKey(fid), strconv.FormatUint(modseq, 10), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		undo()
		return nil, nil, 0, 0, fmt.Errorf("commit deletion: %w", err)
	}

	t.mu.Lock()
	byFolder := map[uint64]map[uint32]bool{}
	for _, x := range rms {
		if byFolder[x.folder] == nil {
			byFolder[x.folder] = map[uint32]bool{}
		}
		byFolder[x.folder][x.uid] = true
	}
	for fid, uids := range byFolder {
		f := t.folders[fid]
		// New slices: snapshots share the old backing arrays.
		nu := make([]uint32, 0, len(f.uids)-len(uids))
		nm := make([]uint64, 0, len(f.uids)-len(uids))
		for i, u := range f.uids {
			if uids[u] {
				f.size -= t.msgs[f.mids[i]-1].imapSize()
				continue
			}
			nu, nm = append(nu, u), append(nm, f.mids[i])
		}
		f.uids, f.mids = nu, nm
		f.removed, f.changed = modseq, modseq
	}
	for mid, u := range updated {
		m := &t.msgs[mid-1]
		m.modseq = modseq
		m.members = slices.DeleteFunc(slices.Clone(m.members), func(mm member) bool { return removedSet[mm] })
		for _, mm := range m.members {
			t.folders[mm.folder].changed = modseq
		}
		if u.deleted {
			m.deleted, m.members = true, nil
			t.bytes -= m.size
			t.deletedCount++
		}
	}
	t.modseq = modseq
	t.state = next
	notify := make([]func(uint64, int), 0, len(t.notify))
	for _, fn := range t.notify {
		notify = append(notify, fn)
	}
	counts := map[uint64]int{}
	for fid := range byFolder {
		counts[fid] = len(t.folders[fid].uids)
	}
	t.mu.Unlock()
	for fid, n := range counts {
		for _, fn := range notify {
			fn(fid, n)
		}
	}
	for mid := range updated {
		touched = append(touched, mid)
		r.touched[mid] = true
	}
	return gone, touched, modseq, len(rms), nil
}

func shredKey(mid uint64) string { return fmt.Sprintf("shred:%016x", mid) }

// removedKey holds the modseq of a folder's last deletion.
func removedKey(folder uint64) string { return fmt.Sprintf("removed:%016x", folder) }

func parseFlagKey(k string) (member, bool) {
	// flag:<login>:<folder %016x>:<uid %08x>
	if len(k) < 5+16+1+8+2 {
		return member{}, false
	}
	us, fs := k[len(k)-8:], k[len(k)-8-1-16:len(k)-8-1]
	f, err1 := strconv.ParseUint(fs, 16, 64)
	u, err2 := strconv.ParseUint(us, 16, 32)
	if err1 != nil || err2 != nil {
		return member{}, false
	}
	return member{f, uint32(u)}, true
}

// shred destroys the data keys of deleted messages, then their bytes: the
// blob (unless a message archived since has the same content and owns it
// now) and the summary record; then it removes their shred markers. Runs (runMu) and the open
// call it one at a time.
func (t *Tenant) shred(ctx context.Context, mids []uint64) error {
	if len(mids) == 0 {
		return nil
	}
	var keys []string
	var offs []int64
	t.mu.RLock()
	for _, mid := range mids {
		m := &t.msgs[mid-1]
		if live, ok := t.hashes[m.sum]; !ok || live == mid {
			keys = append(keys, t.seal.BlobKey(m.sum))
		}
		offs = append(offs, m.sumOff)
	}
	t.mu.RUnlock()
	t.inPlace.Lock()
	defer t.inPlace.Unlock()
	// The keys go first, and durably: from then on the sealed bytes open
	// for nobody, wherever copies of them are (a backup keeps its copy of
	// the key file, see docs/retention.md).
	if err := t.keys.Destroy(mids); err != nil {
		return fmt.Errorf("destroy message keys: %w", err)
	}
	if t.keysDestroyed != nil {
		t.keysDestroyed()
	}
	t.wipeStale()
	if s, ok := t.blobs.(interface {
		Shred(context.Context, []string) error
	}); ok {
		if err := s.Shred(ctx, keys); err != nil {
			return fmt.Errorf("shred blobs: %w", err)
		}
	} else {
		for _, k := range keys {
			if err := t.blobs.Delete(ctx, k); err != nil {
				return err
			}
		}
		if err := t.blobs.Sync(ctx); err != nil {
			return err
		}
	}
	if err := t.sums.Wipe(offs); err != nil {
		return fmt.Errorf("wipe summaries: %w", err)
	}
	t.tkeys.forget(mids)
	t.renders.forget(mids)
	t.mu.Lock()
	for _, mid := range mids {
		if m := &t.msgs[mid-1]; t.hashes[m.sum] == mid {
			delete(t.hashes, m.sum)
		}
	}
	t.mu.Unlock()
	return t.db.Update(func(tx *buntdb.Tx) error {
		for _, mid := range mids {
			if _, err := tx.Delete(shredKey(mid)); err != nil && err != buntdb.ErrNotFound {
				return err
			}
		}
		return nil
	})
}

// finishShreds works off the shred markers a crash left between a
// deletion's commit and the destruction of its bytes.
func (t *Tenant) finishShreds(ctx context.Context) error {
	var mids []uint64
	err := t.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendKeys("shred:*", func(k, v string) bool {
			if mid, err := strconv.ParseUint(strings.TrimPrefix(k, "shred:"), 16, 64); err == nil && mid > 0 && mid <= uint64(len(t.msgs)) && t.msgs[mid-1].deleted {
				mids = append(mids, mid)
			}
			return true
		})
	})
	if err != nil || len(mids) == 0 {
		return err
	}
	t.log.Info("finishing the shredding of deleted messages", "messages", len(mids))
	return t.shred(ctx, mids)
}

// formatRanges writes sorted, unique MIDs as "1-5,9"; "-" for none.
func formatRanges(mids []uint64) string {
	if len(mids) == 0 {
		return "-"
	}
	s := slices.Clone(mids)
	slices.Sort(s)
	s = slices.Compact(s)
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(s[i], 10))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.FormatUint(s[j], 10))
		}
		i = j + 1
	}
	return b.String()
}

// parseRanges reads formatRanges' output.
func parseRanges(s string, fn func(lo, hi uint64)) {
	if s == "-" || s == "" {
		return
	}
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		lo, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			continue
		}
		hi := lo
		if isRange {
			if hi, err = strconv.ParseUint(b, 10, 64); err != nil {
				continue
			}
		}
		fn(lo, hi)
	}
}

// authorisedDeletions returns the MIDs the intact part of the audit log
// records as deleted by a retention run or a compliance user.
func (t *Tenant) authorisedDeletions() (map[uint64]bool, error) {
	all, err := t.AuditLog(0, 0)
	if err != nil {
		return nil, err
	}
	bad, err := t.VerifyAudit()
	if err != nil {
		return nil, err
	}
	badSet := map[uint64]bool{}
	for _, s := range bad {
		badSet[s] = true
	}
	out := map[uint64]bool{}
	for _, e := range all {
		if e.Action != "retention-delete" || badSet[e.Seq] {
			continue
		}
		for _, f := range strings.Fields(e.Detail) {
			if v, ok := strings.CutPrefix(f, "deleted="); ok {
				parseRanges(v, func(lo, hi uint64) {
					for m := lo; m <= hi && hi-lo < 1<<32; m++ {
						out[m] = true
					}
				})
			}
		}
	}
	return out, nil
}
