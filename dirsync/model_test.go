package dirsync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/mailvault/mailvault/backend"
)

// adModel is the test's own account of an AD-like directory. Every change
// is made in the directory (over LDAP, as an administrator would) and here;
// after a sync the tenant must match the model.
type adModel struct {
	fed    []string // domains the profile feeds
	users  []*adUser
	gone   []*adUser // deleted from the directory
	groups []*adGroup
	roles  map[string]backend.Role // group cn -> role given to its members
}

type adUser struct {
	cn, ou    string
	guid      string // as Windows writes it
	sam       string
	upn, mail string
	aliases   []string // smtp: addresses in fed domains
	other     []string // proxyAddresses the archive must ignore
	password  string
	disabled  bool
	local     bool // collides with a local user: must stay unsynced
}

func (u *adUser) dn() string { return "cn=" + u.cn + "," + u.ou + "," + testSuffix }

type adGroup struct {
	cn     string
	users  []*adUser
	groups []*adGroup
}

func (g *adGroup) dn() string { return "cn=" + g.cn + ",ou=groups," + testSuffix }

func (m *adModel) isFed(addr string) bool {
	return slices.Contains(m.fed, addr[strings.LastIndexByte(addr, '@')+1:])
}

// login is the UPN if it is in a fed domain, else the mail address.
func (m *adModel) login(u *adUser) string {
	if m.isFed(u.upn) {
		return strings.ToLower(u.upn)
	}
	return strings.ToLower(u.mail)
}

// testGUID derives a GUID string from a seed.
func testGUID(seed string) string {
	h := sha256.Sum256([]byte(seed))
	x := hex.EncodeToString(h[:16])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// adGUIDBytes is the objectGUID AD stores for a GUID string: the first
// three fields little-endian, the rest as written.
func adGUIDBytes(guid string) []byte {
	raw, err := hex.DecodeString(strings.ReplaceAll(guid, "-", ""))
	if err != nil || len(raw) != 16 {
		panic("bad test GUID " + guid)
	}
	out := make([]byte, 16)
	for i := range 4 {
		out[i] = raw[3-i]
	}
	out[4], out[5], out[6], out[7] = raw[5], raw[4], raw[7], raw[6]
	copy(out[8:], raw[8:])
	return out
}

func newADUser(i int) *adUser {
	u := &adUser{
		cn: fmt.Sprintf("Person %04d", i), ou: "ou=people", guid: testGUID(fmt.Sprint("user", i)),
		sam: fmt.Sprintf("p%04d", i), mail: fmt.Sprintf("P%04d@acme.example", i),
		aliases:  []string{fmt.Sprintf("first.last%04d@acme.example", i)},
		other:    []string{fmt.Sprintf("X500:/o=ACME/ou=Exchange/cn=Recipients/cn=p%04d", i), fmt.Sprintf("smtp:p%04d@partner.example", i), fmt.Sprintf("SIP:p%04d@acme.example", i)},
		password: fmt.Sprintf("Secret-%04d!", i),
		disabled: i%97 == 5,
	}
	u.upn = u.mail
	if i%7 == 3 {
		u.upn = fmt.Sprintf("p%04d@corp.acme.local", i) // login falls back to mail
	}
	if i%10 == 0 {
		u.ou = "ou=munich,ou=people"
	}
	if i%3 == 0 {
		u.aliases = append(u.aliases, fmt.Sprintf("p%04d@acme-old.example", i))
	}
	return u
}

// newADModel builds n users, a computer, a user whose login a local user
// holds, and nested groups including a cycle.
func newADModel(n int) *adModel {
	m := &adModel{fed: []string{"acme.example", "acme-old.example"},
		roles: map[string]backend.Role{"Compliance Officers": backend.RoleCompliance, "EMEA": backend.RoleAuditor}}
	for i := range n {
		m.users = append(m.users, newADUser(i))
	}
	admin := newADUser(n)
	admin.cn, admin.sam, admin.mail, admin.upn, admin.local = "Admin Clash", "adminclash", "admin@acme.example", "admin@acme.example", true
	admin.aliases = nil
	m.users = append(m.users, admin)
	u := func(from, to int) []*adUser { return slices.Clone(m.users[min(from, n):min(to, n)]) }
	sales := &adGroup{cn: "Sales", users: u(1, 51)}
	emea := &adGroup{cn: "EMEA", users: u(51, 71), groups: []*adGroup{sales}}
	all := &adGroup{cn: "All Staff", users: append(u(0, 1), u(71, n)...), groups: []*adGroup{emea}}
	compliance := &adGroup{cn: "Compliance Officers", users: u(2, 4)}
	loopA := &adGroup{cn: "Loop A", users: u(4, 5)}
	loopB := &adGroup{cn: "Loop B", users: u(5, 6), groups: []*adGroup{loopA}}
	loopA.groups = []*adGroup{loopB}
	m.groups = []*adGroup{sales, emea, all, compliance, loopA, loopB}
	return m
}

func (m *adModel) userEntry(u *adUser) *ldifEntry {
	e := &ldifEntry{dn: u.dn()}
	e.add("objectClass", "inetOrgPerson", "user")
	e.add("cn", u.cn)
	e.add("sn", strings.Fields(u.cn)[1])
	e.add("sAMAccountName", u.sam)
	e.add("mail", u.mail)
	e.add("userPrincipalName", u.upn)
	e.add("proxyAddresses", "SMTP:"+u.mail)
	for _, a := range u.aliases {
		e.add("proxyAddresses", "smtp:"+a)
	}
	e.add("proxyAddresses", u.other...)
	uac := "512"
	if u.disabled {
		uac = "514"
	}
	e.add("userAccountControl", uac)
	e.add("objectGUID", "::"+base64.StdEncoding.EncodeToString(adGUIDBytes(u.guid)))
	e.add("userPassword", ssha(u.password))
	return e
}

func (m *adModel) groupEntry(g *adGroup) *ldifEntry {
	e := &ldifEntry{dn: g.dn()}
	e.add("objectClass", "groupOfNames", "group")
	e.add("cn", g.cn)
	e.add("objectGUID", "::"+base64.StdEncoding.EncodeToString(adGUIDBytes(testGUID("group "+g.cn))))
	for _, u := range g.users {
		e.add("member", u.dn())
	}
	for _, sub := range g.groups {
		e.add("member", sub.dn())
	}
	return e
}

func (m *adModel) ldif() []byte {
	var b bytes.Buffer
	baseLDIF(&b, "ou=munich,ou=people", "ou=computers")
	for _, u := range m.users {
		m.userEntry(u).write(&b)
	}
	// A computer account has mail but is no person: the AD filter skips it.
	pc := &ldifEntry{dn: "cn=WS0001,ou=computers," + testSuffix}
	pc.add("objectClass", "inetOrgPerson", "user", "computer")
	pc.add("cn", "WS0001")
	pc.add("sn", "WS0001")
	pc.add("mail", "ws0001@acme.example")
	pc.add("objectGUID", "::"+base64.StdEncoding.EncodeToString(adGUIDBytes(testGUID("computer"))))
	pc.write(&b)
	for _, g := range m.groups {
		m.groupEntry(g).write(&b)
	}
	return b.Bytes()
}

// transitive returns the logins of everyone in g at any depth.
func (m *adModel) transitive(g *adGroup) []string {
	seen := map[*adGroup]bool{}
	var out []string
	var walk func(*adGroup)
	walk = func(g *adGroup) {
		if seen[g] {
			return
		}
		seen[g] = true
		for _, u := range g.users {
			if !u.local {
				out = append(out, m.login(u))
			}
		}
		for _, sub := range g.groups {
			walk(sub)
		}
	}
	walk(g)
	slices.Sort(out)
	return slices.Compact(out)
}

func (m *adModel) user(cn string) *adUser {
	for _, u := range m.users {
		if u.cn == cn {
			return u
		}
	}
	panic("no user " + cn)
}

func (m *adModel) group(cn string) *adGroup {
	for _, g := range m.groups {
		if g.cn == cn {
			return g
		}
	}
	panic("no group " + cn)
}

// check compares the tenant with the model under the disable policy.
func (m *adModel) check(t *testing.T, tn *backend.Tenant) {
	t.Helper()
	users := map[string]backend.User{}
	dirUsers := 0
	for _, u := range tn.Users() {
		users[u.Login] = u
		if src, _ := backend.DirectoryRef(&u); src == "corp" {
			dirUsers++
		}
	}
	byAddr := map[string]backend.Mailbox{}
	for _, mb := range tn.Mailboxes() {
		for _, a := range mb.Addresses() {
			byAddr[a] = mb
		}
	}
	want := 0
	for _, u := range m.users {
		login := m.login(u)
		got, ok := users[login]
		if u.local {
			if !ok || got.Directory != "" {
				t.Fatalf("local user %s was taken over: %+v", login, got)
			}
			continue
		}
		want++
		if !ok || got.Directory != "corp:"+u.guid || got.Disabled != u.disabled {
			t.Fatalf("user %s (%s): got %+v, want directory id %s disabled %v", login, u.cn, got, u.guid, u.disabled)
		}
		mb, ok := byAddr[strings.ToLower(u.mail)]
		aliases := slices.Clone(mb.Aliases)
		slices.Sort(aliases)
		wantAliases := make([]string, len(u.aliases))
		for i, a := range u.aliases {
			wantAliases[i] = strings.ToLower(a)
		}
		slices.Sort(wantAliases)
		if !ok || mb.Address != strings.ToLower(u.mail) || mb.Owner != login || !slices.Equal(aliases, wantAliases) {
			t.Fatalf("archive mailbox of %s: %+v, want primary %s aliases %v", login, mb, u.mail, wantAliases)
		}
	}
	for _, u := range m.gone {
		want++
		login := m.login(u)
		if got, ok := users[login]; !ok || !got.Disabled {
			t.Fatalf("departed user %s: %+v, want disabled", login, got)
		}
		if mb, ok := byAddr[strings.ToLower(u.mail)]; !ok || mb.Owner != login {
			t.Fatalf("departed user %s lost their archive: %+v", login, mb)
		}
	}
	if dirUsers != want {
		t.Fatalf("tenant has %d directory users, the directory %d", dirUsers, want)
	}
	groups := map[string]backend.Group{}
	for _, g := range tn.Groups() {
		groups[g.Name] = g
	}
	for _, g := range m.groups {
		name := strings.ToLower(strings.ReplaceAll(g.cn, " ", "-"))
		got, ok := groups[name]
		if !ok || !slices.Equal(got.Members, m.transitive(g)) {
			t.Fatalf("group %s: %d members %.200v, want %d %.200v", name, len(got.Members), got.Members, len(m.transitive(g)), m.transitive(g))
		}
		if role, mapped := m.roles[g.cn]; mapped != slices.Contains(got.Roles, role) || !mapped && len(got.Roles) > 0 {
			t.Fatalf("group %s roles %v, mapping %v", name, got.Roles, m.roles)
		}
	}
	for cn, role := range m.roles {
		for _, login := range m.transitive(m.group(cn)) {
			if !slices.Contains(tn.Roles(login), role) {
				t.Fatalf("%s is in %s but lacks role %s", login, cn, role)
			}
		}
	}
}

// Directory changes, each made over LDAP and in the model.

func (m *adModel) rename(t *testing.T, l *ldap.Conn, u *adUser, cn, mail string) {
	t.Helper()
	old := u.dn()
	if err := l.ModifyDN(ldap.NewModifyDNRequest(old, "cn="+cn, true, "")); err != nil {
		t.Fatalf("rename %s: %v", old, err)
	}
	// The old address stays as an alias, as Exchange does on a rename.
	u.aliases = append(u.aliases, u.mail)
	u.cn, u.mail, u.upn = cn, mail, mail
	mod := ldap.NewModifyRequest(u.dn(), nil)
	mod.Replace("mail", []string{u.mail})
	mod.Replace("userPrincipalName", []string{u.upn})
	mod.Replace("proxyAddresses", m.userEntryValues(u, "proxyAddresses"))
	if err := l.Modify(mod); err != nil {
		t.Fatalf("modify %s: %v", u.dn(), err)
	}
}

func (m *adModel) userEntryValues(u *adUser, attr string) []string {
	var out []string
	for _, a := range m.userEntry(u).attrs {
		if a[0] == attr {
			out = append(out, a[1])
		}
	}
	return out
}

func (m *adModel) remove(t *testing.T, l *ldap.Conn, u *adUser) {
	t.Helper()
	if err := l.Del(ldap.NewDelRequest(u.dn(), nil)); err != nil {
		t.Fatalf("delete %s: %v", u.dn(), err)
	}
	m.users = slices.DeleteFunc(m.users, func(x *adUser) bool { return x == u })
	for _, g := range m.groups {
		g.users = slices.DeleteFunc(g.users, func(x *adUser) bool { return x == u })
	}
	m.gone = append(m.gone, u)
}

func (m *adModel) setDisabled(t *testing.T, l *ldap.Conn, u *adUser, disabled bool) {
	t.Helper()
	u.disabled = disabled
	mod := ldap.NewModifyRequest(u.dn(), nil)
	mod.Replace("userAccountControl", m.userEntryValues(u, "userAccountControl"))
	if err := l.Modify(mod); err != nil {
		t.Fatalf("modify %s: %v", u.dn(), err)
	}
}

func (m *adModel) setMembers(t *testing.T, l *ldap.Conn, g *adGroup) {
	t.Helper()
	mod := ldap.NewModifyRequest(g.dn(), nil)
	mod.Replace("member", m.userEntryValuesGroup(g))
	if err := l.Modify(mod); err != nil {
		t.Fatalf("modify %s: %v", g.dn(), err)
	}
}

func (m *adModel) userEntryValuesGroup(g *adGroup) []string {
	var out []string
	for _, a := range m.groupEntry(g).attrs {
		if a[0] == "member" {
			out = append(out, a[1])
		}
	}
	return out
}

func addEntry(t *testing.T, l *ldap.Conn, e *ldifEntry) {
	t.Helper()
	req := ldap.NewAddRequest(e.dn, nil)
	vals := map[string][]string{}
	var order []string
	for _, a := range e.attrs {
		v := a[1]
		if bin, ok := strings.CutPrefix(v, "::"); ok {
			b, _ := base64.StdEncoding.DecodeString(bin)
			v = string(b)
		}
		if _, ok := vals[a[0]]; !ok {
			order = append(order, a[0])
		}
		vals[a[0]] = append(vals[a[0]], v)
	}
	for _, name := range order {
		req.Attribute(name, vals[name])
	}
	if err := l.Add(req); err != nil {
		t.Fatalf("add %s: %v", e.dn, err)
	}
}

func (m *adModel) setAliases(t *testing.T, l *ldap.Conn, u *adUser, aliases []string) {
	t.Helper()
	u.aliases = aliases
	mod := ldap.NewModifyRequest(u.dn(), nil)
	mod.Replace("proxyAddresses", m.userEntryValues(u, "proxyAddresses"))
	if err := l.Modify(mod); err != nil {
		t.Fatalf("modify %s: %v", u.dn(), err)
	}
}

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// archive is a real mailvault provider with the Syncer as its directory
// authenticator and one tenant.
type archive struct {
	p    *backend.Provider
	tn   *backend.Tenant
	s    *Syncer
	logs *logBuffer
	dir  string
}

func newArchive(t testing.TB, domains ...string) *archive {
	t.Helper()
	a := &archive{logs: &logBuffer{}, dir: t.TempDir()}
	var w io.Writer = a.logs
	log := slog.New(slog.NewTextHandler(w, nil))
	a.s = New(log)
	p, err := backend.Open(backend.Options{DataDir: filepath.Join(a.dir, "data"), Logger: log, CommitDelay: time.Millisecond, Directory: a.s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	a.s.Attach(p)
	a.p = p
	if _, err := p.CreateTenant(context.Background(), "acme", domains, backend.Quotas{}); err != nil {
		t.Fatal(err)
	}
	if a.tn, err = p.Tenant(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *archive) loginOK(t *testing.T, login, pw string) {
	t.Helper()
	if _, u, err := a.p.Login(context.Background(), login, pw); err != nil || u.Login != strings.ToLower(login) {
		t.Fatalf("login %s: %v", login, err)
	}
}

func (a *archive) loginRefused(t *testing.T, login, pw string) {
	t.Helper()
	if _, _, err := a.p.Login(context.Background(), login, pw); !errors.Is(err, backend.ErrAuthFailed) {
		t.Fatalf("login %s with password %q: %v, want ErrAuthFailed", login, pw, err)
	}
}

func (a *archive) run(t *testing.T, profile string, dry bool) *Report {
	t.Helper()
	rep, err := a.s.Run(ctxFor(t), "acme", profile, dry)
	if err != nil {
		t.Fatalf("run %s: %v", profile, err)
	}
	return rep
}

// has reports whether a report lists a change.
func has(rep *Report, action, subject string) bool {
	return slices.ContainsFunc(rep.Changes, func(c backend.DirectoryChange) bool {
		return c.Action == action && c.Subject == subject
	})
}

func actionCounts(rep *Report) map[string]int {
	m := map[string]int{}
	for _, c := range rep.Changes {
		m[c.Action]++
	}
	return m
}

func mailboxOf(t *testing.T, tn *backend.Tenant, addr string) backend.Mailbox {
	t.Helper()
	for _, mb := range tn.Mailboxes() {
		if slices.Contains(mb.Addresses(), addr) {
			return mb
		}
	}
	t.Fatalf("no archive mailbox has %s", addr)
	return backend.Mailbox{}
}

func newSearch(base, filter string, attrs ...string) *ldap.SearchRequest {
	return ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil)
}
