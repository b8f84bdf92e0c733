package backend

import (
	"context"
	"fmt"
	"slices"
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
	var mids []uint64
	if ok {
		mids = make([]uint64, 0, len(uids))
		for _, uid := range uids {
			if i, found := slices.BinarySearch(fs.uids, uid); found {
				mids = append(mids, fs.mids[i])
			}
		}
	}
	t.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("folder %d: %w", folder, ErrNotFound)
	}
	cur, err := t.Flags(login, folder, uids)
	if err != nil {
		return nil, err
	}
	err = t.db.Update(func(tx *buntdb.Tx) error {
		for _, uid := range uids {
			next := slices.Clone(cur[uid])
			switch op {
			case FlagsSet:
				next = slices.Clone(flags)
			case FlagsAdd:
				for _, f := range flags {
					if !containsFold(next, f) {
						next = append(next, f)
					}
				}
			case FlagsRemove:
				next = slices.DeleteFunc(next, func(f string) bool { return containsFold(flags, f) })
			}
			slices.Sort(next)
			cur[uid] = next
			if _, _, err := tx.Set(flagKey(login, folder, uid), strings.Join(next, " "), nil); err != nil {
				return err
			}
		}
		return logFlagChangesTx(tx, login, mids)
	})
	if err != nil {
		return nil, fmt.Errorf("store flags: %w", err)
	}
	return cur, nil
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
