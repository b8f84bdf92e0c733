package backend

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/mailvault/mailvault/index"
	"github.com/mailvault/mailvault/mailparse"
)

// Reads for the JMAP server, where an archive mailbox is an account: every
// call checks that the user may read the mailbox or folder it names, and
// message lookups are scoped to one mailbox, so an id guessed from another
// mailbox or tenant finds nothing.

// FolderUID is one membership of a message: the folder and its UID there.
type FolderUID struct {
	Folder uint64
	UID    uint32
}

// MessageCount returns the highest MID of the tenant; MIDs are dense and
// never reused.
func (t *Tenant) MessageCount() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return uint64(len(t.msgs))
}

// Memberships returns for each of mids its memberships in folders of the
// archive mailbox, in folder order; nil for a MID that is not in it (or
// does not exist). ErrNotFound: the user may not read the mailbox.
func (t *Tenant) Memberships(login string, mailbox uint64, mids []uint64) ([][]FolderUID, error) {
	t.touch()
	t.mu.RLock()
	defer t.mu.RUnlock()
	mb := t.mailboxes[mailbox]
	if mb == nil || !t.canReadLocked(login, mb) {
		return nil, fmt.Errorf("archive mailbox %d: %w", mailbox, ErrNotFound)
	}
	out := make([][]FolderUID, len(mids))
	lo, hi, scoped := t.periodLocked(login)
	for i, mid := range mids {
		if mid == 0 || mid > uint64(len(t.msgs)) || scoped && !t.inPeriodLocked(mid, lo, hi) {
			continue
		}
		for _, m := range t.msgs[mid-1].members {
			if f := t.folders[m.folder]; f != nil && f.Mailbox == mailbox {
				out[i] = append(out[i], FolderUID{Folder: m.folder, UID: m.uid})
			}
		}
		slices.SortFunc(out[i], func(a, b FolderUID) int { return cmp.Compare(a.Folder, b.Folder) })
	}
	return out, nil
}

// Find runs a full-text query over folders the user may read and returns
// the matching MIDs sorted, from offset, at most limit (limit < 0: all), and
// the number of matches (see index.Find). ErrNotFound: a folder does not
// exist or the user may not read it.
func (t *Tenant) Find(ctx context.Context, login string, folders []uint64, q index.Query, sort []index.Sort, offset, limit int) ([]uint64, int, error) {
	t.touch()
	t.mu.RLock()
	for _, id := range folders {
		f := t.folders[id]
		if f == nil || !t.canReadLocked(login, t.mailboxes[f.Mailbox]) {
			t.mu.RUnlock()
			return nil, 0, fmt.Errorf("folder %d: %w", id, ErrNotFound)
		}
	}
	t.mu.RUnlock()
	mids, total, err := t.ix.Find(ctx, folders, t.scopedQuery(login, q), sort, offset, limit)
	if err != nil {
		return nil, 0, err
	}
	// A deletion reaches the index shortly after it is committed; until
	// then the index still finds the deleted messages.
	t.mu.RLock()
	kept := mids[:0]
	for _, mid := range mids {
		if mid > 0 && mid <= uint64(len(t.msgs)) && !t.msgs[mid-1].deleted {
			kept = append(kept, mid)
		}
	}
	t.mu.RUnlock()
	return kept, total - (len(mids) - len(kept)), nil
}

// ErrNotIndexed is returned by Snippet for a message the index has not
// caught up with yet.
var ErrNotIndexed = errors.New("message not indexed yet")

// Snippet returns the subject and a body fragment of a message of the
// archive mailbox with the words q searches for highlighted (RFC 8621
// SearchSnippet, see index.Snippet). The body text is not stored, so the
// message is parsed again.
func (t *Tenant) Snippet(ctx context.Context, login string, mailbox, mid uint64, q index.Query) (subject, preview string, err error) {
	ms, err := t.Memberships(login, mailbox, []uint64{mid})
	if err != nil {
		return "", "", err
	}
	if ms[0] == nil {
		return "", "", fmt.Errorf("message %d: %w", mid, ErrNotFound)
	}
	raw, err := t.RawMessage(ctx, mid)
	if err != nil {
		return "", "", err
	}
	s := mailparse.Parse(raw, mailparse.Options{MaxText: t.p.opt.MaxIndexedText})
	subject, preview, err = t.ix.Snippet(ctx, mid, q, s.Text)
	if errors.Is(err, index.ErrNotFound) {
		return "", "", fmt.Errorf("message %d: %w", mid, ErrNotIndexed)
	}
	return subject, preview, err
}

// FolderMark summarises the members of a folder for state strings and
// query planning: how many were seen, the highest MID and ModSeq among
// them, and their range of arrival times (unix seconds). Folders grow, and
// shrink only by a deletion (Removed), so a mark advances by looking at the
// new members only.
type FolderMark struct {
	Members                  int
	MaxMID                   uint64
	MaxModSeq                uint64
	MinReceived, MaxReceived int64
	// Removed is the modseq of the folder's last deletion by retention
	// (0: none); MaxModSeq is at least that, so states change with it.
	Removed uint64
}

// AdvanceMark extends m over the members added to the folder since m was
// taken (start from the zero mark). The ModSeq of an older member that
// changed since is not looked at: a message changes only when it gains a
// membership, which a folder of the same mailbox then shows as a new member.
func (t *Tenant) AdvanceMark(login string, folder uint64, m FolderMark) (FolderMark, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	f := t.folders[folder]
	if f == nil || !t.canReadLocked(login, t.mailboxes[f.Mailbox]) {
		return m, fmt.Errorf("folder %d: %w", folder, ErrNotFound)
	}
	if m.Members > len(f.mids) || m.Removed != f.removed {
		// Placements were deleted: the members are not the ones marked.
		m = FolderMark{Removed: f.removed, MaxModSeq: f.removed}
	}
	lo, hi, scoped := t.periodLocked(login)
	first := m.MaxMID == 0
	for _, mid := range f.mids[m.Members:] {
		if scoped && !t.inPeriodLocked(mid, lo, hi) {
			continue // an auditor account's marks cover its period only
		}
		msg := &t.msgs[mid-1]
		m.MaxMID = max(m.MaxMID, mid)
		m.MaxModSeq = max(m.MaxModSeq, msg.modseq)
		if first {
			m.MinReceived, m.MaxReceived, first = msg.received, msg.received, false
		}
		m.MinReceived = min(m.MinReceived, msg.received)
		m.MaxReceived = max(m.MaxReceived, msg.received)
	}
	m.Members = len(f.mids)
	return m, nil
}

// MessageChange is a message of an archive mailbox that is new or changed.
type MessageChange struct {
	MID    uint64
	ModSeq uint64
}

// MailboxChanges lists, in MID order and once each, the messages of the
// archive mailbox with a MID above maxMID or a ModSeq above modseq: those
// created or changed since a state with these marks.
func (t *Tenant) MailboxChanges(login string, mailbox, maxMID, modseq uint64) ([]MessageChange, error) {
	t.mu.RLock()
	mb := t.mailboxes[mailbox]
	if mb == nil || !t.canReadLocked(login, mb) {
		t.mu.RUnlock()
		return nil, fmt.Errorf("archive mailbox %d: %w", mailbox, ErrNotFound)
	}
	var out []MessageChange
	lo, hi, scoped := t.periodLocked(login)
	for _, f := range t.folders {
		if f.Mailbox != mailbox {
			continue
		}
		for _, mid := range f.mids {
			if scoped && !t.inPeriodLocked(mid, lo, hi) {
				continue
			}
			if ms := t.msgs[mid-1].modseq; mid > maxMID || ms > modseq {
				out = append(out, MessageChange{MID: mid, ModSeq: ms})
			}
		}
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b MessageChange) int { return cmp.Compare(a.MID, b.MID) })
	return slices.CompactFunc(out, func(a, b MessageChange) bool { return a.MID == b.MID }), nil
}
