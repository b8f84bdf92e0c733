package dirsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/mailvault/mailvault/backend"
)

func TestNormDN(t *testing.T) {
	same := [][2]string{
		{"CN=Person 0042,OU=People,DC=acme,DC=example", "cn=person 0042,ou=people,dc=acme,dc=example"},
		{"cn=a, ou=b ,dc=c", "cn=a,ou=b,dc=c"},
		{`cn=Smith\, John,ou=x`, `cn=Smith\2C John,ou=x`},
		{"cn=a+uid=b,dc=c", "UID=b+CN=a,dc=c"},
	}
	for _, p := range same {
		if normDN(p[0]) != normDN(p[1]) {
			t.Errorf("normDN(%q) = %q, normDN(%q) = %q: want equal", p[0], normDN(p[0]), p[1], normDN(p[1]))
		}
	}
	differ := [][2]string{
		{`cn=a\,ou=x,dc=c`, "cn=a,ou=x,dc=c"},
		{"cn=a+uid=b,dc=c", "cn=a,uid=b,dc=c"},
		{"cn=a,dc=c", "cn=b,dc=c"},
	}
	for _, p := range differ {
		if normDN(p[0]) == normDN(p[1]) {
			t.Errorf("normDN(%q) == normDN(%q) = %q: want different", p[0], p[1], normDN(p[0]))
		}
	}
}

func FuzzNormDN(f *testing.F) {
	for _, s := range []string{"CN=Person 0042,OU=People,DC=acme,DC=example", `cn=Smith\, John,ou=x`, "cn=a+uid=b,dc=c",
		"1.3.6.1.4.1.1466.0=#04024869,dc=x", "cn= spaced ,dc=x", `cn=\23hash`, "not a dn", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dn string) {
		n := normDN(dn)
		if normDN(n) != n {
			t.Fatalf("not idempotent: %q -> %q -> %q", dn, n, normDN(n))
		}
		if _, err := ldap.ParseDN(dn); err == nil && isASCII(dn) && normDN(strings.ToUpper(dn)) != n {
			if _, err := ldap.ParseDN(strings.ToUpper(dn)); err == nil {
				t.Fatalf("case matters: %q -> %q, upper -> %q", dn, n, normDN(strings.ToUpper(dn)))
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func TestStableID(t *testing.T) {
	seq := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	if got := stableID(seq, true); got != "03020100-0504-0706-0809-0a0b0c0d0e0f" {
		t.Fatalf("GUID of 00..0f = %s", got)
	}
	g := testGUID("x")
	if got := stableID(adGUIDBytes(g), true); got != g {
		t.Fatalf("GUID %s read back as %s", g, got)
	}
	if got := stableID([]byte("3F2504E0-4F89-11D3-9A0C-0305E82C3301"), false); got != "3f2504e0-4f89-11d3-9a0c-0305e82c3301" {
		t.Fatalf("text id %s", got)
	}
	if got := stableID([]byte{0xff, 0x00, 'a'}, false); got != "ff0061" {
		t.Fatalf("binary id %s", got)
	}
	if got := stableID(seq[:15], true); got != "000102030405060708090a0b0c0d0e" {
		t.Fatalf("short GUID %s", got)
	}
	if stableID(nil, true) != "" {
		t.Fatal("empty id is not empty")
	}
}

func TestProxyAddresses(t *testing.T) {
	p, a := proxyAddresses([]string{"smtp:a@x.example", "X500:/o=ACME/cn=a", "SMTP:Primary@x.example", "sip:a@x.example", " smtp: b@y.example ", "smtp:", "SMTP:second@x.example", "junk"})
	if p != "Primary@x.example" || !slices.Equal(a, []string{"a@x.example", "b@y.example", "second@x.example"}) {
		t.Fatalf("primary %q aliases %q", p, a)
	}
	if p, a := proxyAddresses(nil); p != "" || a != nil {
		t.Fatal("no values gave addresses")
	}
}

func FuzzProxyAddresses(f *testing.F) {
	f.Add("SMTP:a@x\nsmtp:b@y\nX500:/o=z")
	f.Add("sMtP:c@d\nSMTP:\n:x")
	f.Fuzz(func(t *testing.T, in string) {
		vals := strings.Split(in, "\n")
		p, aliases := proxyAddresses(vals)
		if p != "" && !slices.ContainsFunc(vals, func(v string) bool {
			return strings.HasPrefix(strings.TrimSpace(v), "SMTP:") && strings.Contains(v, p)
		}) {
			t.Fatalf("primary %q not from an SMTP: value in %q", p, vals)
		}
		for _, a := range aliases {
			if a == "" || !slices.ContainsFunc(vals, func(v string) bool {
				return strings.HasPrefix(strings.ToLower(strings.TrimSpace(v)), "smtp:") && strings.Contains(v, a)
			}) {
				t.Fatalf("alias %q not from an smtp: value in %q", a, vals)
			}
		}
	})
}

func TestRangeAttr(t *testing.T) {
	for _, c := range []struct {
		name      string
		low, high int
		last, ok  bool
	}{
		{"member;range=0-1499", 0, 1499, false, true},
		{"Member;Range=1500-*", 1500, 0, true, true},
		{"member", 0, 0, false, false},
		{"memberOf;range=0-10", 0, 0, false, false},
		{"member;range=10-5", 0, 0, false, false},
		{"member;range=-1-5", 0, 0, false, false},
		{"member;range=a-b", 0, 0, false, false},
		{"member;binary", 0, 0, false, false},
	} {
		low, high, last, ok := rangeAttr(c.name, "member")
		if low != c.low || high != c.high || last != c.last || ok != c.ok {
			t.Errorf("rangeAttr(%q) = %d %d %v %v", c.name, low, high, last, ok)
		}
	}
}

func FuzzRangeAttr(f *testing.F) {
	f.Add("member;range=0-1499")
	f.Add("member;range=1500-*")
	f.Add("member;range=99999999999999999999-*")
	f.Fuzz(func(t *testing.T, name string) {
		low, high, last, ok := rangeAttr(name, "member")
		if !ok {
			return
		}
		if low < 0 || !last && high < low {
			t.Fatalf("%q: low %d high %d last %v", name, low, high, last)
		}
		again := fmt.Sprintf("member;range=%d-%d", low, high)
		if last {
			again = fmt.Sprintf("member;range=%d-*", low)
		}
		if l2, h2, last2, ok2 := rangeAttr(again, "member"); !ok2 || l2 != low || h2 != high || last2 != last {
			t.Fatalf("%q -> %q does not read back", name, again)
		}
	})
}

// adRanges answers like Active Directory for a group with n members, 1500
// values per answer.
type adRanges struct {
	n, asked int
	broken   bool
}

func (s *adRanges) Search(req *ldap.SearchRequest) (*ldap.SearchResult, error) {
	s.asked++
	low, _, _, ok := rangeAttr(req.Attributes[0], "member")
	if !ok || s.broken {
		return &ldap.SearchResult{Entries: []*ldap.Entry{{DN: req.BaseDN}}}, nil
	}
	return &ldap.SearchResult{Entries: []*ldap.Entry{{DN: req.BaseDN, Attributes: []*ldap.EntryAttribute{s.part(low)}}}}, nil
}

func (s *adRanges) part(low int) *ldap.EntryAttribute {
	high := min(low+1499, s.n-1)
	name := fmt.Sprintf("member;range=%d-%d", low, high)
	if high == s.n-1 {
		name = fmt.Sprintf("member;range=%d-*", low)
	}
	a := &ldap.EntryAttribute{Name: name}
	for i := low; i <= high; i++ {
		a.Values = append(a.Values, fmt.Sprintf("cn=u%d,dc=x", i))
	}
	return a
}

func TestRangedValues(t *testing.T) {
	s := &adRanges{n: 3700}
	e := &ldap.Entry{DN: "cn=big,dc=x", Attributes: []*ldap.EntryAttribute{{Name: "cn", Values: []string{"big"}}, s.part(0)}}
	vals, err := rangedValues(s, e, "member")
	if err != nil || len(vals) != 3700 || s.asked != 2 || vals[3699] != "cn=u3699,dc=x" {
		t.Fatalf("%d values after %d requests: %v", len(vals), s.asked, err)
	}
	// A small group comes whole, without asking again.
	small := &ldap.Entry{DN: "cn=small,dc=x", Attributes: []*ldap.EntryAttribute{{Name: "member", Values: []string{"cn=a", "cn=b"}}}}
	if vals, err := rangedValues(s, small, "member"); err != nil || len(vals) != 2 || s.asked != 2 {
		t.Fatalf("small group: %v %v", vals, err)
	}
	// A server that stops answering the ranges fails the read.
	s.broken = true
	if _, err := rangedValues(s, e, "member"); err == nil {
		t.Fatal("incomplete member list accepted")
	}
}

func TestLoginFilter(t *testing.T) {
	ad, err := (&Profile{Preset: PresetAD}).effective()
	if err != nil {
		t.Fatal(err)
	}
	f := loginFilter(ad, `a*b(c)\@x.example`)
	want := `(&(&(objectClass=user)(!(objectClass=computer))(mail=*))(!(userAccountControl:1.2.840.113556.1.4.803:=2))(|(mail=a\2ab\28c\29\5c@x.example)(userPrincipalName=a\2ab\28c\29\5c@x.example)(proxyAddresses=smtp:a\2ab\28c\29\5c@x.example)))`
	if f != want {
		t.Fatalf("filter\n%s\nwant\n%s", f, want)
	}
	ol, _ := (&Profile{Preset: PresetOpenLDAP}).effective()
	if f := loginFilter(ol, "a@x.example"); f != "(&(&(objectClass=inetOrgPerson)(mail=*))(|(mail=a@x.example)))" {
		t.Fatalf("openldap filter %s", f)
	}
}

func FuzzLoginFilter(f *testing.F) {
	f.Add("alice@acme.example")
	f.Add(`*)(uid=*))(|(uid=*`)
	f.Add("\x00\xff()")
	ad, _ := (&Profile{Preset: PresetAD}).effective()
	parens := strings.Count(loginFilter(ad, "x"), "(")
	f.Fuzz(func(t *testing.T, login string) {
		filter := loginFilter(ad, login)
		if _, err := ldap.CompileFilter(filter); err != nil {
			t.Fatalf("login %q gives a bad filter %s: %v", login, filter, err)
		}
		// The login stays a value: it cannot open or close a filter term.
		if strings.Count(filter, "(") != parens || strings.Count(filter, ")") != parens {
			t.Fatalf("login %q changed the filter's shape: %s", login, filter)
		}
	})
}

func TestProfileValidation(t *testing.T) {
	a := newArchive(t, "acme.example", "acme-old.example")
	ctx := context.Background()
	good := adProfile("ldap://127.0.0.1:1")
	for name, change := range map[string]func(p *Profile){
		"name":            func(p *Profile) { p.Name = "Bad Name" },
		"preset":          func(p *Profile) { p.Preset = "novell" },
		"scheme":          func(p *Profile) { p.URL = "http://dc.example" },
		"starttls+ldaps":  func(p *Profile) { p.URL, p.StartTLS = "ldaps://dc.example", true },
		"ca file":         func(p *Profile) { p.CAFile = "testdata/ad-lite.schema" },
		"no bind dn":      func(p *Profile) { p.BindDN = "" },
		"base dn":         func(p *Profile) { p.BaseDN = "not a dn" },
		"user filter":     func(p *Profile) { p.UserFilter = "(objectClass=user" },
		"disabled filter": func(p *Profile) { p.DisabledFilter = "uac=2" },
		"no domains":      func(p *Profile) { p.Domains = nil },
		"foreign domain":  func(p *Profile) { p.Domains = []string{"globex.example"} },
		"policy":          func(p *Profile) { p.Gone = "delete" },
		"role":            func(p *Profile) { p.Roles = map[string][]backend.Role{"x": {"god"}} },
		"interval":        func(p *Profile) { p.Interval = Duration(10e9) },
		"first password":  func(p *Profile) { p.BindPassword = "" },
	} {
		p := good
		change(&p)
		if err := a.s.PutProfile(ctx, "acme", p); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if ps, _ := a.s.Profiles(ctx, "acme"); len(ps) != 0 {
		t.Fatalf("invalid profiles were stored: %v", ps)
	}
	if err := a.s.PutProfile(ctx, "acme", good); err != nil {
		t.Fatal(err)
	}
	// The sealed password opens only for its profile and only untouched.
	raw, _ := a.tn.GetSetting(profileKey("corp"))
	var sp storedProfile
	if err := json.Unmarshal(raw, &sp); err != nil || len(sp.SealedPassword) == 0 {
		t.Fatalf("stored profile %s: %v", raw, err)
	}
	if _, err := a.tn.Unseal(passwordPurpose("other"), sp.SealedPassword); err == nil {
		t.Fatal("the sealed password opened for another profile")
	}
	sp.SealedPassword[len(sp.SealedPassword)-1] ^= 1
	b, _ := json.Marshal(sp)
	a.tn.PutSetting(ctx, profileKey("corp"), b)
	if _, err := a.s.Run(ctx, "acme", "corp", false); err == nil {
		t.Fatal("a tampered password was used")
	}
}
