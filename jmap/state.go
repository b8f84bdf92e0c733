package jmap

import (
	"strconv"
	"strings"

	"github.com/mailvault/mailvault/backend"
)

// State strings are per account and user, made of:
//   - M, the highest ModSeq among the account's messages: it grows when
//     the account gains a message (a message's ModSeq is that of the commit
//     that last gave it a folder),
//   - N, the highest MID in the account: messages above it are new,
//   - K, the user's keyword change count (the flag log, see backend),
//   - F, the highest folder id of the account: Mailboxes above it are new.
//
// Email state is "e<M>-<N>-<K>", Mailbox "m<M>-<F>-<K>", Thread "t<M>-<N>",
// Email/query "q<M>-<N>". Changes since a state are then the messages
// above N (created) and those at most N whose ModSeq is above M or that are
// in the flag log after K (updated). Only a deletion by retention destroys
// messages: its modseq raises M, and changes from a state before it cannot
// be calculated (the client fetches anew) rather than listing what went.
type acctState struct {
	modseq, maxMID, flagSeq, maxFolder uint64
	removed                            uint64 // modseq of the account's last deletion
}

// lostSince reports whether messages were deleted after a state whose M is
// oldM.
func (s acctState) lostSince(oldM uint64) bool { return s.removed > oldM }

func (s acctState) email() string   { return joinState('e', s.modseq, s.maxMID, s.flagSeq) }
func (s acctState) mailbox() string { return joinState('m', s.modseq, s.maxFolder, s.flagSeq) }
func (s acctState) thread() string  { return joinState('t', s.modseq, s.maxMID) }
func (s acctState) query() string   { return joinState('q', s.modseq, s.maxMID) }

func joinState(prefix byte, nums ...uint64) string {
	b := []byte{prefix}
	for i, n := range nums {
		if i > 0 {
			b = append(b, '-')
		}
		b = strconv.AppendUint(b, n, 10)
	}
	return string(b)
}

// parseState splits a state string with the given prefix and count.
func parseState(prefix byte, s string, count int) ([]uint64, bool) {
	if len(s) < 2 || s[0] != prefix {
		return nil, false
	}
	parts := strings.Split(s[1:], "-")
	if len(parts) != count {
		return nil, false
	}
	out := make([]uint64, count)
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || !isDigits(p) {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// folderCache is what the handler remembers of a folder: its mark (see
// backend.FolderMark) and which threads it holds.
type folderCache struct {
	mark backend.FolderMark
	// Threads of the first threadMembers members, as a bit set of root
	// MIDs, and how many distinct ones.
	threadBits    []uint64
	threadMembers int
	threadCount   int
}

// state computes the account's current state and returns its folders.
// The state is taken before anything else is read, so whatever changes
// meanwhile shows as a change later rather than being lost.
func (rq *request) state(acct backend.MailboxView) (acctState, []backend.FolderInfo, error) {
	t, login := rq.u.t, rq.u.login
	folders, err := t.Folders(login, acct.ID)
	if err != nil {
		return acctState{}, nil, backendError(err)
	}
	var s acctState
	for _, f := range folders {
		m, err := rq.h.mark(t, login, f.ID)
		if err != nil {
			return acctState{}, nil, backendError(err)
		}
		s.modseq = max(s.modseq, m.MaxModSeq)
		s.maxMID = max(s.maxMID, m.MaxMID)
		s.removed = max(s.removed, m.Removed)
		s.maxFolder = max(s.maxFolder, f.ID)
	}
	if s.flagSeq, err = t.FlagSeq(login); err != nil {
		return acctState{}, nil, err
	}
	return s, folders, nil
}

// mark returns the folder's mark, advanced over its new members.
func (h *Handler) mark(t *backend.Tenant, login string, folder uint64) (backend.FolderMark, error) {
	key := folderKey{t.Name, folder}
	h.mu.Lock()
	var m backend.FolderMark
	if c := h.marks[key]; c != nil {
		m = c.mark
	}
	h.mu.Unlock()
	m, err := t.AdvanceMark(login, folder, m)
	if err != nil {
		return m, err
	}
	h.mu.Lock()
	c := h.marks[key]
	if c == nil {
		c = &folderCache{}
		h.marks[key] = c
		h.watchLocked(t)
	}
	if m.Removed != c.mark.Removed {
		// Deleted members: the thread counts start over too.
		c.threadBits, c.threadMembers, c.threadCount = nil, 0, 0
		c.mark = m
	}
	if m.Members > c.mark.Members {
		c.mark = m
	}
	h.mu.Unlock()
	return m, nil
}

// folderThreads counts the distinct threads of a folder's messages,
// looking only at members added since the last count.
func (h *Handler) folderThreads(t *backend.Tenant, tt *threadTable, folder uint64, mids []uint64) int {
	key := folderKey{t.Name, folder}
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.marks[key]
	if c == nil {
		c = &folderCache{}
		h.marks[key] = c
		h.watchLocked(t)
	}
	if c.threadMembers > len(mids) {
		c.threadBits, c.threadMembers, c.threadCount = nil, 0, 0
	}
	roots := tt.threadsOfAll(mids[c.threadMembers:])
	for _, r := range roots {
		if r == 0 {
			continue
		}
		w := int(r / 64)
		if w >= len(c.threadBits) {
			c.threadBits = append(c.threadBits, make([]uint64, w+1-len(c.threadBits))...)
		}
		if bit := uint64(1) << (r % 64); c.threadBits[w]&bit == 0 {
			c.threadBits[w] |= bit
			c.threadCount++
		}
	}
	c.threadMembers = len(mids)
	return c.threadCount
}
