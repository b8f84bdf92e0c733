package dirsync

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/mailvault/mailvault/backend"
)

type posixUser struct {
	uid, mail string
	alt       []string // mailAlternateAddress and further mail values
	password  string
}

func posixEntry(u posixUser, n int) *ldifEntry {
	e := &ldifEntry{dn: "uid=" + u.uid + ",ou=people," + testSuffix}
	e.add("objectClass", "inetOrgPerson", "posixAccount", "mailRecipient")
	e.add("uid", u.uid)
	e.add("cn", strings.ToUpper(u.uid[:1])+u.uid[1:])
	e.add("sn", "Example")
	e.add("mail", u.mail)
	e.add("mail", u.alt[:1]...)
	e.add("mailAlternateAddress", u.alt[1:]...)
	e.add("uidNumber", fmt.Sprint(1000+n))
	e.add("gidNumber", "1000")
	e.add("homeDirectory", "/home/"+u.uid)
	e.add("userPassword", ssha(u.password))
	return e
}

// TestOpenLDAPSync feeds a tenant from an OpenLDAP directory (entryUUID,
// mail/mailAlternateAddress, groupOfNames with nesting, posixGroup with
// memberUid) over StartTLS and ldaps:// with a private CA, under the remove
// policy.
func TestOpenLDAPSync(t *testing.T) {
	people := []posixUser{
		{"alice", "alice@acme.example", []string{"a.smith@acme.example", "alice.smith@acme.example"}, "alice pw"},
		{"bob", "bob@acme.example", []string{"b.jones@acme.example", "bobby@acme.example"}, "bob pw"},
		{"carol", "carol@acme.example", []string{"c.white@acme.example", "carol@elsewhere.example"}, "carol pw"},
		{"dave", "dave@acme.example", []string{"d.black@acme.example", "dave.black@acme.example"}, "dave pw"},
		{"erin", "erin@acme.example", []string{"e.green@acme.example", "erin.green@acme.example"}, "erin pw"},
	}
	var b bytes.Buffer
	baseLDIF(&b)
	for i, u := range people {
		posixEntry(u, i).write(&b)
	}
	devs := &ldifEntry{dn: "cn=devs,ou=groups," + testSuffix}
	devs.add("objectClass", "groupOfNames")
	devs.add("cn", "devs")
	devs.add("member", "uid=alice,ou=people,"+testSuffix, "uid=bob,ou=people,"+testSuffix)
	devs.write(&b)
	eng := &ldifEntry{dn: "cn=eng,ou=groups," + testSuffix}
	eng.add("objectClass", "groupOfNames")
	eng.add("cn", "eng")
	eng.add("member", "cn=devs,ou=groups,"+testSuffix, "UID=Erin, OU=People, DC=acme, DC=example") // spelled differently
	eng.write(&b)
	ops := &ldifEntry{dn: "cn=ops,ou=groups," + testSuffix}
	ops.add("objectClass", "posixGroup")
	ops.add("cn", "ops")
	ops.add("gidNumber", "2000")
	ops.add("memberUid", "carol", "Dave", "nobody")
	ops.write(&b)
	sl := startSlapd(t, b.Bytes(), true)

	a := newArchive(t, "acme.example")
	ctx := ctxFor(t)
	prof := Profile{Name: "ldap", URL: sl.url(), StartTLS: true, CAFile: sl.caFile, BindDN: testSvcDN, BindPassword: testSvcPW,
		BaseDN: testSuffix, Preset: PresetOpenLDAP, Domains: []string{"acme.example"}, Gone: backend.GoneRemove,
		Roles: map[string][]backend.Role{"ops": {backend.RoleAdmin}}}
	if err := a.s.PutProfile(ctx, "acme", prof); err != nil {
		t.Fatal(err)
	}
	rep := a.run(t, "ldap", false)
	if got := actionCounts(rep); got["create-user"] != 5 || got["create-mailbox"] != 5 || got["create-group"] != 3 {
		t.Fatalf("first sync: %v\n%v %v", got, rep.Changes, rep.Skipped)
	}
	tn := a.tn
	ids := map[string]string{}
	for _, u := range people {
		got, err := tn.User(u.mail)
		if err != nil {
			t.Fatal(err)
		}
		_, id := backend.DirectoryRef(&got)
		ids[u.uid] = id
		mb := mailboxOf(t, tn, u.mail)
		var want []string
		for _, a := range u.alt {
			if strings.HasSuffix(a, "@acme.example") {
				want = append(want, a)
			}
		}
		if mb.Owner != u.mail || !slices.Equal(mb.Aliases, want) {
			t.Fatalf("mailbox of %s: %+v, want aliases %v", u.uid, mb, want)
		}
		a.loginOK(t, u.mail, u.password)
	}
	// entryUUID is the id: read it back independently.
	l := sl.admin()
	defer l.Close()
	res, err := l.Search(ldap.NewSearchRequest(testSuffix, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(uid=alice)", []string{"entryUUID"}, nil))
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("entryUUID") != ids["alice"] {
		t.Fatalf("alice's id %q, directory: %v %v", ids["alice"], res, err)
	}
	wantGroups := map[string][]string{
		"devs": {"alice@acme.example", "bob@acme.example"},
		"eng":  {"alice@acme.example", "bob@acme.example", "erin@acme.example"},
		"ops":  {"carol@acme.example", "dave@acme.example"},
	}
	checkGroups := func() {
		t.Helper()
		for _, g := range tn.Groups() {
			if !slices.Equal(g.Members, wantGroups[g.Name]) {
				t.Fatalf("group %s: %v, want %v", g.Name, g.Members, wantGroups[g.Name])
			}
		}
	}
	checkGroups()
	if !slices.Contains(tn.Roles("dave@acme.example"), backend.RoleAdmin) {
		t.Fatal("posixGroup member lacks the mapped role")
	}

	// Rename bob (new RDN and mail), delete dave, then add a new entry
	// with dave's old address.
	if err := l.ModifyDN(ldap.NewModifyDNRequest("uid=bob,ou=people,"+testSuffix, "uid=robert", true, "")); err != nil {
		t.Fatal(err)
	}
	mod := ldap.NewModifyRequest("uid=robert,ou=people,"+testSuffix, nil)
	mod.Replace("mail", []string{"robert@acme.example", "bob@acme.example"})
	if err := l.Modify(mod); err != nil {
		t.Fatal(err)
	}
	if err := l.Del(ldap.NewDelRequest("uid=dave,ou=people,"+testSuffix, nil)); err != nil {
		t.Fatal(err)
	}
	rep = a.run(t, "ldap", false)
	for _, c := range [][2]string{{"rename-user", "robert@acme.example"}, {"remove-user", "dave@acme.example"}, {"remove-member", "ops"}} {
		if !has(rep, c[0], c[1]) {
			t.Fatalf("second sync lacks %v: %v", c, rep.Changes)
		}
	}
	if got, _ := tn.User("robert@acme.example"); !strings.HasSuffix(got.Directory, ids["bob"]) {
		t.Fatalf("robert is %+v, want bob's id %s", got, ids["bob"])
	}
	wantGroups["devs"] = []string{"alice@acme.example", "robert@acme.example"}
	wantGroups["eng"] = []string{"alice@acme.example", "erin@acme.example", "robert@acme.example"}
	wantGroups["ops"] = []string{"carol@acme.example"}
	checkGroups()
	a.loginOK(t, "robert@acme.example", "bob pw")
	a.loginRefused(t, "dave@acme.example", "dave pw")
	if mb := mailboxOf(t, tn, "dave@acme.example"); mb.Owner != "dave@acme.example" {
		t.Fatalf("dave's archive: %+v", mb)
	}
	newDave := posixEntry(posixUser{"dave2", "dave@acme.example", []string{"dave2@acme.example"}, "new dave pw"}, 9)
	addEntry(t, l, newDave)
	rep = a.run(t, "ldap", false)
	if len(rep.Changes) != 0 || len(rep.Skipped) != 1 || !strings.Contains(rep.Skipped[0], "former directory identity") {
		t.Fatalf("new person on a departed user's address: %v %v", rep.Changes, rep.Skipped)
	}
	a.loginRefused(t, "dave@acme.example", "new dave pw")

	// ldaps:// with the CA file works; without it the certificate is not
	// trusted and the run says so.
	prof.URL, prof.StartTLS = "ldaps://"+sl.tlsAddr, false
	if err := a.s.PutProfile(ctx, "acme", prof); err != nil {
		t.Fatal(err)
	}
	if rep := a.run(t, "ldap", false); len(rep.Changes) != 0 {
		t.Fatalf("over ldaps: %v", rep.Changes)
	}
	a.loginOK(t, "alice@acme.example", "alice pw")
	prof.CAFile = ""
	if err := a.s.PutProfile(ctx, "acme", prof); err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.Run(ctx, "acme", "ldap", false); !errors.Is(err, errUnreachable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
}
