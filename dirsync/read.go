package dirsync

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/mailvault/mailvault/backend"
)

// ReadStats counts what a run read from the directory.
type ReadStats struct {
	Users    int `json:"users"`
	Disabled int `json:"disabled"`
	Groups   int `json:"groups"`
	Pages    int `json:"pages"`
}

// reader turns one complete read of a directory into a snapshot.
type reader struct {
	e        *effective
	c        *conn
	domains  map[string]bool
	guid     bool
	users    []backend.DirectoryUser
	userDN   map[string]int32 // normalised DN -> index in users
	byUID    map[string]int32
	memberOf map[int32][]string // user -> normalised DNs of direct groups
	groups   []dirGroup
	groupDN  map[string]int
	stats    ReadStats
	warnings []string
}

type dirGroup struct {
	id, dn     string
	name       string
	memberDNs  []string // normalised
	memberUIDs []string
	users      []int32 // direct user members found through memberOf
}

// read connects, binds as the service account and reads users, disabled
// users and groups completely. Any failure fails the whole read: a partial
// directory would look like mass departure.
func read(ctx context.Context, e *effective) (*backend.DirectorySnapshot, *ReadStats, []string, error) {
	c, err := dial(ctx, e)
	if err != nil {
		return nil, nil, nil, err
	}
	defer c.close()
	if err := c.bind(e.BindDN, e.BindPassword); err != nil {
		return nil, nil, nil, err
	}
	r := &reader{e: e, c: c, domains: map[string]bool{}, guid: e.guidID(),
		userDN: map[string]int32{}, byUID: map[string]int32{}, memberOf: map[int32][]string{}, groupDN: map[string]int{}}
	for _, d := range e.Domains {
		r.domains[strings.ToLower(d)] = true
	}
	if err := c.search(ctx, e.BaseDN, e.userFilter, e.userAttrs(), r.addUser); err != nil {
		return nil, nil, nil, err
	}
	if e.disabledFilter != "" {
		err := c.search(ctx, e.BaseDN, "(&"+e.userFilter+e.disabledFilter+")", []string{"1.1"}, func(en *ldap.Entry) error {
			if i, ok := r.userDN[normDN(en.DN)]; ok && !r.users[i].Disabled {
				r.users[i].Disabled = true
				r.stats.Disabled++
			}
			return nil
		})
		if err != nil {
			return nil, nil, nil, err
		}
	}
	attrs := compactAttrs([]string{e.m.ID, e.m.GroupName, e.m.Member, e.m.MemberUID})
	if err := c.search(ctx, e.groupBase(), e.groupFilter, attrs, r.addGroup); err != nil {
		return nil, nil, nil, err
	}
	r.stats.Users, r.stats.Groups, r.stats.Pages = len(r.users), len(r.groups), c.pages
	snap := &backend.DirectorySnapshot{Source: e.Name, Users: r.users, Groups: r.resolveGroups(), Gone: e.Gone, MaxGone: e.maxGone}
	if snap.Gone == "" {
		snap.Gone = backend.GoneDisable
	}
	slices.SortFunc(snap.Users, func(a, b backend.DirectoryUser) int { return strings.Compare(a.ID, b.ID) })
	return snap, &r.stats, r.warnings, nil
}

func (r *reader) warnf(format string, args ...any) {
	r.warnings = append(r.warnings, fmt.Sprintf(format, args...))
}

// addUser maps one user entry.
func (r *reader) addUser(en *ldap.Entry) error {
	m := &r.e.m
	id := stableID(en.GetEqualFoldRawAttributeValue(m.ID), r.guid)
	if id == "" {
		r.warnf("directory entry %s: no %s, left out", en.DN, m.ID)
		return nil
	}
	u := backend.DirectoryUser{ID: id}
login:
	for _, attr := range m.Login {
		for _, v := range en.GetEqualFoldAttributeValues(attr) {
			if u.Login == "" {
				u.Login = v // reported by backend if no value fits
			}
			if at := strings.LastIndexByte(v, '@'); at >= 0 && r.domains[strings.ToLower(v[at+1:])] {
				u.Login = v
				break login
			}
		}
	}
	mails := en.GetEqualFoldAttributeValues(m.Mail)
	if m.ProxyAddresses != "" {
		u.Address, u.Aliases = proxyAddresses(en.GetEqualFoldAttributeValues(m.ProxyAddresses))
	}
	if u.Address == "" && len(mails) > 0 {
		u.Address, mails = mails[0], mails[1:]
	}
	u.Aliases = append(u.Aliases, mails...)
	for _, a := range m.Aliases {
		u.Aliases = append(u.Aliases, en.GetEqualFoldAttributeValues(a)...)
	}
	i := int32(len(r.users))
	r.users = append(r.users, u)
	r.userDN[normDN(en.DN)] = i
	if m.UID != "" {
		for _, v := range en.GetEqualFoldAttributeValues(m.UID) {
			r.byUID[strings.ToLower(v)] = i
		}
	}
	if m.MemberOf != "" {
		if dns := en.GetEqualFoldAttributeValues(m.MemberOf); len(dns) > 0 {
			norm := make([]string, len(dns))
			for j, dn := range dns {
				norm[j] = normDN(dn)
			}
			r.memberOf[i] = norm
		}
	}
	return nil
}

// addGroup reads one group entry, with all parts of a ranged member list.
func (r *reader) addGroup(en *ldap.Entry) error {
	m := &r.e.m
	g := dirGroup{dn: normDN(en.DN), name: groupName(en.GetEqualFoldAttributeValue(m.GroupName))}
	if g.id = stableID(en.GetEqualFoldRawAttributeValue(m.ID), r.guid); g.id == "" {
		g.id = g.dn
	}
	if g.name == "" {
		r.warnf("directory group %s: no %s, left out", en.DN, m.GroupName)
		return nil
	}
	if m.Member != "" {
		members, err := rangedValues(r.c.l, en, m.Member)
		if err != nil {
			if r.c.broken(err) {
				err = fmt.Errorf("%w: %v", errUnreachable, err)
			}
			return err
		}
		g.memberDNs = make([]string, len(members))
		for i, dn := range members {
			g.memberDNs[i] = normDN(dn)
		}
	}
	if m.MemberUID != "" {
		g.memberUIDs = en.GetEqualFoldAttributeValues(m.MemberUID)
	}
	r.groupDN[g.dn] = len(r.groups)
	r.groups = append(r.groups, g)
	return nil
}

// resolveGroups expands nested groups: a group's members are the users
// reachable through member values, memberUid values and users' memberOf,
// at any depth; cycles end where they close.
func (r *reader) resolveGroups() []backend.DirectoryGroup {
	for u, dns := range r.memberOf {
		for _, dn := range dns {
			if gi, ok := r.groupDN[dn]; ok {
				r.groups[gi].users = append(r.groups[gi].users, u)
			}
		}
	}
	roles := r.groupRoles()
	out := make([]backend.DirectoryGroup, 0, len(r.groups))
	// Stamps instead of per-group sets: one slice each, reused.
	userSeen := make([]int, len(r.users))
	groupSeen := make([]int, len(r.groups))
	var queue []int
	for gi := range r.groups {
		stamp := gi + 1
		var ids []string
		addUser := func(ui int32) {
			if userSeen[ui] != stamp {
				userSeen[ui] = stamp
				ids = append(ids, r.users[ui].ID)
			}
		}
		queue = append(queue[:0], gi)
		groupSeen[gi] = stamp
		for len(queue) > 0 {
			g := &r.groups[queue[0]]
			queue = queue[1:]
			for _, dn := range g.memberDNs {
				if ui, ok := r.userDN[dn]; ok {
					addUser(ui)
				} else if gj, ok := r.groupDN[dn]; ok && groupSeen[gj] != stamp {
					groupSeen[gj] = stamp
					queue = append(queue, gj)
				}
			}
			for _, uid := range g.memberUIDs {
				if ui, ok := r.byUID[strings.ToLower(uid)]; ok {
					addUser(ui)
				}
			}
			for _, ui := range g.users {
				addUser(ui)
			}
		}
		out = append(out, backend.DirectoryGroup{ID: r.groups[gi].id, Name: r.groups[gi].name, Members: ids, Roles: roles[gi]})
	}
	return out
}

// groupRoles maps the profile's role mapping (keys are group names or
// DNs) to groups.
func (r *reader) groupRoles() map[int][]backend.Role {
	out := map[int][]backend.Role{}
	for key, roles := range r.e.Roles {
		found := false
		dn, name := normDN(key), groupName(key)
		for gi := range r.groups {
			if r.groups[gi].dn == dn || r.groups[gi].name == name {
				out[gi] = append(out[gi], roles...)
				found = true
			}
		}
		if !found {
			r.warnf("role mapping for group %q: no such group among the directory's groups", key)
		}
	}
	return out
}
