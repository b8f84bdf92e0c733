package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

func dirTestTenant(t *testing.T, domains ...string) (*Provider, *Tenant) {
	t.Helper()
	dir := t.TempDir()
	p, err := Open(Options{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CommitDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ctx := context.Background()
	if _, err := p.CreateTenant(ctx, "acme", domains, Quotas{}); err != nil {
		t.Fatal(err)
	}
	tn, err := p.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	return p, tn
}

func runDirSync(t *testing.T, tn *Tenant, snap *DirectorySnapshot) *DirectoryResult {
	t.Helper()
	res, err := tn.SyncDirectory(context.Background(), snap, false)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func countActions(res *DirectoryResult) map[string]int {
	m := map[string]int{}
	for _, c := range res.Changes {
		m[c.Action]++
	}
	return m
}

func mailboxOf(t *testing.T, tn *Tenant, addr string) Mailbox {
	t.Helper()
	for _, mb := range tn.Mailboxes() {
		if slices.Contains(mb.Addresses(), addr) {
			return mb
		}
	}
	t.Fatalf("no archive mailbox has %s", addr)
	return Mailbox{}
}

func groupOf(t *testing.T, tn *Tenant, name string) *Group {
	t.Helper()
	for _, g := range tn.Groups() {
		if g.Name == name {
			return &g
		}
	}
	return nil
}

// dirPeople builds n directory users u0..u(n-1) with one alias each.
func dirPeople(n int) []DirectoryUser {
	var out []DirectoryUser
	for i := range n {
		out = append(out, DirectoryUser{
			ID: fmt.Sprintf("guid-%d", i), Login: fmt.Sprintf("U%d@Acme.example", i),
			Aliases: []string{fmt.Sprintf("user.%d@acme.example", i), fmt.Sprintf("u%d@elsewhere.example", i)},
		})
	}
	return out
}

func TestSyncDirectoryLifecycle(t *testing.T) {
	ctx := context.Background()
	p, tn := dirTestTenant(t, "acme.example", "old.example")
	snap := &DirectorySnapshot{Source: "corp", Users: dirPeople(4), Gone: GoneDisable,
		Groups: []DirectoryGroup{{Name: "Sales", Members: []string{"guid-0", "guid-1", "nobody"}}, {Name: "legal", Members: []string{"guid-2"}, Roles: []Role{RoleCompliance}}}}
	if _, err := tn.SyncDirectory(ctx, snap, false); !errors.Is(err, ErrInvalid) {
		t.Fatalf("sync without claimed domains: %v, want ErrInvalid", err)
	}
	if err := tn.ClaimDirectoryDomains(ctx, "corp", []string{"acme.example"}); err != nil {
		t.Fatal(err)
	}
	if err := tn.ClaimDirectoryDomains(ctx, "other", []string{"acme.example"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second directory on the same domain: %v, want ErrExists", err)
	}

	dry, err := tn.SyncDirectory(ctx, snap, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(tn.Users()) != 0 || len(tn.Mailboxes()) != 0 {
		t.Fatal("dry run wrote something")
	}
	res := runDirSync(t, tn, snap)
	if !slices.Equal(dry.Changes, res.Changes) {
		t.Fatalf("dry run planned\n%v\nthe run did\n%v", dry.Changes, res.Changes)
	}
	got := countActions(res)
	if got["create-user"] != 4 || got["create-mailbox"] != 4 || got["add-address"] != 4 || got["create-group"] != 2 {
		t.Fatalf("first sync: %v", got)
	}
	for i := range 4 {
		login := fmt.Sprintf("u%d@acme.example", i)
		u, err := tn.User(login)
		if err != nil {
			t.Fatal(err)
		}
		if src, id := DirectoryRef(&u); src != "corp" || id != fmt.Sprintf("guid-%d", i) || u.Disabled {
			t.Fatalf("user %s: %+v", login, u)
		}
		mb := mailboxOf(t, tn, login)
		// The alias outside the fed domains is not taken.
		if mb.Owner != login || !slices.Equal(mb.Aliases, []string{fmt.Sprintf("user.%d@acme.example", i)}) {
			t.Fatalf("mailbox of %s: %+v", login, mb)
		}
	}
	if g := groupOf(t, tn, "sales"); g == nil || !slices.Equal(g.Members, []string{"u0@acme.example", "u1@acme.example"}) {
		t.Fatalf("group sales: %+v", g)
	}
	if !slices.Contains(tn.Roles("u2@acme.example"), RoleCompliance) {
		t.Fatal("legal member lacks the compliance role of the mapped group")
	}
	if again := runDirSync(t, tn, snap); len(again.Changes) != 0 {
		t.Fatalf("unchanged re-sync changed: %v", again.Changes)
	}

	// Journaled mail to an alias lands in the owner's archive.
	raw := []byte("From: x@partner.example\r\nTo: user.1@acme.example\r\nSubject: hi\r\nMessage-ID: <a1@partner.example>\r\n\r\nbody\r\n")
	if _, err := tn.Ingest(ctx, raw, Source{Sender: "x@partner.example", Recipients: []string{"user.1@acme.example"}, Journal: true}); err != nil {
		t.Fatal(err)
	}
	inbox := folderOf(t, tn, "u1@acme.example", FolderInbox)
	if snap, err := tn.Snapshot("u1@acme.example", inbox); err != nil || snap.Messages != 1 {
		t.Fatalf("u1 INBOX after journaling to the alias: %+v %v", snap, err)
	}
	if _, err := tn.StoreFlags(ctx, "u1@acme.example", inbox, []uint32{1}, FlagsAdd, []string{`\Flagged`}); err != nil {
		t.Fatal(err)
	}
	u0mb := mailboxOf(t, tn, "u0@acme.example")
	if err := tn.Grant(ctx, u0mb.Address, "u1@acme.example"); err != nil {
		t.Fatal(err)
	}
	created, _ := tn.User("u1@acme.example")

	// Rename u1 (new login and primary address, old address kept as an
	// alias), move u0's alias to u3, drop u2 from the directory, disable u3
	// and change group membership.
	snap.Users[1].Login = "u1.new@acme.example"
	snap.Users[1].Aliases = []string{"u1@acme.example", "user.1@acme.example"}
	snap.Users[3].Aliases = append(snap.Users[3].Aliases, "user.0@acme.example")
	snap.Users[0].Aliases = nil
	snap.Users[3].Disabled = true
	snap.Users = slices.Delete(snap.Users, 2, 3)
	snap.Groups[0].Members = []string{"guid-1", "guid-3"}
	res = runDirSync(t, tn, snap)
	got = countActions(res)
	want := map[string]int{"rename-user": 1, "set-primary": 1, "disable-user": 2, "remove-address": 1, "add-address": 1, "add-member": 1, "remove-member": 2}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("second sync: %s = %d, want %d (all: %v)", k, got[k], v, res.Changes)
		}
	}
	if _, err := tn.User("u1@acme.example"); !errors.Is(err, ErrNotFound) {
		t.Fatal("old login still exists after rename")
	}
	renamed, err := tn.User("u1.new@acme.example")
	if err != nil || !renamed.Created.Equal(created.Created) || renamed.Directory != created.Directory {
		t.Fatalf("renamed user %+v (was %+v): %v", renamed, created, err)
	}
	mb := mailboxOf(t, tn, "u1.new@acme.example")
	if mb.Address != "u1.new@acme.example" || mb.Owner != "u1.new@acme.example" || !slices.Contains(mb.Aliases, "u1@acme.example") {
		t.Fatalf("renamed user's mailbox: %+v", mb)
	}
	if snap, err := tn.Snapshot("u1.new@acme.example", inbox); err != nil || snap.Messages != 1 {
		t.Fatalf("renamed user lost their archive: %+v %v", snap, err)
	}
	if fl, err := tn.Flags("u1.new@acme.example", inbox, []uint32{1}); err != nil || !slices.Contains(fl[1], `\Flagged`) {
		t.Fatalf("flags after rename: %v %v", fl, err)
	}
	if mb := mailboxOf(t, tn, "u0@acme.example"); !slices.Equal(mb.Readers, []string{"u1.new@acme.example"}) {
		t.Fatalf("grant did not follow the rename: %+v", mb.Readers)
	}
	if mb := mailboxOf(t, tn, "user.0@acme.example"); mb.Address != "u3@acme.example" {
		t.Fatalf("moved alias is on %s", mb.Address)
	}
	for _, l := range []string{"u2@acme.example", "u3@acme.example"} {
		if u, _ := tn.User(l); !u.Disabled {
			t.Fatalf("%s not disabled", l)
		}
	}
	if g := groupOf(t, tn, "sales"); !slices.Equal(g.Members, []string{"u1.new@acme.example", "u3@acme.example"}) {
		t.Fatalf("sales after change: %v", g.Members)
	}
	if mailboxOf(t, tn, "u2@acme.example").Owner != "u2@acme.example" {
		t.Fatal("departed user's archive lost its owner")
	}

	// u3 enabled again; legal disappears from the directory.
	snap.Users[2].Disabled = false
	snap.Groups = snap.Groups[:1]
	got = countActions(runDirSync(t, tn, snap))
	if got["enable-user"] != 1 || got["delete-group"] != 1 {
		t.Fatalf("third sync: %v", got)
	}
	if groupOf(t, tn, "legal") != nil || slices.Contains(tn.Roles("u2@acme.example"), RoleCompliance) {
		t.Fatal("deleted directory group still grants its role")
	}
	if bad, err := tn.VerifyAudit(); err != nil || len(bad) != 0 {
		t.Fatalf("audit chain: %v %v", bad, err)
	}
	entries, _ := tn.AuditLog(0, 0)
	if !slices.ContainsFunc(entries, func(e AuditEntry) bool {
		return e.Action == "dirsync-rename-user" && strings.Contains(e.Detail, "u1.new@acme.example")
	}) {
		t.Fatal("rename not audited")
	}

	// Everything survives a restart.
	want1 := fmt.Sprint(tn.Users(), tn.Mailboxes(), tn.Groups())
	p.Close()
	p2, err := Open(Options{DataDir: p.opt.DataDir, Logger: p.log})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	tn2, err := p2.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(tn2.Users(), tn2.Mailboxes(), tn2.Groups()); got != want1 {
		t.Fatalf("after reopen\n%s\nwant\n%s", got, want1)
	}
	if again := runDirSync(t, tn2, snap); len(again.Changes) != 0 {
		t.Fatalf("re-sync after reopen changed: %v", again.Changes)
	}
}

func folderOf(t *testing.T, tn *Tenant, login, name string) uint64 {
	t.Helper()
	for _, mb := range tn.Readable(login) {
		if mb.Own {
			f, err := tn.FolderByName(login, mb.ID, name)
			if err != nil {
				t.Fatal(err)
			}
			return f.ID
		}
	}
	t.Fatalf("%s has no own archive mailbox", login)
	return 0
}

func TestSyncDirectoryPolicies(t *testing.T) {
	ctx := context.Background()
	_, tn := dirTestTenant(t, "acme.example")
	if err := tn.ClaimDirectoryDomains(ctx, "corp", []string{"acme.example"}); err != nil {
		t.Fatal(err)
	}
	snap := &DirectorySnapshot{Source: "corp", Users: dirPeople(3), Gone: GoneRemove}
	runDirSync(t, tn, snap)

	// keep: a departed user stays as they are.
	snap.Gone = GoneKeep
	snap.Users = dirPeople(2)
	if res := runDirSync(t, tn, snap); len(res.Changes) != 0 {
		t.Fatalf("keep changed: %v", res.Changes)
	}
	if u, err := tn.User("u2@acme.example"); err != nil || u.Disabled {
		t.Fatalf("kept user: %+v %v", u, err)
	}

	// remove: the user goes, the archive stays.
	snap.Gone = GoneRemove
	if got := countActions(runDirSync(t, tn, snap)); got["remove-user"] != 1 {
		t.Fatalf("remove: %v", got)
	}
	if _, err := tn.User("u2@acme.example"); !errors.Is(err, ErrNotFound) {
		t.Fatal("removed user still there")
	}
	mb := mailboxOf(t, tn, "u2@acme.example")

	// A new identity with the departed user's login does not get their
	// archive.
	snap.Users = append(snap.Users, DirectoryUser{ID: "guid-new", Login: "u2@acme.example"})
	res := runDirSync(t, tn, snap)
	if len(res.Changes) != 0 || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0], "former directory identity") {
		t.Fatalf("new identity on an old login: %v %v", res.Changes, res.Skipped)
	}
	// The same identity coming back gets it again.
	snap.Users[2] = dirPeople(3)[2]
	got := countActions(runDirSync(t, tn, snap))
	if got["create-user"] != 1 || got["create-mailbox"] != 0 {
		t.Fatalf("returning user: %v", got)
	}
	if again := mailboxOf(t, tn, "u2@acme.example"); again.ID != mb.ID || again.Owner != "u2@acme.example" {
		t.Fatalf("returning user's mailbox %+v, was %+v", again, mb)
	}

	// A disabled entry under remove gets an archive mailbox but no login.
	snap.Users = append(snap.Users, DirectoryUser{ID: "shared-1", Login: "info@acme.example", Disabled: true})
	got = countActions(runDirSync(t, tn, snap))
	if got["create-mailbox"] != 1 || got["create-user"] != 0 {
		t.Fatalf("disabled entry: %v", got)
	}

	// A local user's login is not taken over; local groups stay local.
	if _, err := tn.CreateUser(ctx, UserSpec{Login: "boss@acme.example", Password: "pw", Mailbox: true}); err != nil {
		t.Fatal(err)
	}
	if err := tn.CreateGroup(ctx, "board", nil); err != nil {
		t.Fatal(err)
	}
	snap.Users = append(snap.Users, DirectoryUser{ID: "guid-boss", Login: "boss@acme.example"})
	snap.Groups = []DirectoryGroup{{Name: "board", Members: []string{"guid-0"}}}
	res = runDirSync(t, tn, snap)
	if len(res.Changes) != 0 || len(res.Skipped) != 2 {
		t.Fatalf("collisions: %v %v", res.Changes, res.Skipped)
	}
	if u, _ := tn.User("boss@acme.example"); u.Directory != "" {
		t.Fatal("local user was taken over")
	}

	// MaxGone stops a run that would remove too many.
	snap.Users, snap.Groups, snap.MaxGone = nil, nil, 2
	if _, err := tn.SyncDirectory(ctx, snap, false); !errors.Is(err, ErrDenied) {
		t.Fatalf("mass removal: %v, want ErrDenied", err)
	}
	if len(tn.Users()) != 4 {
		t.Fatalf("refused run changed users: %v", tn.Users())
	}
}

func TestSyncDirectoryRenameSwap(t *testing.T) {
	ctx := context.Background()
	_, tn := dirTestTenant(t, "acme.example")
	if err := tn.ClaimDirectoryDomains(ctx, "corp", []string{"acme.example"}); err != nil {
		t.Fatal(err)
	}
	snap := &DirectorySnapshot{Source: "corp", Users: dirPeople(3), Gone: GoneDisable}
	runDirSync(t, tn, snap)
	// u0 -> u9 and u1 -> u0 in one run: the second waits for the first.
	snap.Users[0].Login, snap.Users[1].Login = "u9@acme.example", "u0@acme.example"
	res := runDirSync(t, tn, snap)
	if got := countActions(res); got["rename-user"] != 2 {
		t.Fatalf("chained renames: %v %v", res.Changes, res.Skipped)
	}
	u, _ := tn.User("u0@acme.example")
	if _, id := DirectoryRef(&u); id != "guid-1" {
		t.Fatalf("u0 is now %s", id)
	}
	// A swap cannot be ordered and is reported.
	snap.Users[1].Login, snap.Users[2].Login = "u2@acme.example", "u0@acme.example"
	res = runDirSync(t, tn, snap)
	renames := 0
	for _, s := range res.Skipped {
		if strings.HasPrefix(s, "rename of ") {
			renames++
		}
	}
	if renames != 2 || countActions(res)["rename-user"] != 0 {
		t.Fatalf("swap: %v %v", res.Changes, res.Skipped)
	}
}

func TestSyncDirectoryAdoptsAndReassigns(t *testing.T) {
	ctx := context.Background()
	p, tn := dirTestTenant(t, "acme.example")
	auto := true
	if err := p.SetTenantOptions(ctx, "acme", nil, &auto); err != nil {
		t.Fatal(err)
	}
	if err := tn.ClaimDirectoryDomains(ctx, "corp", []string{"acme.example"}); err != nil {
		t.Fatal(err)
	}
	// Mail journaled before the sync created an archive for the address.
	raw := []byte("From: x@partner.example\r\nTo: new@acme.example\r\nSubject: early\r\nMessage-ID: <e1@partner.example>\r\n\r\nbody\r\n")
	if _, err := tn.Ingest(ctx, raw, Source{Sender: "x@partner.example", Recipients: []string{"new@acme.example"}, Journal: true}); err != nil {
		t.Fatal(err)
	}
	early := mailboxOf(t, tn, "new@acme.example")
	snap := &DirectorySnapshot{Source: "corp", Gone: GoneKeep, Users: []DirectoryUser{
		{ID: "g-new", Login: "new@acme.example"},
		{ID: "g-old", Login: "old@acme.example", Aliases: []string{"team@acme.example", "desk@acme.example"}},
	}}
	got := countActions(runDirSync(t, tn, snap))
	if got["adopt-mailbox"] != 1 || got["create-mailbox"] != 1 {
		t.Fatalf("first sync: %v", got)
	}
	if mb := mailboxOf(t, tn, "new@acme.example"); mb.ID != early.ID || mb.Owner != "new@acme.example" {
		t.Fatalf("adopted mailbox %+v, was %+v", mb, early)
	}
	if n := len(tn.Readable("new@acme.example")); n != 1 {
		t.Fatalf("new user reads %d mailboxes", n)
	}
	// old leaves (kept); a new person gets old's aliases, one as primary.
	snap.Users = []DirectoryUser{snap.Users[0], {ID: "g-next", Login: "next@acme.example", Address: "desk@acme.example", Aliases: []string{"team@acme.example"}}}
	res := runDirSync(t, tn, snap)
	if mb := mailboxOf(t, tn, "desk@acme.example"); mb.Owner != "next@acme.example" || mb.Address != "desk@acme.example" || !slices.Equal(mb.Aliases, []string{"team@acme.example"}) {
		t.Fatalf("next's mailbox %+v (changes %v, skipped %v)", mb, res.Changes, res.Skipped)
	}
	if mb := mailboxOf(t, tn, "old@acme.example"); len(mb.Aliases) != 0 || mb.Owner != "old@acme.example" {
		t.Fatalf("departed user's archive %+v", mb)
	}
}

func TestSyncDirectoryGroupRename(t *testing.T) {
	ctx := context.Background()
	_, tn := dirTestTenant(t, "acme.example")
	if err := tn.ClaimDirectoryDomains(ctx, "corp", []string{"acme.example"}); err != nil {
		t.Fatal(err)
	}
	snap := &DirectorySnapshot{Source: "corp", Gone: GoneDisable, Users: dirPeople(3),
		Groups: []DirectoryGroup{{ID: "g1", Name: "sales", Members: []string{"guid-0", "guid-1"}}}}
	runDirSync(t, tn, snap)
	if err := tn.Grant(ctx, "u2@acme.example", "sales"); err != nil {
		t.Fatal(err)
	}
	snap.Groups[0].Name = "sales-emea"
	snap.Groups[0].Members = []string{"guid-1"}
	res := runDirSync(t, tn, snap)
	if got := countActions(res); got["rename-group"] != 1 || got["remove-member"] != 1 || got["delete-group"] != 0 || got["create-group"] != 0 {
		t.Fatalf("group rename: %v", res.Changes)
	}
	if groupOf(t, tn, "sales") != nil {
		t.Fatal("old group name still there")
	}
	if g := groupOf(t, tn, "sales-emea"); g == nil || !slices.Equal(g.Members, []string{"u1@acme.example"}) {
		t.Fatalf("renamed group %+v", g)
	}
	if mb := mailboxOf(t, tn, "u2@acme.example"); !slices.Equal(mb.Groups, []string{"sales-emea"}) {
		t.Fatalf("grant did not follow the group rename: %v", mb.Groups)
	}
	if len(tn.Readable("u1@acme.example")) != 2 {
		t.Fatal("member of the renamed group lost the granted mailbox")
	}
	if again := runDirSync(t, tn, snap); len(again.Changes) != 0 {
		t.Fatalf("re-sync after group rename: %v", again.Changes)
	}
	// A local group's name is not taken by a renamed directory group.
	if err := tn.CreateGroup(ctx, "board", nil); err != nil {
		t.Fatal(err)
	}
	snap.Groups[0].Name = "board"
	res = runDirSync(t, tn, snap)
	if len(res.Changes) != 0 || len(res.Skipped) != 1 || groupOf(t, tn, "sales-emea") == nil {
		t.Fatalf("rename onto a local group: %v %v", res.Changes, res.Skipped)
	}
}
