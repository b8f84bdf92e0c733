package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tidwall/buntdb"
	"golang.org/x/crypto/argon2"
)

// actorKey is the context key of WithActor.
type actorKey struct{}

// WithActor returns a context whose administrative changes are audited as
// done by actor: a login, "provider" or "cli:<operator>". Without it the
// audit log names no actor (the system itself).
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorOf returns the actor WithActor put into ctx, or "".
func ActorOf(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// MailboxSpec describes an archive mailbox to create.
type MailboxSpec struct {
	Kind    MailboxKind
	Address string
	Aliases []string
	Owner   string
}

// CreateMailbox creates an archive mailbox with its INBOX and Sent folders.
func (t *Tenant) CreateMailbox(ctx context.Context, spec MailboxSpec) (*Mailbox, error) {
	t.touch()
	if spec.Kind == "" {
		spec.Kind = KindShared
	}
	switch spec.Kind {
	case KindUser, KindShared, KindJournal:
	default:
		return nil, fmt.Errorf("%w mailbox kind %q: want user, shared or journal", ErrInvalid, spec.Kind)
	}
	addr, err := NormalizeAddress(spec.Address)
	if err != nil {
		return nil, err
	}
	var aliases []string
	for _, a := range spec.Aliases {
		na, err := NormalizeAddress(a)
		if err != nil {
			return nil, err
		}
		if na != addr && !slices.Contains(aliases, na) {
			aliases = append(aliases, na)
		}
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.mu.RLock()
	for _, a := range append([]string{addr}, aliases...) {
		if id, ok := t.addrs[a]; ok {
			t.mu.RUnlock()
			return nil, fmt.Errorf("address %s is already used by archive mailbox %s: %w", a, t.mailboxes[id].Address, ErrExists)
		}
	}
	if q := t.Info().Quotas.Mailboxes; q > 0 && len(t.mailboxes) >= q {
		t.mu.RUnlock()
		return nil, fmt.Errorf("%w: tenant %q allows %d archive mailboxes", ErrQuota, t.Name, q)
	}
	now := time.Now().UTC()
	mb := &Mailbox{ID: t.maxMbox + 1, Kind: spec.Kind, Address: addr, Aliases: aliases, Owner: spec.Owner, Created: now}
	folders := []Folder{
		{ID: t.maxFolder + 1, Mailbox: mb.ID, Name: FolderInbox, UIDValidity: uidValidity(now, t.maxFolder+1)},
		{ID: t.maxFolder + 2, Mailbox: mb.ID, Name: FolderSent, UIDValidity: uidValidity(now, t.maxFolder+2), Special: `\Sent`},
	}
	t.mu.RUnlock()
	err = t.db.Update(func(tx *buntdb.Tx) error {
		if err := setJSON(tx, mailboxKey(mb.ID), mb); err != nil {
			return err
		}
		for i := range folders {
			if err := setJSON(tx, folderKey(folders[i].ID), &folders[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create mailbox %s: %w", addr, err)
	}
	t.mu.Lock()
	t.putMailboxLocked(mb)
	for _, f := range folders {
		t.addFolderLocked(f)
	}
	t.mu.Unlock()
	t.log.Info("archive mailbox created", "address", addr, "kind", spec.Kind, "id", mb.ID)
	return mb, nil
}

// UpdateMailbox changes a mailbox under the writer lock and persists it.
func (t *Tenant) UpdateMailbox(ctx context.Context, address string, fn func(*Mailbox) error) (*Mailbox, error) {
	t.touch()
	addr, err := NormalizeAddress(address)
	if err != nil {
		return nil, err
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.mu.RLock()
	id, ok := t.addrs[addr]
	var cp Mailbox
	if ok {
		cp = *t.mailboxes[id]
		cp.Aliases = slices.Clone(cp.Aliases)
		cp.Readers = slices.Clone(cp.Readers)
		cp.Groups = slices.Clone(cp.Groups)
	}
	t.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("archive mailbox %s: %w", addr, ErrNotFound)
	}
	if err := fn(&cp); err != nil {
		return nil, err
	}
	t.mu.RLock()
	for _, a := range cp.Addresses() {
		if other, ok := t.addrs[a]; ok && other != cp.ID {
			t.mu.RUnlock()
			return nil, fmt.Errorf("address %s is already used by archive mailbox %s: %w", a, t.mailboxes[other].Address, ErrExists)
		}
	}
	t.mu.RUnlock()
	if err := t.db.Update(func(tx *buntdb.Tx) error { return setJSON(tx, mailboxKey(cp.ID), &cp) }); err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.putMailboxLocked(&cp)
	t.mu.Unlock()
	return &cp, nil
}

// AddAlias adds an alias address to an archive mailbox.
func (t *Tenant) AddAlias(ctx context.Context, mailbox, alias string) error {
	a, err := NormalizeAddress(alias)
	if err != nil {
		return err
	}
	_, err = t.UpdateMailbox(ctx, mailbox, func(mb *Mailbox) error {
		if !slices.Contains(mb.Addresses(), a) {
			mb.Aliases = append(mb.Aliases, a)
		}
		return nil
	})
	if err == nil {
		t.Audit(ctx, ActorOf(ctx), "mailbox-alias", mailbox+" "+a)
	}
	return err
}

// Grant gives a user (login) or a group (name without @) read access.
func (t *Tenant) Grant(ctx context.Context, mailbox, who string) error {
	return t.changeGrant(ctx, mailbox, who, true)
}

// Revoke takes read access away.
func (t *Tenant) Revoke(ctx context.Context, mailbox, who string) error {
	return t.changeGrant(ctx, mailbox, who, false)
}

func (t *Tenant) changeGrant(ctx context.Context, mailbox, who string, grant bool) error {
	who = strings.ToLower(strings.TrimSpace(who))
	isUser := strings.Contains(who, "@")
	t.mu.RLock()
	_, uok := t.users[who]
	_, gok := t.groups[who]
	t.mu.RUnlock()
	if grant && isUser && !uok {
		return fmt.Errorf("user %s: %w", who, ErrNotFound)
	}
	if grant && !isUser && !gok {
		return fmt.Errorf("group %s: %w", who, ErrNotFound)
	}
	_, err := t.UpdateMailbox(ctx, mailbox, func(mb *Mailbox) error {
		if mb.Kind == KindJournal && grant {
			return fmt.Errorf("%w: journal mailboxes are read by compliance users only; give the user the compliance role", ErrInvalid)
		}
		list := &mb.Groups
		if isUser {
			list = &mb.Readers
		}
		i := slices.Index(*list, who)
		switch {
		case grant && i < 0:
			*list = append(*list, who)
		case !grant && i >= 0:
			*list = slices.Delete(*list, i, i+1)
		}
		return nil
	})
	if err == nil {
		t.Audit(ctx, ActorOf(ctx), map[bool]string{true: "grant", false: "revoke"}[grant], mailbox+" "+who)
	}
	return err
}

// journalMailbox returns the tenant's journal mailbox, creating it as
// journal@<first domain> on first use.
func (t *Tenant) journalMailbox(ctx context.Context) (uint64, error) {
	t.mu.RLock()
	for id, mb := range t.mailboxes {
		if mb.Kind == KindJournal {
			t.mu.RUnlock()
			return id, nil
		}
	}
	t.mu.RUnlock()
	mb, err := t.CreateMailbox(ctx, MailboxSpec{Kind: KindJournal, Address: "journal@" + t.Info().Domains[0]})
	if errors.Is(err, ErrExists) {
		return t.journalMailbox(ctx)
	}
	if err != nil {
		return 0, err
	}
	return mb.ID, nil
}

// Mailboxes lists every archive mailbox (administration view).
func (t *Tenant) Mailboxes() []Mailbox {
	t.touch()
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Mailbox, 0, len(t.mailboxes))
	for _, mb := range t.mailboxes {
		out = append(out, *mb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// UserSpec describes a user to create.
type UserSpec struct {
	Login    string
	Password string // empty for directory users
	Roles    []Role
	// Mailbox creates the user's own archive mailbox at their login address.
	Mailbox   bool
	Aliases   []string
	Directory string
}

// CreateUser adds a user (and, if asked, their own archive mailbox).
func (t *Tenant) CreateUser(ctx context.Context, spec UserSpec) (*User, error) {
	t.touch()
	login, err := NormalizeAddress(spec.Login)
	if err != nil {
		return nil, err
	}
	if !t.infoHasDomain(domainOf(login)) {
		return nil, fmt.Errorf("%w: domain of %s does not belong to tenant %q (add it with `mailvault domain add`)", ErrInvalid, login, t.Name)
	}
	if spec.Password == "" && spec.Directory == "" {
		return nil, fmt.Errorf("%w: a local user needs a password", ErrInvalid)
	}
	if len(spec.Roles) == 0 {
		spec.Roles = []Role{RoleReader}
	}
	u := &User{Login: login, Roles: spec.Roles, Created: time.Now().UTC(), Directory: spec.Directory}
	if spec.Password != "" {
		u.PasswordHash = HashPassword(spec.Password)
	}
	t.wmu.Lock()
	t.mu.RLock()
	_, exists := t.users[login]
	n := len(t.users)
	t.mu.RUnlock()
	if exists {
		t.wmu.Unlock()
		return nil, fmt.Errorf("user %s: %w", login, ErrExists)
	}
	if q := t.Info().Quotas.Users; q > 0 && n >= q {
		t.wmu.Unlock()
		return nil, fmt.Errorf("%w: tenant %q allows %d users", ErrQuota, t.Name, q)
	}
	err = t.db.Update(func(tx *buntdb.Tx) error { return setJSON(tx, "user:"+login, u) })
	if err == nil {
		t.mu.Lock()
		t.users[login] = u
		t.mu.Unlock()
	}
	t.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("create user %s: %w", login, err)
	}
	t.log.Info("user created", "login", login, "roles", u.Roles)
	t.Audit(ctx, ActorOf(ctx), "user-create", fmt.Sprintf("%s roles %v", login, u.Roles))
	if spec.Mailbox {
		t.mu.RLock()
		_, has := t.addrs[login]
		t.mu.RUnlock()
		if !has {
			if _, err := t.CreateMailbox(ctx, MailboxSpec{Kind: KindUser, Address: login, Aliases: spec.Aliases, Owner: login}); err != nil {
				return u, err
			}
		} else {
			// Mail archived before the user existed (auto-created mailbox)
			// becomes theirs.
			if _, err := t.UpdateMailbox(ctx, login, func(mb *Mailbox) error {
				if mb.Owner == "" {
					mb.Owner = login
				}
				return nil
			}); err != nil {
				return u, err
			}
		}
	}
	return u, nil
}

func (t *Tenant) infoHasDomain(d string) bool {
	info := t.Info()
	return info.hasDomain(d)
}

// UpdateUser changes a user under the writer lock.
func (t *Tenant) UpdateUser(ctx context.Context, login string, fn func(*User) error) error {
	t.touch()
	login = strings.ToLower(login)
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.mu.RLock()
	cur := t.users[login]
	t.mu.RUnlock()
	if cur == nil {
		return fmt.Errorf("user %s: %w", login, ErrNotFound)
	}
	cp := *cur
	cp.Roles = slices.Clone(cp.Roles)
	if err := fn(&cp); err != nil {
		return err
	}
	if err := t.db.Update(func(tx *buntdb.Tx) error { return setJSON(tx, "user:"+login, &cp) }); err != nil {
		return err
	}
	t.mu.Lock()
	t.users[login] = &cp
	t.mu.Unlock()
	return nil
}

// SetPassword sets a local user's password.
func (t *Tenant) SetPassword(ctx context.Context, login, password string) error {
	if password == "" {
		return fmt.Errorf("%w: empty password", ErrInvalid)
	}
	err := t.UpdateUser(ctx, login, func(u *User) error {
		u.PasswordHash = HashPassword(password)
		return nil
	})
	if err == nil {
		t.Audit(ctx, ActorOf(ctx), "user-password", strings.ToLower(login))
	}
	return err
}

// DeleteUser removes a user. Their archive mailbox stays: archived mail is
// never deleted with a person.
func (t *Tenant) DeleteUser(ctx context.Context, login string) error {
	login = strings.ToLower(login)
	if err := t.deleteUser(login); err != nil {
		return err
	}
	t.Audit(ctx, ActorOf(ctx), "user-delete", login)
	return nil
}

func (t *Tenant) deleteUser(login string) error {
	t.touch()
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.mu.RLock()
	_, ok := t.users[login]
	t.mu.RUnlock()
	if !ok {
		return fmt.Errorf("user %s: %w", login, ErrNotFound)
	}
	if err := t.db.Update(func(tx *buntdb.Tx) error { _, err := tx.Delete("user:" + login); return err }); err != nil {
		return err
	}
	t.mu.Lock()
	delete(t.users, login)
	t.mu.Unlock()
	t.log.Info("user deleted; archive mailbox kept", "login", login)
	return nil
}

// Users lists users, without password hashes.
func (t *Tenant) Users() []User {
	t.touch()
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]User, 0, len(t.users))
	for _, u := range t.users {
		out = append(out, withoutSecrets(u))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Login < out[j].Login })
	return out
}

// User returns one user, without the password hash.
func (t *Tenant) User(login string) (User, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	u := t.users[strings.ToLower(login)]
	if u == nil {
		return User{}, fmt.Errorf("user %s: %w", login, ErrNotFound)
	}
	return withoutSecrets(u), nil
}

// CreateGroup adds a group.
func (t *Tenant) CreateGroup(ctx context.Context, name string, roles []Role) error {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" || strings.ContainsAny(name, "@ \t") {
		return fmt.Errorf("%w group name %q", ErrInvalid, name)
	}
	err := t.putGroup(name, func(g *Group, exists bool) error {
		if exists {
			return fmt.Errorf("group %s: %w", name, ErrExists)
		}
		g.Roles = roles
		return nil
	})
	if err == nil {
		t.Audit(ctx, ActorOf(ctx), "group-create", fmt.Sprintf("%s roles %v", name, roles))
	}
	return err
}

// SetGroupMember adds (or removes) a member.
func (t *Tenant) SetGroupMember(ctx context.Context, group, login string, member bool) error {
	login = strings.ToLower(login)
	t.mu.RLock()
	_, uok := t.users[login]
	t.mu.RUnlock()
	if member && !uok {
		return fmt.Errorf("user %s: %w", login, ErrNotFound)
	}
	group = strings.ToLower(group)
	err := t.putGroup(group, func(g *Group, exists bool) error {
		if !exists {
			return fmt.Errorf("group %s: %w", group, ErrNotFound)
		}
		i := slices.Index(g.Members, login)
		if member && i < 0 {
			g.Members = append(g.Members, login)
		} else if !member && i >= 0 {
			g.Members = slices.Delete(g.Members, i, i+1)
		}
		return nil
	})
	if err == nil {
		t.Audit(ctx, ActorOf(ctx), map[bool]string{true: "group-member-add", false: "group-member-remove"}[member], group+" "+login)
	}
	return err
}

func (t *Tenant) putGroup(name string, fn func(*Group, bool) error) error {
	t.touch()
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.mu.RLock()
	cur := t.groups[name]
	t.mu.RUnlock()
	g := Group{Name: name}
	if cur != nil {
		g = *cur
		g.Members = slices.Clone(g.Members)
		g.Roles = slices.Clone(g.Roles)
	}
	if err := fn(&g, cur != nil); err != nil {
		return err
	}
	if err := t.db.Update(func(tx *buntdb.Tx) error { return setJSON(tx, "group:"+name, &g) }); err != nil {
		return err
	}
	t.mu.Lock()
	t.groups[name] = &g
	t.mu.Unlock()
	return nil
}

// Groups lists groups.
func (t *Tenant) Groups() []Group {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Group, 0, len(t.groups))
	for _, g := range t.groups {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Argon2id parameters (RFC 9106 second recommendation, lighter memory).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns an argon2id hash in the PHC string format.
func HashPassword(pw string) string {
	salt := make([]byte, 16)
	randRead(salt)
	h := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", argonMemory, argonTime, argonThreads,
		b64std.EncodeToString(salt), b64std.EncodeToString(h))
}
