package backend

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/buntdb"
)

// JMAP keywords are the per-user flag overlay (see flags.go). Changes made
// through SetMessageFlags are also written to a short per-user log, so that
// JMAP clients learn them from Email/changes instead of reloading
// everything. The log keeps the newest maxFlagLog changes; a client further
// behind is told to resynchronise.

const maxFlagLog = 10000

func flagSeqKey(login string) string { return "flagseq:" + login }
func flagLogKey(login string, seq uint64) string {
	return fmt.Sprintf("flaglog:%s:%016x", login, seq)
}

// SetMessageFlags changes the user's flags of a message on each of its
// memberships in the archive mailbox and logs the change. ErrNotFound: the
// user may not read the mailbox, or the message is not in it.
func (t *Tenant) SetMessageFlags(ctx context.Context, login string, mailbox, mid uint64, op FlagOp, flags []string) error {
	ms, err := t.Memberships(login, mailbox, []uint64{mid})
	if err != nil {
		return err
	}
	if ms[0] == nil {
		return fmt.Errorf("message %d: %w", mid, ErrNotFound)
	}
	for _, m := range ms[0] {
		if _, err := t.StoreFlags(ctx, login, m.Folder, []uint32{m.UID}, op, flags); err != nil {
			return err
		}
	}
	return nil
}

// logFlagChangesTx appends the MIDs to the user's flag change log; every
// flag change, by IMAP STORE or JMAP Email/set, goes through it, so JMAP
// states move whichever protocol changed a keyword.
func logFlagChangesTx(tx *buntdb.Tx, login string, mids []uint64) error {
	seq, err := readFlagSeq(tx, login)
	if err != nil {
		return err
	}
	for _, mid := range mids {
		seq++
		if _, _, err := tx.Set(flagLogKey(login, seq), strconv.FormatUint(mid, 10), nil); err != nil {
			return err
		}
		if seq > maxFlagLog {
			if _, err := tx.Delete(flagLogKey(login, seq-maxFlagLog)); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
				return err
			}
		}
	}
	_, _, err = tx.Set(flagSeqKey(login), strconv.FormatUint(seq, 10), nil)
	return err
}

func readFlagSeq(tx *buntdb.Tx, login string) (uint64, error) {
	v, err := tx.Get(flagSeqKey(login))
	if errors.Is(err, buntdb.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(v, 10, 64)
}

// FlagSeq returns the number of flag changes the user made.
func (t *Tenant) FlagSeq(login string) (uint64, error) {
	var seq uint64
	err := t.db.View(func(tx *buntdb.Tx) error {
		var err error
		seq, err = readFlagSeq(tx, login)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read flag sequence of %s: %w", login, err)
	}
	return seq, nil
}

// FlagChanges returns the MIDs whose flags the user changed after change
// number since, oldest first (with repeats), and the current number. ok is
// false when the log no longer reaches back that far.
func (t *Tenant) FlagChanges(login string, since uint64) (mids []uint64, seq uint64, ok bool, err error) {
	err = t.db.View(func(tx *buntdb.Tx) error {
		if seq, err = readFlagSeq(tx, login); err != nil {
			return err
		}
		if since > seq || seq-since > maxFlagLog {
			return nil
		}
		ok = true
		prefix := "flaglog:" + login + ":"
		var ierr error
		err := tx.AscendRange("", flagLogKey(login, since+1), prefix+"~", func(k, v string) bool {
			if !strings.HasPrefix(k, prefix) {
				return false
			}
			mid, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				ierr = fmt.Errorf("flag log %s: %w", k, err)
				return false
			}
			mids = append(mids, mid)
			return true
		})
		return errors.Join(err, ierr)
	})
	if err != nil {
		return nil, 0, false, fmt.Errorf("read flag changes of %s: %w", login, err)
	}
	return mids, seq, ok, nil
}
