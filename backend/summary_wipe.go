package backend

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/store"
)

// A summary record replaced by another (the summary pass, a damaged record
// rebuilt) still holds its message's envelope and headers, sealed with the
// tenant key, which a deletion does not destroy: it must be wiped, or it
// outlives the message's shredding. The transaction that points the
// message records away from such records also stores their offsets under
// a pending-wipe key; the key goes once they are wiped, and a tenant
// opening finishes any wipe a crash left before it serves anything.

func wipeKey(off int64) string { return fmt.Sprintf("wipe:%016x", off) }

func encodeOffsets(offs []int64) string {
	b := make([]byte, 0, len(offs)*9)
	for i, off := range offs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, off, 16)
	}
	return string(b)
}

func decodeOffsets(s string) ([]int64, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	offs := make([]int64, len(parts))
	for i, p := range parts {
		off, err := strconv.ParseInt(p, 16, 64)
		if err != nil || off < 0 {
			return nil, fmt.Errorf("pending wipe: bad offset %q", p)
		}
		offs[i] = off
	}
	return offs, nil
}

// wipeStale wipes the replaced summary records and then drops their
// pending-wipe keys. The caller holds inPlace. On failure both stay, for
// the next call or the next open.
func (t *Tenant) wipeStale() {
	t.staleMu.Lock()
	defer t.staleMu.Unlock()
	if len(t.staleSums) == 0 && len(t.staleKeys) == 0 {
		return
	}
	if err := t.wipeSummaries(t.staleSums); err != nil {
		t.log.Warn("replaced summary records not wiped; tried again later", "records", len(t.staleSums), "err", err)
		return
	}
	if err := t.dropWipeKeys(t.staleKeys); err != nil {
		// Wiping again is harmless: a wiped record stays wiped.
		t.log.Warn("pending summary wipes not cleared", "err", err)
	}
	t.staleSums, t.staleKeys = nil, nil
}

// wipeSummaries wipes the records at offs. One whose length is damaged
// (it cannot be told where it ends) is left and logged; an offset past the
// log's end (a log restored from a backup taken before the record was
// written) has nothing to wipe.
func (t *Tenant) wipeSummaries(offs []int64) error {
	end := t.sums.Size()
	live := offs[:0:0]
	for _, off := range offs {
		if off < end {
			live = append(live, off)
		}
	}
	if err := t.sums.Wipe(live); err == nil {
		return nil
	}
	// Wipe stops at the first record it cannot wipe: one by one.
	for _, off := range live {
		if err := t.sums.Wipe([]int64{off}); err != nil {
			if !errors.Is(err, store.ErrCorrupt) {
				return err
			}
			t.log.Error("replaced summary record damaged, not wiped", "offset", off, "err", err)
		}
	}
	return nil
}

func (t *Tenant) dropWipeKeys(keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	return t.db.Update(func(tx *buntdb.Tx) error {
		for _, k := range keys {
			if _, err := tx.Delete(k); err != nil && err != buntdb.ErrNotFound {
				return err
			}
		}
		return nil
	})
}

// finishWipes wipes the records pending wipes list, left by a crash after
// their messages were pointed elsewhere. It runs at open, before anything
// is served and before the shredding of deleted messages is finished. A
// record a message still points at is never wiped (a guard against a
// meta.db and a log that do not belong together).
func (t *Tenant) finishWipes() error {
	var keys []string
	var offs []int64
	err := t.db.View(func(tx *buntdb.Tx) error {
		var derr error
		err := tx.AscendKeys("wipe:*", func(k, v string) bool {
			o, err := decodeOffsets(v)
			if err != nil {
				derr = fmt.Errorf("%s: %w", k, err)
				return false
			}
			keys, offs = append(keys, k), append(offs, o...)
			return true
		})
		if err != nil {
			return err
		}
		return derr
	})
	if err != nil {
		return fmt.Errorf("read pending summary wipes: %w", err)
	}
	if len(keys) == 0 {
		return nil
	}
	used := make(map[int64]bool, len(t.msgs))
	for i := range t.msgs {
		if m := &t.msgs[i]; !m.deleted {
			used[m.sumOff] = true
		}
	}
	todo := offs[:0]
	for _, off := range offs {
		if !used[off] {
			todo = append(todo, off)
		}
	}
	t.log.Info("finishing the wipe of replaced summary records", "records", len(todo))
	if err := t.wipeSummaries(todo); err != nil {
		return fmt.Errorf("wipe replaced summaries: %w", err)
	}
	if err := t.dropWipeKeys(keys); err != nil {
		return fmt.Errorf("clear pending summary wipes: %w", err)
	}
	return nil
}
