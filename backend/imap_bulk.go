package backend

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/buntdb"
)

// Bulk reads for protocol servers that list whole folders at once (IMAP
// FETCH 1:*, SEARCH, STATUS): one lock or one scan per folder instead of one
// per message.

// DefaultFlags returns the flags of a message the user never flagged.
func DefaultFlags() []string { return slices.Clone(defaultFlags) }

// FlagOverlay returns the flags the user set on messages of a folder they
// may read, by UID; a message not in the map has DefaultFlags. The map holds
// only the messages the user ever flagged, so it stays small for a large
// folder.
func (t *Tenant) FlagOverlay(login string, folder uint64) (map[uint32][]string, error) {
	t.mu.RLock()
	f := t.folders[folder]
	ok := f != nil && t.canReadLocked(login, t.mailboxes[f.Mailbox])
	t.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("folder %d: %w", folder, ErrNotFound)
	}
	out := map[uint32][]string{}
	prefix := fmt.Sprintf("flag:%s:%016x:", login, folder)
	err := t.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendRange("", prefix, prefix+"~", func(k, v string) bool {
			var uid uint32
			if _, err := fmt.Sscanf(k[len(prefix):], "%08x", &uid); err == nil {
				out[uid] = strings.Fields(v)
			}
			return true
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read flags of folder %d: %w", folder, err)
	}
	return out, nil
}

// MessageInfos returns the metadata of mids, in order, under one lock.
// Like Message, it is for MIDs taken from a snapshot the caller was allowed
// to take.
func (t *Tenant) MessageInfos(mids []uint64) ([]MessageInfo, error) {
	out := make([]MessageInfo, len(mids))
	t.mu.RLock()
	defer t.mu.RUnlock()
	for i, mid := range mids {
		if mid == 0 || mid > uint64(len(t.msgs)) {
			return nil, fmt.Errorf("message %d: %w", mid, ErrNotFound)
		}
		m := &t.msgs[mid-1]
		out[i] = MessageInfo{MID: mid, Size: m.size, Received: time.Unix(m.received, 0).UTC(), ModSeq: m.modseq, SHA256: m.sum}
	}
	return out, nil
}
