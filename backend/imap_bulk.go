package backend

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/mailparse"
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

// ListedMessage is what a folder listing shows of one message.
type ListedMessage struct {
	MessageInfo
	Envelope *mailparse.Envelope
	// Err says why this message could not be read; the others still are.
	Err error
}

// ListMessages returns the metadata and envelopes of mids, in order: what
// a client listing a folder asks for (IMAP FETCH 1:* ENVELOPE). It reads
// the summaries in log order, in few large reads, instead of two reads per
// message. Like Message, it is for MIDs taken from a snapshot the caller
// was allowed to take. Only an ended ctx fails the whole call.
func (t *Tenant) ListMessages(ctx context.Context, mids []uint64) ([]ListedMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]ListedMessage, len(mids))
	var at []int // indexes in out of the summaries to read
	var offs []int64
	t.mu.RLock()
	for i, mid := range mids {
		if mid == 0 || mid > uint64(len(t.msgs)) {
			out[i].MID = mid
			out[i].Err = fmt.Errorf("message %d: %w", mid, ErrNotFound)
			continue
		}
		m := &t.msgs[mid-1]
		out[i].MessageInfo = MessageInfo{MID: mid, Size: m.size, Received: time.Unix(m.received, 0).UTC(), ModSeq: m.modseq, SHA256: m.sum}
		at = append(at, i)
		offs = append(offs, m.sumOff)
	}
	t.mu.RUnlock()
	err := t.sums.ReadBatch(offs, func(k int, sealed []byte, err error) error {
		l := &out[at[k]]
		if err != nil {
			l.Err = fmt.Errorf("summary of message %d: %w", l.MID, err)
			return nil
		}
		rec, err := t.openSummary(l.MID, l.SHA256, sealed)
		if err != nil {
			l.Err = err
			return nil
		}
		if l.Envelope, err = decodeEnvelope(rec); err != nil {
			l.Err = fmt.Errorf("envelope of message %d: %w", l.MID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Envelope returns the envelope stored in a message's summary, decoding
// nothing else: the rest of the summary (MIME tree, all header fields) is
// most of the record.
func (t *Tenant) Envelope(ctx context.Context, mid uint64) (*mailparse.Envelope, error) {
	rec, err := t.summaryRecord(mid)
	if err != nil {
		return nil, err
	}
	env, err := decodeEnvelope(rec)
	if err != nil {
		return nil, fmt.Errorf("envelope of message %d: %w", mid, err)
	}
	return env, nil
}

// summaryRecord reads and opens the sealed summary of a message (for
// Summary and Envelope).
func (t *Tenant) summaryRecord(mid uint64) ([]byte, error) {
	t.mu.RLock()
	if mid == 0 || mid > uint64(len(t.msgs)) {
		t.mu.RUnlock()
		return nil, fmt.Errorf("message %d: %w", mid, ErrNotFound)
	}
	m := t.msgs[mid-1]
	t.mu.RUnlock()
	sealed, err := t.sums.Read(m.sumOff)
	if err != nil {
		return nil, err
	}
	return t.openSummary(mid, m.sum, sealed)
}

// openSummary authenticates and decrypts a summary record, which is bound
// to the message's content hash.
func (t *Tenant) openSummary(mid uint64, sum [32]byte, sealed []byte) ([]byte, error) {
	rec, err := t.seal.Open(sealed, []byte("summary "+t.seal.BlobKey(sum)))
	if err != nil {
		return nil, fmt.Errorf("summary of message %d: %w", mid, err)
	}
	return rec, nil
}
