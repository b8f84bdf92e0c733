package backend

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/tidwall/buntdb"
)

// IMAP CONDSTORE and QRESYNC (RFC 7162) mod-sequences of a folder as one
// user sees it. Two things change a message there: the archive's commits
// (a message placed in the folder, or gaining or losing a placement
// elsewhere; retention removing placements) and the user's own flag
// overlay. A commit's modseq c (Tenant.modseq, shared by the tenant) is
// presented as c<<32, and every change of the user's flags in the folder
// takes the next value above both the user's last one and the folder's
// last commit, c<<32+k. So a message that arrives always gets a
// mod-sequence above every one a user was told before (CHANGEDSINCE finds
// it), flag changes between two commits stay between them, and no state
// is kept per user for arrivals. The user's counter and the mod-sequence
// of each message it changed are kept beside the flags, in the same
// transaction.

// commitModSeq is the IMAP mod-sequence of a commit's modseq; 2^31 commits
// fit into the 63 bits RFC 7162 allows.
func commitModSeq(c uint64) uint64 { return c << 32 }

func modSeqKey(login string, folder uint64) string {
	return fmt.Sprintf("flagmodseq:%s:%016x", login, folder)
}

func msgModSeqPrefix(login string, folder uint64) string {
	return fmt.Sprintf("flagmod:%s:%016x:", login, folder)
}

func msgModSeqKey(login string, folder uint64, uid uint32) string {
	return fmt.Sprintf("flagmod:%s:%016x:%08x", login, folder, uid)
}

func readUintTx(tx *buntdb.Tx, key string) (uint64, error) {
	v, err := tx.Get(key)
	if errors.Is(err, buntdb.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(v, 10, 64)
}

// folderChangedLocked is the IMAP mod-sequence of the folder's last commit.
func (t *Tenant) folderChangedLocked(f *folderState) uint64 {
	return commitModSeq(max(f.changed, f.removed))
}

// ModSeqs returns the user's highest mod-sequence of a folder and the
// mod-sequence of each message of a view of it (uids and mids parallel
// and ascending, as a FolderSnapshot has them), by position.
func (t *Tenant) ModSeqs(login string, folder uint64, uids []uint32, mids []uint64) (highest uint64, per []uint64, err error) {
	per = make([]uint64, len(uids))
	t.mu.RLock()
	f := t.folders[folder]
	if f == nil {
		t.mu.RUnlock()
		return 0, nil, fmt.Errorf("folder %d: %w", folder, ErrNotFound)
	}
	highest = t.folderChangedLocked(f)
	for i, mid := range mids {
		if mid > 0 && mid <= uint64(len(t.msgs)) {
			per[i] = commitModSeq(t.msgs[mid-1].modseq)
		}
	}
	t.mu.RUnlock()
	prefix := msgModSeqPrefix(login, folder)
	err = t.db.View(func(tx *buntdb.Tx) error {
		user, err := readUintTx(tx, modSeqKey(login, folder))
		if err != nil {
			return err
		}
		highest = max(highest, user)
		return tx.AscendRange("", prefix, prefix+"~", func(k, v string) bool {
			uid, err1 := strconv.ParseUint(k[len(prefix):], 16, 32)
			ms, err2 := strconv.ParseUint(v, 10, 64)
			if err1 == nil && err2 == nil {
				if i, ok := slices.BinarySearch(uids, uint32(uid)); ok {
					per[i] = max(per[i], ms)
				}
			}
			return true
		})
	})
	if err != nil {
		return 0, nil, fmt.Errorf("read mod-sequences of folder %d: %w", folder, err)
	}
	for i := range per {
		per[i] = max(per[i], 1)
	}
	return max(highest, 1), per, nil
}

// HighestModSeq returns the user's highest mod-sequence of a folder.
func (t *Tenant) HighestModSeq(login string, folder uint64) (uint64, error) {
	t.mu.RLock()
	f := t.folders[folder]
	var highest uint64
	if f != nil {
		highest = t.folderChangedLocked(f)
	}
	t.mu.RUnlock()
	if f == nil {
		return 0, fmt.Errorf("folder %d: %w", folder, ErrNotFound)
	}
	err := t.db.View(func(tx *buntdb.Tx) error {
		user, err := readUintTx(tx, modSeqKey(login, folder))
		highest = max(highest, user)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read highest mod-sequence of folder %d: %w", folder, err)
	}
	return max(highest, 1), nil
}

// UIDRange is a range of UIDs, both ends included.
type UIDRange struct{ Lo, Hi uint32 }

// Vanished returns the UIDs of the folder, below its next UID, that the
// user cannot see now, if a placement was removed from the folder after
// the mod-sequence since (nil otherwise): what QRESYNC reports as VANISHED
// (EARLIER). Only the last removal's mod-sequence is kept, so after one
// the answer includes UIDs removed before since too, as RFC 7162 (3.2.5.1)
// allows; a client ignores UIDs it does not hold. UIDs are given out in
// ascending order and never again, so a gap is a removed message, or one
// outside an auditor account's period.
func (t *Tenant) Vanished(login string, folder uint64, since uint64) ([]UIDRange, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	f := t.folders[folder]
	if f == nil || !t.canReadLocked(login, t.mailboxes[f.Mailbox]) {
		return nil, fmt.Errorf("folder %d: %w", folder, ErrNotFound)
	}
	if f.removed == 0 || commitModSeq(f.removed) <= since {
		return nil, nil
	}
	uids, _, _ := t.folderViewLocked(login, f)
	var out []UIDRange
	next := uint32(1)
	for _, u := range uids {
		if u > next {
			out = append(out, UIDRange{next, u - 1})
		}
		next = u + 1
	}
	if f.uidNext > next {
		out = append(out, UIDRange{next, f.uidNext - 1})
	}
	return out, nil
}
