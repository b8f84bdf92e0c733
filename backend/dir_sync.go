package backend

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/buntdb"
)

// Directory sync rules. A directory (an LDAP or Active Directory server,
// read by package dirsync) is a "source" of a tenant; it feeds the domains it
// claims and no other source may feed them. Its users carry User.Directory =
// "<source>:<stable id>", so renames follow the id; their archive mailboxes
// and the groups the source created are tied to it by records under "dir:".
// The source owns what it feeds: addresses in its domains, its users' logins
// and disabled flags, its groups' members and roles. Archive mailboxes are
// never deleted, and one person's archive never passes to another directory
// identity: such collisions are reported, not resolved.

// Keys of the tenant's metadata file kept by directory sync.
const (
	dirDomainPrefix  = "dir:domain:"  // + domain -> source
	dirGroupPrefix   = "dir:group:"   // + group name -> "<source>:<id>"
	dirMailboxPrefix = "dir:mailbox:" // + mailbox id (hex) -> "<source>:<id>"
)

// GonePolicy says what a sync does with a user who left the directory or
// was disabled there.
type GonePolicy string

// Policies for departed or disabled directory users. Their archive mailbox
// always stays.
const (
	GoneKeep    GonePolicy = "keep"    // leave the user as is
	GoneDisable GonePolicy = "disable" // the user cannot log in or read
	GoneRemove  GonePolicy = "remove"  // delete the user record
)

// ParseGonePolicy checks a policy name; empty means disable.
func ParseGonePolicy(s string) (GonePolicy, error) {
	switch p := GonePolicy(strings.ToLower(strings.TrimSpace(s))); p {
	case "":
		return GoneDisable, nil
	case GoneKeep, GoneDisable, GoneRemove:
		return p, nil
	}
	return "", fmt.Errorf("%w policy %q for departed users: want keep, disable or remove", ErrInvalid, s)
}

var sourceNameRE = regexp.MustCompile(`^[a-z0-9_-]{1,63}$`)

// CheckDirectorySource validates the name of a directory source.
func CheckDirectorySource(name string) error {
	if !sourceNameRE.MatchString(name) {
		return fmt.Errorf("%w directory name %q: use 1-63 characters a-z 0-9 _ -", ErrInvalid, name)
	}
	return nil
}

// DirectoryRef splits User.Directory into the source and the stable id.
func DirectoryRef(u *User) (source, id string) {
	source, id, ok := strings.Cut(u.Directory, ":")
	if !ok {
		return "", u.Directory
	}
	return source, id
}

// ClaimDirectoryDomains makes source the only directory feeding domains,
// releasing the domains it claimed before and does not list now. A domain
// must belong to the tenant and not be fed by another source.
func (t *Tenant) ClaimDirectoryDomains(ctx context.Context, source string, domains []string) error {
	if err := CheckDirectorySource(source); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, d := range domains {
		nd, err := NormalizeDomain(d)
		if err != nil {
			return err
		}
		if !t.infoHasDomain(nd) {
			return fmt.Errorf("%w: domain %s does not belong to tenant %q", ErrInvalid, nd, t.Name)
		}
		want[nd] = true
	}
	t.touch()
	t.wmu.Lock()
	defer t.wmu.Unlock()
	err := t.db.Update(func(tx *buntdb.Tx) error {
		cur, err := dirDomainsTx(tx)
		if err != nil {
			return err
		}
		for d, src := range cur {
			if src == source && !want[d] {
				if _, err := tx.Delete(dirDomainPrefix + d); err != nil {
					return err
				}
			}
		}
		for d := range want {
			if src, ok := cur[d]; ok && src != source {
				return fmt.Errorf("domain %s is fed by directory %q: %w", d, src, ErrExists)
			}
			if _, _, err := tx.Set(dirDomainPrefix+d, source, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("claim domains for directory %q: %w", source, err)
	}
	return nil
}

// DirectoryDomains maps each domain fed by a directory to its source.
func (t *Tenant) DirectoryDomains() (map[string]string, error) {
	var out map[string]string
	err := t.db.View(func(tx *buntdb.Tx) error {
		var err error
		out, err = dirDomainsTx(tx)
		return err
	})
	return out, err
}

func dirDomainsTx(tx *buntdb.Tx) (map[string]string, error) {
	out := map[string]string{}
	err := ascendPrefix(tx, dirDomainPrefix, func(k, v string) { out[k] = v })
	return out, err
}

// ascendPrefix calls fn with the rest of every key starting with prefix.
func ascendPrefix(tx *buntdb.Tx, prefix string, fn func(rest, value string)) error {
	return tx.AscendGreaterOrEqual("", prefix, func(k, v string) bool {
		rest, ok := strings.CutPrefix(k, prefix)
		if ok {
			fn(rest, v)
		}
		return ok
	})
}

// DirectoryUser is a user as the directory has them.
type DirectoryUser struct {
	ID       string   // stable id within the source (objectGUID, entryUUID)
	Login    string   // name@domain in a domain the source feeds
	Address  string   // primary address of the archive mailbox; empty means Login
	Aliases  []string // more addresses of the same archive mailbox
	Disabled bool
}

// DirectoryGroup is a directory group with nested groups already expanded.
type DirectoryGroup struct {
	ID      string // stable id within the source; empty means the name
	Name    string
	Members []string // IDs of DirectoryUsers
	Roles   []Role
}

// DirectorySnapshot is everything one source holds, read completely: who is
// missing from it has left.
type DirectorySnapshot struct {
	Source string
	Users  []DirectoryUser
	Groups []DirectoryGroup
	Gone   GonePolicy
	// MaxGone refuses a run that would disable or remove more users than
	// this, which guards against a wrong filter or a half-empty directory;
	// 0 means no limit.
	MaxGone int
}

// DirectoryChange is one change a sync made or, in a dry run, would make.
type DirectoryChange struct {
	Action  string `json:"action"`
	Subject string `json:"subject"` // login, group or archive mailbox address
	Detail  string `json:"detail,omitempty"`
}

// DirectoryResult lists the changes of a sync and the entries it left out.
type DirectoryResult struct {
	Changes []DirectoryChange `json:"changes"`
	Skipped []string          `json:"skipped,omitempty"`
}

// SyncDirectory brings the tenant in line with a complete snapshot of one
// source: users (created, renamed, disabled or removed per policy), their
// archive mailboxes and addresses, and the source's groups. Everything is
// written in one transaction with an audit entry per change; a dry run
// computes the same result and writes nothing.
func (t *Tenant) SyncDirectory(ctx context.Context, snap *DirectorySnapshot, dryRun bool) (*DirectoryResult, error) {
	if err := CheckDirectorySource(snap.Source); err != nil {
		return nil, err
	}
	if _, err := ParseGonePolicy(string(snap.Gone)); err != nil {
		return nil, err
	}
	t.touch()
	t.wmu.Lock()
	defer t.wmu.Unlock()
	s := &dirSync{t: t, snap: snap, prefix: snap.Source + ":", now: time.Now().UTC(), res: DirectoryResult{Changes: []DirectoryChange{}}}
	if err := s.load(); err != nil {
		return nil, fmt.Errorf("directory sync %q: %w", snap.Source, err)
	}
	t.mu.RLock()
	err := s.plan()
	t.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("directory sync %q: %w", snap.Source, err)
	}
	if dryRun || len(s.res.Changes) == 0 {
		return &s.res, nil
	}
	if err := s.commit(); err != nil {
		return nil, fmt.Errorf("directory sync %q: %w", snap.Source, err)
	}
	t.log.Info("directory sync applied", "directory", snap.Source, "changes", len(s.res.Changes), "skipped", len(s.res.Skipped))
	return &s.res, nil
}

// dirEntry is one directory user during a sync.
type dirEntry struct {
	DirectoryUser
	ref     string   // "<source>:<id>"
	addrs   []string // Address then Aliases, normalised, in fed domains
	cur     string   // login of the existing user record ("" = none)
	noUser  bool     // removed by policy or never created: mailbox only
	skip    bool     // collided: left alone entirely
	mailbox uint64   // its archive mailbox, 0 = none yet
}

// owner is the login the entry's archive mailbox belongs to.
func (e *dirEntry) owner() string {
	if e.cur != "" {
		return e.cur
	}
	return e.Login
}

// dirSync plans and applies one snapshot. Planning reads the tenant's maps
// (under t.mu) and keeps every change in copies; commit writes them.
type dirSync struct {
	t      *Tenant
	snap   *DirectorySnapshot
	prefix string
	now    time.Time
	res    DirectoryResult

	domains  map[string]bool   // fed by this source
	present  map[string]bool   // refs of the snapshot's users
	owned    map[string]string // group name -> ref, for the groups of this source
	mbRef    map[uint64]string // archive mailbox -> directory ref
	refMb    map[string]uint64
	users    map[string]*User  // working copy, login -> user
	addrs    map[string]uint64 // working copy, address -> mailbox
	mboxes   map[uint64]*Mailbox
	groups   map[string]*Group
	maxMbox  uint64
	maxFold  uint64
	newMbox  int
	newUsers int

	putUsers  map[string]*User // records to write (copies)
	delUsers  map[string]bool
	renames   map[string]string // old login -> new
	putMboxes map[uint64]*Mailbox
	folders   []Folder
	putGroups map[string]*Group // nil = delete
	putOwned  map[string]string // group name -> ref
	grRenames map[string]string // old group name -> new
	putRefs   map[uint64]string // new mailbox refs
	gone      int
}

func (s *dirSync) load() error {
	s.domains, s.owned, s.mbRef, s.refMb = map[string]bool{}, map[string]string{}, map[uint64]string{}, map[string]uint64{}
	return s.t.db.View(func(tx *buntdb.Tx) error {
		err := ascendPrefix(tx, dirDomainPrefix, func(d, src string) {
			if src == s.snap.Source {
				s.domains[d] = true
			}
		})
		if err != nil {
			return err
		}
		err = ascendPrefix(tx, dirGroupPrefix, func(g, ref string) {
			if strings.HasPrefix(ref, s.prefix) {
				s.owned[g] = ref
			}
		})
		if err != nil {
			return err
		}
		return ascendPrefix(tx, dirMailboxPrefix, func(id, ref string) {
			if n, err := strconv.ParseUint(id, 16, 64); err == nil {
				s.mbRef[n] = ref
				s.refMb[ref] = n
			}
		})
	})
}

func (s *dirSync) change(action, subject, detail string) {
	s.res.Changes = append(s.res.Changes, DirectoryChange{Action: action, Subject: subject, Detail: detail})
}

func (s *dirSync) skipf(format string, args ...any) {
	s.res.Skipped = append(s.res.Skipped, fmt.Sprintf(format, args...))
}

// plan computes every change. It runs with t.wmu and t.mu (read) held.
func (s *dirSync) plan() error {
	t := s.t
	if len(s.domains) == 0 {
		return fmt.Errorf("%w: directory %q feeds no domain of tenant %q", ErrInvalid, s.snap.Source, t.Name)
	}
	s.users = maps.Clone(t.users)
	s.addrs = maps.Clone(t.addrs)
	s.mboxes, s.groups = t.mailboxes, t.groups
	s.maxMbox, s.maxFold = t.maxMbox, t.maxFolder
	s.putUsers, s.delUsers, s.renames = map[string]*User{}, map[string]bool{}, map[string]string{}
	s.putMboxes, s.putGroups, s.putRefs = map[uint64]*Mailbox{}, map[string]*Group{}, map[uint64]string{}
	s.putOwned, s.grRenames = map[string]string{}, map[string]string{}

	entries, byID := s.entries()
	s.departures(byID)
	s.renameUsers(entries)
	s.createUsers(entries)
	if s.snap.MaxGone > 0 && s.gone > s.snap.MaxGone {
		return fmt.Errorf("%w: the sync would disable or remove %d users, more than the limit of %d; check the directory and the filters, or raise the limit", ErrDenied, s.gone, s.snap.MaxGone)
	}
	if q := t.Info().Quotas.Users; q > 0 && s.newUsers > 0 && len(s.users) > q {
		return fmt.Errorf("%w: tenant %q allows %d users, the directory needs %d", ErrQuota, t.Name, q, len(s.users))
	}
	s.mailboxes(entries)
	if q := t.Info().Quotas.Mailboxes; q > 0 && s.newMbox > 0 && len(s.mboxes)+s.newMbox > q {
		return fmt.Errorf("%w: tenant %q allows %d archive mailboxes, the directory needs %d", ErrQuota, t.Name, q, len(s.mboxes)+s.newMbox)
	}
	s.syncGroups(byID)
	s.followRenames()
	return nil
}

// entries normalises the snapshot's users, dropping what cannot be used.
func (s *dirSync) entries() ([]*dirEntry, map[string]*dirEntry) {
	out := make([]*dirEntry, 0, len(s.snap.Users))
	byID := make(map[string]*dirEntry, len(s.snap.Users))
	s.present = make(map[string]bool, len(s.snap.Users))
	logins := make(map[string]bool, len(s.snap.Users))
	for _, du := range s.snap.Users {
		e := &dirEntry{DirectoryUser: du, ref: s.prefix + du.ID}
		if du.ID == "" {
			s.skipf("directory user %s: no stable id", du.Login)
			continue
		}
		if byID[du.ID] != nil {
			s.skipf("directory user %s: id %s appears twice", du.Login, du.ID)
			continue
		}
		login, err := NormalizeAddress(du.Login)
		if err != nil || !s.domains[domainOf(login)] {
			s.skipf("directory user %s (id %s): login is not an address in a domain this directory feeds", du.Login, du.ID)
			continue
		}
		if logins[login] {
			s.skipf("directory user %s (id %s): another directory entry has the same login", login, du.ID)
			continue
		}
		e.Login = login
		if e.Address == "" {
			e.Address = login
		}
		for i, a := range append([]string{e.Address}, e.Aliases...) {
			na, err := NormalizeAddress(a)
			if err != nil || !s.domains[domainOf(na)] {
				if i == 0 {
					na = login // the primary must be usable: fall back to the login
				} else {
					continue
				}
			}
			if !slices.Contains(e.addrs, na) {
				e.addrs = append(e.addrs, na)
			}
		}
		e.Address = e.addrs[0]
		logins[login] = true
		s.present[e.ref] = true
		byID[du.ID] = e
		out = append(out, e)
	}
	return out, byID
}

func (s *dirSync) editUser(login string) *User {
	if u := s.putUsers[login]; u != nil {
		return u
	}
	cp := *s.users[login]
	cp.Roles = slices.Clone(cp.Roles)
	s.users[login], s.putUsers[login] = &cp, &cp
	return &cp
}

func (s *dirSync) deleteUser(login string) {
	delete(s.users, login)
	delete(s.putUsers, login)
	s.delUsers[login] = true
}

// departures links existing users to entries and applies the policy to
// those who left or are disabled in the directory.
func (s *dirSync) departures(byID map[string]*dirEntry) {
	var mine []*User
	for _, u := range s.users {
		if strings.HasPrefix(u.Directory, s.prefix) {
			mine = append(mine, u)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].Login < mine[j].Login })
	for _, u := range mine {
		e := byID[u.Directory[len(s.prefix):]]
		if e != nil {
			e.cur = u.Login
		}
		gone := e == nil || e.Disabled
		why := "left the directory"
		if e != nil {
			why = "disabled in the directory"
		}
		switch {
		case gone && s.snap.Gone == GoneDisable && !u.Disabled:
			s.editUser(u.Login).Disabled = true
			s.change("disable-user", u.Login, why)
			s.gone++
		case gone && s.snap.Gone == GoneRemove:
			s.deleteUser(u.Login)
			s.change("remove-user", u.Login, why+"; archive mailbox kept")
			s.gone++
			if e != nil {
				e.cur, e.noUser = "", true
			}
		case !gone && s.snap.Gone == GoneDisable && u.Disabled:
			s.editUser(u.Login).Disabled = false
			s.change("enable-user", u.Login, "enabled in the directory")
		}
	}
}

// holder describes who holds a login, for collision reports.
func (s *dirSync) holder(login string) string {
	u := s.users[login]
	switch src, id := DirectoryRef(u); {
	case u.Directory == "":
		return "local user " + login
	case src == s.snap.Source:
		return "user " + login + " (directory id " + id + ", no longer in the directory)"
	default:
		return "user " + login + " of directory " + src
	}
}

// renameUsers moves users whose login changed in the directory. A login
// being vacated by another rename in the same run is taken in a later pass.
func (s *dirSync) renameUsers(entries []*dirEntry) {
	var pending []*dirEntry
	for _, e := range entries {
		if e.cur != "" && e.cur != e.Login {
			pending = append(pending, e)
		}
	}
	for progress := true; progress && len(pending) > 0; {
		progress = false
		rest := pending[:0]
		for _, e := range pending {
			if s.users[e.Login] != nil {
				rest = append(rest, e)
				continue
			}
			old := e.cur
			u := s.editUser(old)
			s.deleteUser(old)
			u.Login = e.Login
			s.users[e.Login], s.putUsers[e.Login] = u, u
			delete(s.delUsers, e.Login)
			s.renames[old] = e.Login
			for o, n := range s.renames { // a chain a -> b -> c stays one rename
				if n == old {
					s.renames[o] = e.Login
					delete(s.renames, old)
				}
			}
			e.cur = e.Login
			s.change("rename-user", e.Login, "was "+old)
			progress = true
		}
		pending = rest
	}
	for _, e := range pending {
		s.skipf("rename of %s to %s: the login is held by %s", e.cur, e.Login, s.holder(e.Login))
	}
}

// foreignArchive finds an archive mailbox owned by login that belongs to
// another directory identity than ref.
func (s *dirSync) foreignArchive(login, ref string) (uint64, bool) {
	for id, r := range s.mbRef {
		if r != ref && s.mbox(id).Owner == login {
			return id, true
		}
	}
	return 0, false
}

// createUsers adds users the tenant does not have yet. A login held by
// anyone else, or owning the archive of another directory identity, is a
// collision an administrator resolves.
func (s *dirSync) createUsers(entries []*dirEntry) {
	archiveOwners := map[string]bool{}
	for id := range s.mbRef {
		archiveOwners[s.mbox(id).Owner] = true
	}
	for _, e := range entries {
		if e.cur != "" || e.noUser {
			continue
		}
		if s.users[e.Login] != nil {
			s.skipf("directory user %s (id %s): the login is held by %s", e.Login, e.ID, s.holder(e.Login))
			e.skip = true
			continue
		}
		if archiveOwners[e.Login] {
			if id, ok := s.foreignArchive(e.Login, e.ref); ok {
				s.skipf("directory user %s (id %s): the login owns the archive mailbox of former directory identity %s; an administrator must decide", e.Login, e.ID, s.mbRef[id])
				e.skip = true
				continue
			}
		}
		if e.Disabled && s.snap.Gone == GoneRemove {
			e.noUser = true // a disabled entry (e.g. a shared mailbox) gets its archive only
			continue
		}
		u := &User{Login: e.Login, Roles: []Role{RoleReader}, Created: s.now, Directory: e.ref,
			Disabled: e.Disabled && s.snap.Gone == GoneDisable}
		s.users[e.Login], s.putUsers[e.Login] = u, u
		delete(s.delUsers, e.Login)
		e.cur = e.Login
		s.newUsers++
		s.change("create-user", e.Login, "")
	}
}

func (s *dirSync) mbox(id uint64) *Mailbox {
	if mb := s.putMboxes[id]; mb != nil {
		return mb
	}
	return s.mboxes[id]
}

func (s *dirSync) editMbox(id uint64) *Mailbox {
	if mb := s.putMboxes[id]; mb != nil {
		return mb
	}
	cp := *s.mboxes[id]
	cp.Aliases = slices.Clone(cp.Aliases)
	cp.Readers = slices.Clone(cp.Readers)
	cp.Groups = slices.Clone(cp.Groups)
	s.putMboxes[id] = &cp
	return &cp
}

// mailboxes gives every entry its archive mailbox with the directory's
// addresses: first all addresses leaving a mailbox are released, then
// mailboxes are created and addresses added, so that an address moving
// between two people moves in one run.
func (s *dirSync) mailboxes(entries []*dirEntry) {
	for _, e := range entries {
		if e.skip {
			continue
		}
		e.mailbox = s.refMb[e.ref]
		if e.mailbox == 0 || s.mbox(e.mailbox) == nil {
			e.mailbox = 0
			continue
		}
		mb := s.mbox(e.mailbox)
		for _, a := range mb.Aliases {
			if s.domains[domainOf(a)] && !slices.Contains(e.addrs, a) {
				s.removeAddress(e.mailbox, a)
			}
		}
	}
	for _, e := range entries {
		if e.skip {
			continue
		}
		if e.mailbox == 0 && !s.findMailbox(e) {
			continue
		}
		mb := s.mbox(e.mailbox)
		if mb.Owner != e.owner() {
			s.editMbox(e.mailbox).Owner = e.owner()
		}
		if mb.Address != e.Address {
			s.setPrimary(e)
		}
		for _, a := range e.addrs[1:] {
			if !slices.Contains(s.mbox(e.mailbox).Addresses(), a) && s.freeAddress(a, e) {
				mb := s.editMbox(e.mailbox)
				mb.Aliases = append(mb.Aliases, a)
				s.addrs[a] = e.mailbox
				s.change("add-address", mb.Address, a)
			}
		}
	}
}

func (s *dirSync) removeAddress(id uint64, a string) {
	mb := s.editMbox(id)
	mb.Aliases = slices.DeleteFunc(mb.Aliases, func(x string) bool { return x == a })
	delete(s.addrs, a)
	s.change("remove-address", mb.Address, a)
}

// freeAddress makes a available to e's mailbox: it is free, or an alias of
// the archive of someone who left the directory (the directory gave it to
// e). Otherwise the collision is reported.
func (s *dirSync) freeAddress(a string, e *dirEntry) bool {
	id, held := s.addrs[a]
	if !held || id == e.mailbox {
		return true
	}
	mb := s.mbox(id)
	if ref := s.mbRef[id]; strings.HasPrefix(ref, s.prefix) && mb.Address != a {
		if !s.present[ref] {
			s.removeAddress(id, a)
			return true
		}
	}
	s.skipf("address %s of %s: held by archive mailbox %s", a, e.Login, mb.Address)
	return false
}

// findMailbox finds or creates the archive mailbox of an entry that has no
// mailbox tied to its identity yet: one at its primary address that belongs
// to nobody else is adopted, else a new one is created.
func (s *dirSync) findMailbox(e *dirEntry) bool {
	id, held := s.addrs[e.Address]
	if held && s.adoptable(id, e) {
		e.mailbox = id
		s.tie(id, e.ref)
		s.change("adopt-mailbox", s.mbox(id).Address, "owner "+e.owner())
		return true
	}
	if held && !s.freeAddress(e.Address, e) {
		return false
	}
	s.maxMbox++
	s.newMbox++
	id = s.maxMbox
	s.putMboxes[id] = &Mailbox{ID: id, Kind: KindUser, Address: e.Address, Owner: e.owner(), Created: s.now}
	s.addrs[e.Address] = id
	for _, name := range []string{FolderInbox, FolderSent} {
		s.maxFold++
		f := Folder{ID: s.maxFold, Mailbox: id, Name: name, UIDValidity: uidValidity(s.now, s.maxFold)}
		if name == FolderSent {
			f.Special = `\Sent`
		}
		s.folders = append(s.folders, f)
	}
	e.mailbox = id
	s.tie(id, e.ref)
	s.change("create-mailbox", e.Address, "owner "+e.owner())
	return true
}

// adoptable reports whether an existing archive mailbox may become the
// entry's: a user mailbox tied to no directory identity, owned by nobody
// (created by journaling before the sync) or by the entry's own login with
// no other user holding that login.
func (s *dirSync) adoptable(id uint64, e *dirEntry) bool {
	mb := s.mbox(id)
	if _, tied := s.mbRef[id]; tied || mb.Kind != KindUser {
		return false
	}
	if mb.Owner == "" {
		return true
	}
	if mb.Owner != e.owner() && mb.Owner != e.Login {
		return false
	}
	u := s.users[mb.Owner]
	return u == nil || u.Directory == e.ref
}

func (s *dirSync) tie(id uint64, ref string) {
	s.mbRef[id], s.refMb[ref], s.putRefs[id] = ref, id, ref
}

// setPrimary makes the entry's primary address the mailbox's; the old one
// stays an alias if the directory still lists it or it is outside the
// domains the directory feeds.
func (s *dirSync) setPrimary(e *dirEntry) {
	if !s.freeAddress(e.Address, e) {
		return
	}
	mb := s.editMbox(e.mailbox)
	old := mb.Address
	mb.Aliases = slices.DeleteFunc(mb.Aliases, func(x string) bool { return x == e.Address })
	mb.Address = e.Address
	s.addrs[e.Address] = e.mailbox
	if slices.Contains(e.addrs, old) || !s.domains[domainOf(old)] {
		mb.Aliases = append(mb.Aliases, old)
	} else {
		delete(s.addrs, old)
	}
	s.change("set-primary", mb.Address, "was "+old)
}

// syncGroups creates, updates, renames and deletes the groups of this
// source. A group renamed in the directory keeps its grants; a group name
// held by a local group or another source is left alone.
func (s *dirSync) syncGroups(byID map[string]*dirEntry) {
	nameOf := make(map[string]string, len(s.owned)) // ref -> current name
	for name, ref := range s.owned {
		nameOf[ref] = name
	}
	seen := map[string]bool{}
	for _, dg := range s.snap.Groups {
		name := strings.ToLower(strings.TrimSpace(dg.Name))
		if name == "" || strings.ContainsAny(name, "@ \t") {
			s.skipf("directory group %q: not a valid group name", dg.Name)
			continue
		}
		if seen[name] {
			s.skipf("directory group %s: another directory group has the same name", name)
			continue
		}
		ref := s.prefix + dg.ID
		if dg.ID == "" {
			ref = s.prefix + name
		}
		cur := s.groups[name]
		old, renamed := nameOf[ref]
		renamed = renamed && old != name && !seen[old]
		if cur != nil && s.owned[name] == "" {
			s.skipf("directory group %s: a group of that name exists and does not come from this directory", name)
			if renamed {
				seen[old] = true // keep it under its old name
			}
			continue
		}
		seen[name] = true
		if renamed && cur == nil {
			cur = s.groups[old]
			s.putGroups[old] = nil
			s.grRenames[old] = name
			s.change("rename-group", name, "was "+old)
		}
		if s.owned[name] != ref {
			s.putOwned[name] = ref
		}
		members := make([]string, 0, len(dg.Members))
		for _, id := range dg.Members {
			if e := byID[id]; e != nil && e.cur != "" {
				members = append(members, e.cur)
			}
		}
		slices.Sort(members)
		members = slices.Compact(members)
		roles := slices.Clone(dg.Roles)
		slices.Sort(roles)
		roles = slices.Compact(roles)
		g := &Group{Name: name, Members: members, Roles: roles}
		if cur == nil {
			s.putGroups[name] = g
			s.change("create-group", name, fmt.Sprintf("%d members, roles %s", len(members), joinRoles(roles)))
			continue
		}
		was := make(map[string]bool, len(cur.Members))
		for _, m := range cur.Members {
			if n, ok := s.renames[m]; ok {
				m = n
			}
			was[m] = true
		}
		for _, m := range members {
			if !was[m] {
				s.change("add-member", name, m)
			}
			delete(was, m)
		}
		for _, m := range slices.Sorted(maps.Keys(was)) {
			s.change("remove-member", name, m)
		}
		curRoles := slices.Clone(cur.Roles)
		slices.Sort(curRoles)
		if !slices.Equal(curRoles, roles) {
			s.change("set-group-roles", name, joinRoles(roles))
		}
		if cur.Name != name || !slices.Equal(cur.Members, members) || !slices.Equal(curRoles, roles) {
			s.putGroups[name] = g
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.owned)) {
		if !seen[name] && s.grRenames[name] == "" && s.groups[name] != nil {
			s.putGroups[name] = nil
			s.change("delete-group", name, "no longer in the directory")
		}
	}
}

func joinRoles(roles []Role) string {
	if len(roles) == 0 {
		return "none"
	}
	parts := make([]string, len(roles))
	for i, r := range roles {
		parts[i] = string(r)
	}
	return strings.Join(parts, ",")
}

// followRenames carries renamed logins and groups into grants, mailbox
// ownership and local groups.
func (s *dirSync) followRenames() {
	if len(s.renames) == 0 && len(s.grRenames) == 0 {
		return
	}
	rename := func(l []string, renames map[string]string) ([]string, bool) {
		var changed bool
		for i, m := range l {
			if n, ok := renames[m]; ok {
				if !changed {
					l = slices.Clone(l)
					changed = true
				}
				l[i] = n
			}
		}
		return l, changed
	}
	for id, mb := range s.mboxes {
		if mb = s.mbox(id); mb == nil {
			continue
		}
		readers, rc := rename(mb.Readers, s.renames)
		groups, gc := rename(mb.Groups, s.grRenames)
		n, owner := s.renames[mb.Owner]
		if rc || gc || owner {
			mb := s.editMbox(id)
			mb.Readers, mb.Groups = readers, groups
			if owner {
				mb.Owner = n
			}
		}
	}
	for name, g := range s.groups {
		if _, planned := s.putGroups[name]; planned || s.owned[name] != "" {
			continue
		}
		if members, changed := rename(g.Members, s.renames); changed {
			s.putGroups[name] = &Group{Name: name, Members: members, Roles: g.Roles}
		}
	}
}

func dirMailboxKey(id uint64) string { return fmt.Sprintf("%s%016x", dirMailboxPrefix, id) }

// commit writes the plan in one transaction, audit entries included, and
// then applies it to the in-memory state.
func (s *dirSync) commit() error {
	t := s.t
	audit, next, undo := t.chainAudit("dirsync/"+s.snap.Source, s.now, directoryAudit(s.res.Changes))
	err := t.db.Update(func(tx *buntdb.Tx) error {
		for login := range s.delUsers {
			if _, err := tx.Delete("user:" + login); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
				return err
			}
		}
		for _, u := range s.putUsers {
			if err := setJSON(tx, "user:"+u.Login, u); err != nil {
				return err
			}
		}
		for old, n := range s.renames {
			if err := moveFlagsTx(tx, old, n); err != nil {
				return err
			}
		}
		for _, mb := range s.putMboxes {
			if err := setJSON(tx, mailboxKey(mb.ID), mb); err != nil {
				return err
			}
		}
		for i := range s.folders {
			if err := setJSON(tx, folderKey(s.folders[i].ID), &s.folders[i]); err != nil {
				return err
			}
		}
		for id, ref := range s.putRefs {
			if _, _, err := tx.Set(dirMailboxKey(id), ref, nil); err != nil {
				return err
			}
		}
		for name, g := range s.putGroups {
			if g == nil {
				for _, k := range []string{"group:" + name, dirGroupPrefix + name} {
					if _, err := tx.Delete(k); err != nil && !errors.Is(err, buntdb.ErrNotFound) {
						return err
					}
				}
				continue
			}
			if err := setJSON(tx, "group:"+name, g); err != nil {
				return err
			}
		}
		for name, ref := range s.putOwned {
			if _, _, err := tx.Set(dirGroupPrefix+name, ref, nil); err != nil {
				return err
			}
		}
		for i := range audit {
			if err := setJSON(tx, auditKey(audit[i].Seq), &audit[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		undo()
		return err
	}
	t.state.Audit, t.state.AuditHash = next.Audit, next.AuditHash
	t.mu.Lock()
	defer t.mu.Unlock()
	for login := range s.delUsers {
		delete(t.users, login)
	}
	for _, u := range s.putUsers {
		t.users[u.Login] = u
	}
	// Release every address a mailbox gives up before any is taken, as an
	// address may move between two mailboxes of this batch.
	for id := range s.putMboxes {
		if old := t.mailboxes[id]; old != nil {
			for _, a := range old.Addresses() {
				if t.addrs[a] == id {
					delete(t.addrs, a)
				}
			}
		}
	}
	for id, mb := range s.putMboxes {
		t.mailboxes[id] = mb
		for _, a := range mb.Addresses() {
			t.addrs[a] = id
		}
		t.maxMbox = max(t.maxMbox, id)
	}
	for _, f := range s.folders {
		t.addFolderLocked(f)
	}
	for name, g := range s.putGroups {
		if g == nil {
			delete(t.groups, name)
		} else {
			t.groups[name] = g
		}
	}
	return nil
}

// moveFlagsTx moves a user's per-message flags and their mod-sequences
// (modseq.go) to their new login.
func moveFlagsTx(tx *buntdb.Tx, old, n string) error {
	for _, kind := range []string{"flag:", "flagmod:", "flagmodseq:"} {
		var keys, vals []string
		err := ascendPrefix(tx, kind+old+":", func(rest, v string) {
			keys, vals = append(keys, rest), append(vals, v)
		})
		if err != nil {
			return err
		}
		for i, rest := range keys {
			if _, err := tx.Delete(kind + old + ":" + rest); err != nil {
				return err
			}
			if _, _, err := tx.Set(kind+n+":"+rest, vals[i], nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// directoryAudit is one audit entry per change of a sync.
func directoryAudit(changes []DirectoryChange) []AuditEntry {
	out := make([]AuditEntry, len(changes))
	for i, c := range changes {
		detail := c.Subject
		if c.Detail != "" {
			detail += " " + c.Detail
		}
		out[i] = AuditEntry{Action: "dirsync-" + c.Action, Detail: detail}
	}
	return out
}
