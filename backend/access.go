package backend

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/mailvault/mailvault/index"
	"github.com/mailvault/mailvault/mailparse"
	"github.com/mailvault/mailvault/store"
)

var b64std = base64.RawStdEncoding

func randRead(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
}

// checkPassword verifies an argon2id PHC string.
func checkPassword(hash, pw string) bool {
	var m, tm uint32
	var p uint8
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &tm, &p); err != nil {
		return false
	}
	salt, err1 := b64std.DecodeString(parts[4])
	want, err2 := b64std.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, tm, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// Login authenticates name@domain against the tenant of the domain,
// through the login gate: it may refuse with ErrLoginBusy or a
// ThrottledError without checking. A malformed name, an unknown domain or
// user and a wrong password all cost one argon2id check and give
// ErrAuthFailed, so none can be told apart by timing.
func (p *Provider) Login(ctx context.Context, login, password string) (*Tenant, *User, error) {
	at, err := p.gate.begin(ctx, accountName(login))
	if err != nil {
		return nil, nil, err
	}
	t, u, err := p.login(ctx, at, login, password)
	at.end(err)
	return t, u, err
}

func (p *Provider) login(ctx context.Context, at *attempt, login, password string) (*Tenant, *User, error) {
	a, err := NormalizeAddress(login)
	if err != nil {
		return nil, nil, at.fail(ctx, password)
	}
	t, err := p.TenantForAddress(ctx, a)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, at.fail(ctx, password)
	}
	if err != nil {
		return nil, nil, err
	}
	u, err := t.authenticate(ctx, at, a, password)
	if err != nil {
		return nil, nil, err
	}
	return t, u, nil
}

// accountName is what failures are counted under: the normalized address,
// or for a malformed name its lower case, cut so a flood of long names
// cannot grow the gate's maps by more than their entries.
func accountName(login string) string {
	if a, err := NormalizeAddress(login); err == nil {
		return a
	}
	login = strings.ToLower(login)
	if len(login) > 320 {
		login = login[:320]
	}
	return login
}

// authenticate checks a user's password: local users against their hash,
// directory users against the directory.
func (t *Tenant) authenticate(ctx context.Context, at *attempt, login, password string) (*User, error) {
	t.touch()
	t.mu.RLock()
	u := t.users[strings.ToLower(login)]
	if u == nil {
		// Any address of a user's own archive mailbox logs them in: their
		// mail address where the login is a UPN, and their aliases.
		if mb := t.mailboxes[t.addrs[strings.ToLower(login)]]; mb != nil && mb.Kind == KindUser && mb.Owner != "" {
			u = t.users[mb.Owner]
		}
	}
	t.mu.RUnlock()
	if u == nil || !u.Active(time.Now()) || password == "" {
		return nil, at.fail(ctx, password)
	}
	if hash, ok := appPasswordHash(ctx, u, password); ok {
		// An app password is checked alone: one hash per attempt, as
		// for the account password.
		if ok, err := at.check(ctx, hash, password); err != nil {
			return nil, err
		} else if !ok {
			return nil, ErrAuthFailed
		}
	} else if appPasswordsAllowed(ctx) && t.needsAppPassword(u) {
		// With a second factor, a mail client needs an app password:
		// the account password alone would get round the factor.
		return nil, at.fail(ctx, password)
	} else if u.Directory != "" && u.PasswordHash == "" {
		if t.p.opt.Directory == nil {
			return nil, ErrAuthFailed
		}
		if err := t.p.opt.Directory.Authenticate(ctx, t.Name, u, password); err != nil {
			return nil, err
		}
	} else if ok, err := at.check(ctx, u.PasswordHash, password); err != nil {
		return nil, err
	} else if !ok {
		return nil, ErrAuthFailed
	}
	cp := *u
	return &cp, nil
}

// Roles returns the user's roles including those from groups.
func (t *Tenant) Roles(login string) []Role {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.rolesLocked(login)
}

func (t *Tenant) rolesLocked(login string) []Role {
	var out []Role
	if u := t.users[login]; u != nil {
		out = append(out, u.Roles...)
	}
	for _, g := range t.groups {
		if slices.Contains(g.Members, login) {
			out = append(out, g.Roles...)
		}
	}
	return out
}

// canReadLocked is the one rule of who reads an archive mailbox: its owner,
// users and groups it is granted to, and for journal mailboxes compliance
// users only. Admins and the provider read nothing by virtue of their role.
func (t *Tenant) canReadLocked(login string, mb *Mailbox) bool {
	u := t.users[login]
	if u == nil || !u.Active(time.Now()) {
		return false
	}
	if u.Scope != nil {
		return u.Scope.covers(mb)
	}
	if mb.Kind == KindJournal {
		return slices.Contains(t.rolesLocked(login), RoleCompliance)
	}
	if mb.Owner == login || slices.Contains(mb.Readers, login) {
		return true
	}
	for _, g := range mb.Groups {
		if gr := t.groups[g]; gr != nil && slices.Contains(gr.Members, login) {
			return true
		}
	}
	return false
}

// MailboxView is an archive mailbox as one user sees it.
type MailboxView struct {
	Mailbox
	Own bool // the user's own archive (IMAP root, JMAP primary account)
}

// Readable lists the archive mailboxes a user may read, own first.
func (t *Tenant) Readable(login string) []MailboxView {
	t.touch()
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []MailboxView
	for _, mb := range t.mailboxes {
		if t.canReadLocked(login, mb) {
			out = append(out, MailboxView{Mailbox: *mb, Own: mb.Owner == login})
		}
	}
	slices.SortFunc(out, func(a, b MailboxView) int {
		if a.Own != b.Own {
			if a.Own {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Address, b.Address)
	})
	return out
}

// FolderInfo describes a folder with its counts.
type FolderInfo struct {
	Folder
	Messages int
	UIDNext  uint32
	Size     int64 // of the messages as IMAP presents them (MessageInfo.IMAPSize)
}

// Folders lists a mailbox's folders if the user may read it.
func (t *Tenant) Folders(login string, mailbox uint64) ([]FolderInfo, error) {
	t.touch()
	t.mu.RLock()
	defer t.mu.RUnlock()
	mb := t.mailboxes[mailbox]
	if mb == nil || !t.canReadLocked(login, mb) {
		return nil, fmt.Errorf("archive mailbox %d: %w", mailbox, ErrNotFound)
	}
	var out []FolderInfo
	for _, f := range t.sortedFolders(mailbox) {
		uids, _, size := t.folderViewLocked(login, f)
		out = append(out, FolderInfo{Folder: f.Folder, Messages: len(uids), UIDNext: f.uidNext, Size: size})
	}
	return out, nil
}

// FolderSnapshot is a folder's message list at one moment: UIDs ascending
// and the MID of each. The slices are shared; callers must not modify them.
type FolderSnapshot struct {
	FolderInfo
	UIDs []uint32
	MIDs []uint64
}

// Snapshot returns the folder's current messages if the user may read it.
func (t *Tenant) Snapshot(login string, folder uint64) (*FolderSnapshot, error) {
	t.touch()
	t.mu.RLock()
	defer t.mu.RUnlock()
	f := t.folders[folder]
	if f == nil || !t.canReadLocked(login, t.mailboxes[f.Mailbox]) {
		return nil, fmt.Errorf("folder %d: %w", folder, ErrNotFound)
	}
	// Appends never modify the visible prefix of the backing arrays, so a
	// capped slice is a consistent snapshot without copying.
	uids, mids, size := t.folderViewLocked(login, f)
	return &FolderSnapshot{
		FolderInfo: FolderInfo{Folder: f.Folder, Messages: len(uids), UIDNext: f.uidNext, Size: size},
		UIDs:       uids, MIDs: mids,
	}, nil
}

// MessageInfo is the per-message metadata FETCH needs without a blob read.
type MessageInfo struct {
	MID uint64
	// Size is the size as archived, IMAPSize the size IMAP presents: the
	// message with every bare LF as CRLF.
	Size     int64
	IMAPSize int64
	Received time.Time
	ModSeq   uint64
	SHA256   [32]byte
	ownKey   bool // see msgMeta
}

// Message returns metadata of a MID. Callers reach MIDs only through
// snapshots they were allowed to take.
func (t *Tenant) Message(mid uint64) (MessageInfo, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if mid == 0 || mid > uint64(len(t.msgs)) || t.msgs[mid-1].deleted {
		return MessageInfo{}, fmt.Errorf("message %d: %w", mid, ErrNotFound)
	}
	m := &t.msgs[mid-1]
	return MessageInfo{MID: mid, Size: m.size, IMAPSize: m.imapSize(), Received: time.Unix(m.received, 0).UTC(), ModSeq: m.modseq, SHA256: m.sum, ownKey: m.ownKey}, nil
}

// RawMessage returns the archived bytes, verified against their hash.
func (t *Tenant) RawMessage(ctx context.Context, mid uint64) ([]byte, error) {
	info, err := t.Message(mid)
	if err != nil {
		return nil, err
	}
	key := t.seal.BlobKey(info.SHA256)
	sealed, err := t.blobs.Get(ctx, key)
	if errors.Is(err, store.ErrChecksum) && sealed != nil {
		// Authentication below decides: if the sealed bytes open, only the
		// store's checksum was hit and the message is whole.
		t.log.Error("blob checksum damaged; serving the message as its content authenticates; run verify", "mid", mid, "err", err)
	} else if err != nil {
		return nil, fmt.Errorf("message %d: %w", mid, err)
	}
	raw, err := t.openBlob(mid, info.ownKey, sealed, key)
	if err != nil {
		return nil, fmt.Errorf("message %d: %w", mid, err)
	}
	return raw, nil
}

// ErrKeyGone is a message whose own data key is not in the key file: its
// blob cannot be opened by anyone.
var ErrKeyGone = errors.New("message key missing")

// openBlob opens a message's sealed blob: with the message's own data key,
// unwrapped from the key file, or with the tenant's key for a message
// archived before message keys existed.
func (t *Tenant) openBlob(mid uint64, ownKey bool, sealed []byte, key string) ([]byte, error) {
	if !ownKey {
		return t.seal.Open(sealed, []byte(key))
	}
	var wrapped [store.WrappedKeySize]byte
	ok, err := t.keys.Get(mid, wrapped[:])
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrKeyGone
	}
	var aad [20]byte
	ms, err := t.seal.UnwrapDataKey(wrapped[:], messageKeyAAD(&aad, mid))
	if err != nil {
		return nil, err
	}
	return ms.Open(sealed, []byte(key))
}

// Summary returns the parsed summary stored at ingest (envelope, MIME
// structure with offsets, headers); Text is not stored and stays empty.
func (t *Tenant) Summary(ctx context.Context, mid uint64) (*mailparse.Summary, error) {
	rec, err := t.summaryRecord(ctx, mid)
	if err != nil {
		return nil, err
	}
	var s mailparse.Summary
	_, js := splitRecord(rec)
	if err := s.UnmarshalBinary(js); err != nil {
		return nil, fmt.Errorf("summary of message %d: %w", mid, err)
	}
	return &s, nil
}

// SearchFolder runs a full-text query scoped to a folder the user may read.
func (t *Tenant) SearchFolder(ctx context.Context, login string, folder uint64, q index.Query) ([]uint32, error) {
	t.mu.RLock()
	f := t.folders[folder]
	ok := f != nil && t.canReadLocked(login, t.mailboxes[f.Mailbox])
	t.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("folder %d: %w", folder, ErrNotFound)
	}
	return t.ix.SearchFolder(ctx, folder, t.scopedQuery(login, q))
}

// Watch registers fn to be called when a folder gains messages; the
// returned function unregisters it. fn runs on the commit path: it must not
// block.
func (t *Tenant) Watch(fn func(folder uint64, count int)) (cancel func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.watchSeq++
	id := t.watchSeq
	t.notify[id] = fn
	return func() {
		t.mu.Lock()
		delete(t.notify, id)
		t.mu.Unlock()
	}
}
