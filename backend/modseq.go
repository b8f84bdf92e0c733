package backend

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/tidwall/buntdb"
)

// IMAP CONDSTORE (RFC 7162) mod-sequences of the per-user flag overlay.
// Each user has a counter per folder; every change of the user's flags in
// the folder takes the next value and records it as the mod-sequence of the
// messages it changed, in the same transaction as the flags. A message the
// user never flagged has mod-sequence 1, the folder's highest is at least 1.

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

// ModSeqs returns the user's highest mod-sequence of a folder and those of
// the messages that have one above 1 (the others have 1).
func (t *Tenant) ModSeqs(login string, folder uint64) (highest uint64, per map[uint32]uint64, err error) {
	per = map[uint32]uint64{}
	prefix := msgModSeqPrefix(login, folder)
	err = t.db.View(func(tx *buntdb.Tx) error {
		var err error
		if highest, err = readUintTx(tx, modSeqKey(login, folder)); err != nil {
			return err
		}
		return tx.AscendRange("", prefix, prefix+"~", func(k, v string) bool {
			uid, err1 := strconv.ParseUint(k[len(prefix):], 16, 32)
			ms, err2 := strconv.ParseUint(v, 10, 64)
			if err1 == nil && err2 == nil {
				per[uint32(uid)] = ms
			}
			return true
		})
	})
	if err != nil {
		return 0, nil, fmt.Errorf("read mod-sequences of folder %d: %w", folder, err)
	}
	return max(highest, 1), per, nil
}

// HighestModSeq returns the user's highest mod-sequence of a folder.
func (t *Tenant) HighestModSeq(login string, folder uint64) (uint64, error) {
	var highest uint64
	err := t.db.View(func(tx *buntdb.Tx) error {
		var err error
		highest, err = readUintTx(tx, modSeqKey(login, folder))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read highest mod-sequence of folder %d: %w", folder, err)
	}
	return max(highest, 1), nil
}
