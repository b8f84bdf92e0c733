package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/buntdb"
)

// Per-user flags are an overlay: they belong to the user, never to the
// archived message, which no client can change. Archived mail starts \Seen;
// \Deleted is never stored.
const (
	FlagSeen    = `\Seen`
	FlagDeleted = `\Deleted`
)

// DefaultFlags are the flags of a message the user never flagged.
var defaultFlags = []string{FlagSeen}

func flagKey(login string, folder uint64, uid uint32) string {
	return fmt.Sprintf("flag:%s:%016x:%08x", login, folder, uid)
}

// Flags returns the user's flags for the given UIDs of a folder (every UID
// gets an entry).
func (t *Tenant) Flags(login string, folder uint64, uids []uint32) (map[uint32][]string, error) {
	out := make(map[uint32][]string, len(uids))
	for _, u := range uids {
		out[u] = defaultFlags
	}
	if len(uids) == 0 {
		return out, nil
	}
	prefix := fmt.Sprintf("flag:%s:%016x:", login, folder)
	err := t.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendRange("", flagKey(login, folder, uids[0]), prefix+"~", func(k, v string) bool {
			var uid uint32
			if _, err := fmt.Sscanf(k[len(prefix):], "%08x", &uid); err == nil {
				if _, want := out[uid]; want {
					out[uid] = strings.Fields(v)
				}
			}
			return true
		})
	})
	return out, err
}

// FlagOp is how StoreFlags changes flags.
type FlagOp int

// Flag operations, as IMAP STORE and JMAP keyword patches need them.
const (
	FlagsSet FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// StoreFlags changes the user's flags on UIDs of a folder the user may read
// and returns the new flags. \Deleted is refused: nothing is ever deleted
// from an archive by a user.
func (t *Tenant) StoreFlags(ctx context.Context, login string, folder uint64, uids []uint32, op FlagOp, flags []string) (map[uint32][]string, error) {
	res, err := t.StoreFlagsCond(ctx, login, folder, uids, op, flags, 0)
	if err != nil {
		return nil, err
	}
	return res.Flags, nil
}

// StoreResult is what StoreFlagsCond did.
type StoreResult struct {
	Flags   map[uint32][]string // the flags of every UID changed or not
	ModSeqs map[uint32]uint64   // the mod-sequence of the same UIDs
	// Modified are the UIDs left unchanged because their mod-sequence was
	// above unchangedSince.
	Modified []uint32
}

// StoreFlagsCond is StoreFlags that, when unchangedSince is not 0, leaves
// alone the messages whose mod-sequence is above it (RFC 7162 STORE
// UNCHANGEDSINCE). The messages whose flags change take the user's next
// mod-sequence of the folder (modseq.go), in the same transaction as their
// flags.
func (t *Tenant) StoreFlagsCond(ctx context.Context, login string, folder uint64, uids []uint32, op FlagOp, flags []string, unchangedSince uint64) (*StoreResult, error) {
	for _, f := range flags {
		if strings.EqualFold(f, FlagDeleted) {
			return nil, fmt.Errorf("%w: the archive is read-only; messages cannot be marked \\Deleted", ErrDenied)
		}
		if f == "" || strings.ContainsAny(f, " \t\r\n()") {
			return nil, fmt.Errorf("%w flag %q", ErrInvalid, f)
		}
	}
	t.mu.RLock()
	fs := t.folders[folder]
	ok := fs != nil && t.canReadLocked(login, t.mailboxes[fs.Mailbox])
	midOf := map[uint32]uint64{}
	base := map[uint32]uint64{} // the mod-sequence of the message's last commit
	var changed uint64
	if ok {
		changed = t.folderChangedLocked(fs)
		for _, uid := range uids {
			if i, found := slices.BinarySearch(fs.uids, uid); found {
				midOf[uid] = fs.mids[i]
				base[uid] = commitModSeq(t.msgs[fs.mids[i]-1].modseq)
			}
		}
	}
	t.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("folder %d: %w", folder, ErrNotFound)
	}
	res := &StoreResult{Flags: make(map[uint32][]string, len(uids)), ModSeqs: make(map[uint32]uint64, len(uids))}
	err := t.db.Update(func(tx *buntdb.Tx) error {
		highest, err := readUintTx(tx, modSeqKey(login, folder))
		if err != nil {
			return err
		}
		// Above the user's last change and the folder's last commit
		// (modseq.go).
		next := max(highest, changed, 1) + 1
		var mids []uint64
		for _, uid := range uids {
			cur := defaultFlags
			if v, err := tx.Get(flagKey(login, folder, uid)); err == nil {
				cur = strings.Fields(v)
			} else if !errors.Is(err, buntdb.ErrNotFound) {
				return err
			}
			ms, err := readUintTx(tx, msgModSeqKey(login, folder, uid))
			if err != nil {
				return err
			}
			ms = max(ms, base[uid], 1)
			if unchangedSince != 0 && ms > unchangedSince {
				res.Flags[uid], res.ModSeqs[uid] = cur, ms
				res.Modified = append(res.Modified, uid)
				continue
			}
			var nf []string
			switch op {
			case FlagsSet:
				nf = slices.Clone(flags)
			case FlagsAdd:
				nf = slices.Clone(cur)
				for _, f := range flags {
					if !containsFold(nf, f) {
						nf = append(nf, f)
					}
				}
			case FlagsRemove:
				nf = slices.DeleteFunc(slices.Clone(cur), func(f string) bool { return containsFold(flags, f) })
			}
			slices.Sort(nf)
			res.Flags[uid] = nf
			if slices.Equal(nf, cur) {
				res.ModSeqs[uid] = ms
				continue
			}
			res.ModSeqs[uid] = next
			if _, _, err := tx.Set(flagKey(login, folder, uid), strings.Join(nf, " "), nil); err != nil {
				return err
			}
			if _, _, err := tx.Set(msgModSeqKey(login, folder, uid), strconv.FormatUint(next, 10), nil); err != nil {
				return err
			}
			if mid, ok := midOf[uid]; ok {
				mids = append(mids, mid)
			}
		}
		if len(mids) == 0 {
			return nil
		}
		if _, _, err := tx.Set(modSeqKey(login, folder), strconv.FormatUint(next, 10), nil); err != nil {
			return err
		}
		return logFlagChangesTx(tx, login, mids)
	})
	if err != nil {
		return nil, fmt.Errorf("store flags: %w", err)
	}
	return res, nil
}

func containsFold(l []string, s string) bool {
	return slices.ContainsFunc(l, func(x string) bool { return strings.EqualFold(x, s) })
}

// IsCompliance reports whether access by this user must be audited.
func (t *Tenant) IsCompliance(login string) bool {
	if u, err := t.User(login); err == nil && u.Scope != nil {
		return true // auditor accounts: every access is audited
	}
	return slices.Contains(t.Roles(login), RoleCompliance)
}

// FolderByName finds a folder of a mailbox the user may read.
func (t *Tenant) FolderByName(login string, mailbox uint64, name string) (FolderInfo, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	mb := t.mailboxes[mailbox]
	if mb == nil || !t.canReadLocked(login, mb) {
		return FolderInfo{}, fmt.Errorf("archive mailbox %d: %w", mailbox, ErrNotFound)
	}
	id, ok := t.byName[folderName{mailbox, name}]
	if !ok {
		return FolderInfo{}, fmt.Errorf("folder %q: %w", name, ErrNotFound)
	}
	f := t.folders[id]
	uids, _, size := t.folderViewLocked(login, f)
	return FolderInfo{Folder: f.Folder, Messages: len(uids), UIDNext: f.uidNext, Size: size}, nil
}
