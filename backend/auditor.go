package backend

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/index"
)

// AuditorScope is what an auditor account may read: the messages of some
// archive mailboxes (or all) received in [Since, Until), until Expires.
// Every access is audited, and the account cannot change anything.
type AuditorScope struct {
	Mailboxes []string  `json:"mailboxes,omitempty"` // primary addresses
	All       bool      `json:"all,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	Until     time.Time `json:"until,omitzero"`
	Expires   time.Time `json:"expires"`
	CreatedBy string    `json:"created_by"`
}

func (s *AuditorScope) covers(mb *Mailbox) bool {
	return mb != nil && (s.All || slices.Contains(s.Mailboxes, mb.Address))
}

// bounds is the period in unix seconds, [lo, hi).
func (s *AuditorScope) bounds() (lo, hi int64) {
	lo, hi = -1<<63, 1<<63-1
	if !s.Since.IsZero() {
		lo = s.Since.Unix()
	}
	if !s.Until.IsZero() {
		hi = s.Until.Unix()
	}
	return lo, hi
}

// AuditorSpec describes an auditor account to create.
type AuditorSpec struct {
	Login, Password string
	Mailboxes       []string // addresses or aliases of archive mailboxes
	All             bool
	Since, Until    time.Time
	Expires         time.Time
}

// CreateAuditor creates an auditor account. by is the tenant user asking,
// who must be an admin or compliance user; empty for the provider. The
// creation is audited with the actor of ctx.
func (t *Tenant) CreateAuditor(ctx context.Context, by string, spec AuditorSpec) (*User, error) {
	if by != "" && !t.MayExport(by) {
		return nil, fmt.Errorf("%w: auditor accounts are created by admin or compliance users", ErrDenied)
	}
	login, err := NormalizeAddress(spec.Login)
	if err != nil {
		return nil, err
	}
	if !t.infoHasDomain(domainOf(login)) {
		return nil, fmt.Errorf("%w: domain of %s does not belong to tenant %q", ErrInvalid, login, t.Name)
	}
	if spec.Password == "" {
		return nil, fmt.Errorf("%w: an auditor account needs a password", ErrInvalid)
	}
	if !spec.Expires.After(time.Now()) {
		return nil, fmt.Errorf("%w: an auditor account needs an expiry date in the future", ErrInvalid)
	}
	if !spec.Since.IsZero() && !spec.Until.IsZero() && !spec.Until.After(spec.Since) {
		return nil, fmt.Errorf("%w: until must be after since", ErrInvalid)
	}
	if !spec.All && len(spec.Mailboxes) == 0 {
		return nil, fmt.Errorf("%w: name the archive mailboxes of the scope, or all", ErrInvalid)
	}
	scope := &AuditorScope{All: spec.All, Since: spec.Since.UTC(), Until: spec.Until.UTC(), Expires: spec.Expires.UTC(), CreatedBy: ActorOf(ctx)}
	t.mu.RLock()
	for _, a := range spec.Mailboxes {
		addr, err := NormalizeAddress(a)
		mb := t.mailboxes[t.addrs[addr]]
		if err != nil || mb == nil {
			t.mu.RUnlock()
			return nil, fmt.Errorf("archive mailbox %s: %w", a, ErrNotFound)
		}
		if !slices.Contains(scope.Mailboxes, mb.Address) {
			scope.Mailboxes = append(scope.Mailboxes, mb.Address)
		}
	}
	t.mu.RUnlock()
	u := &User{Login: login, Roles: []Role{RoleAuditor}, PasswordHash: HashPassword(spec.Password), Created: time.Now().UTC(), Scope: scope}
	t.wmu.Lock()
	t.mu.RLock()
	_, exists := t.users[login]
	t.mu.RUnlock()
	if exists {
		t.wmu.Unlock()
		return nil, fmt.Errorf("user %s: %w", login, ErrExists)
	}
	err = t.db.Update(func(tx *buntdb.Tx) error { return setJSON(tx, "user:"+login, u) })
	if err == nil {
		t.mu.Lock()
		t.users[login] = u
		t.mu.Unlock()
	}
	t.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("create auditor %s: %w", login, err)
	}
	what := "mailboxes=" + strings.Join(scope.Mailboxes, ",")
	if scope.All {
		what = "mailboxes=*"
	}
	t.Audit(ctx, ActorOf(ctx), "auditor-create", fmt.Sprintf("%s %s since=%s until=%s expires=%s", login, what,
		fmtDay(scope.Since), fmtDay(scope.Until), scope.Expires.Format(time.RFC3339)))
	cp := *u
	cp.PasswordHash = ""
	return &cp, nil
}

func fmtDay(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// periodLocked returns the period an auditor account is limited to; ok is
// false for every other user, who sees folders whole.
func (t *Tenant) periodLocked(login string) (lo, hi int64, ok bool) {
	u := t.users[login]
	if u == nil || u.Scope == nil {
		return 0, 0, false
	}
	lo, hi = u.Scope.bounds()
	return lo, hi, true
}

// inPeriodLocked reports whether message mid was received in [lo, hi).
func (t *Tenant) inPeriodLocked(mid uint64, lo, hi int64) bool {
	r := t.msgs[mid-1].received
	return r >= lo && r < hi
}

// scopedQuery limits a search of an auditor account to its period.
func (t *Tenant) scopedQuery(login string, q index.Query) index.Query {
	t.mu.RLock()
	u := t.users[login]
	t.mu.RUnlock()
	if u == nil || u.Scope == nil {
		return q
	}
	return index.And(q, index.ReceivedRange(u.Scope.Since, u.Scope.Until))
}

// folderViewLocked is the part of a folder a user sees: all of it, or for
// an auditor account the messages of its period (copied).
func (t *Tenant) folderViewLocked(login string, f *folderState) (uids []uint32, mids []uint64, size int64) {
	n := len(f.uids)
	lo, hi, scoped := t.periodLocked(login)
	if !scoped {
		return f.uids[:n:n], f.mids[:n:n], f.size
	}
	for i, mid := range f.mids[:n] {
		if t.inPeriodLocked(mid, lo, hi) {
			uids = append(uids, f.uids[i])
			mids = append(mids, mid)
			size += t.msgs[mid-1].size
		}
	}
	return uids, mids, size
}
