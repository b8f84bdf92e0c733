package dirsync

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/mailvault/mailvault/backend"
)

// Profile tells how one directory feeds a tenant.
type Profile struct {
	Name string `json:"name"`
	// URL is ldap://host[:port] or ldaps://host[:port].
	URL string `json:"url"`
	// StartTLS upgrades an ldap:// connection before binding.
	StartTLS bool `json:"start_tls,omitempty"`
	// CAFile is a PEM file of the CAs to trust instead of the system's.
	CAFile string `json:"ca_file,omitempty"`
	// BindDN and BindPassword are the service account that reads the
	// directory. The password is only ever accepted, never shown: it is
	// stored sealed with the tenant's data key.
	BindDN       string `json:"bind_dn"`
	BindPassword string `json:"bind_password,omitempty"`
	BaseDN       string `json:"base_dn"`
	// GroupBaseDN is where groups are searched; empty means BaseDN.
	GroupBaseDN string `json:"group_base_dn,omitempty"`
	// Preset is "ad" (Active Directory) or "openldap"; it supplies the
	// filters and the attribute mapping that are not set here.
	Preset      string `json:"preset"`
	UserFilter  string `json:"user_filter,omitempty"`
	GroupFilter string `json:"group_filter,omitempty"`
	// DisabledFilter selects the disabled users among the users, e.g.
	// (userAccountControl:1.2.840.113556.1.4.803:=2) in Active Directory.
	DisabledFilter string  `json:"disabled_filter,omitempty"`
	Attributes     Mapping `json:"attributes,omitzero"`
	// Domains are the tenant domains this directory feeds; no other
	// directory may feed them.
	Domains []string `json:"domains"`
	// Roles gives the members of a directory group (by name or DN) roles.
	Roles map[string][]backend.Role `json:"roles,omitempty"`
	// Gone is the policy for users who leave the directory or are disabled
	// there: keep, disable (default) or remove. Archives always stay.
	Gone backend.GonePolicy `json:"gone,omitempty"`
	// MaxGone refuses a run that would disable or remove more users (a
	// wrong filter must not lock out a company); 0 means 500, -1 no limit.
	MaxGone int `json:"max_gone,omitempty"`
	// Interval runs the profile on a schedule; 0 runs it on demand only.
	Interval Duration `json:"interval,omitempty"`
	// PageSize is the paged-search page (Active Directory allows up to
	// 1000); 0 means 500.
	PageSize int `json:"page_size,omitempty"`
	// Timeout bounds connecting and each request; 0 means 30s.
	Timeout Duration `json:"timeout,omitempty"`
}

// Mapping names the directory attributes a sync reads. Empty fields take
// the preset's value.
type Mapping struct {
	// ID is the stable id that follows renames: objectGUID, entryUUID.
	ID string `json:"id,omitempty"`
	// Login lists attributes tried in order; the first value in a fed
	// domain is the login (e.g. userPrincipalName, then mail).
	Login []string `json:"login,omitempty"`
	// Mail holds the primary address, unless ProxyAddresses marks one.
	Mail string `json:"mail,omitempty"`
	// ProxyAddresses is an Exchange-style attribute: SMTP:primary,
	// smtp:alias.
	ProxyAddresses string `json:"proxy_addresses,omitempty"`
	// Aliases are attributes of further addresses (mailAlternateAddress).
	Aliases []string `json:"aliases,omitempty"`
	// MemberOf is a user attribute naming the user's groups.
	MemberOf string `json:"member_of,omitempty"`
	// UID is the user attribute posixGroup memberUid values refer to.
	UID string `json:"uid,omitempty"`
	// GroupName, Member and MemberUID are read from groups: the name, DNs
	// of members (users or nested groups) and uids of members.
	GroupName string `json:"group_name,omitempty"`
	Member    string `json:"member,omitempty"`
	MemberUID string `json:"member_uid,omitempty"`
}

// Presets name the built-in settings for the usual directories.
const (
	PresetAD       = "ad"
	PresetOpenLDAP = "openldap"
)

// preset holds a preset's filters and mapping.
type preset struct {
	userFilter, groupFilter, disabledFilter string
	mapping                                 Mapping
}

var presets = map[string]preset{
	PresetAD: {
		userFilter:     "(&(objectClass=user)(!(objectClass=computer))(mail=*))",
		groupFilter:    "(objectClass=group)",
		disabledFilter: "(userAccountControl:1.2.840.113556.1.4.803:=2)",
		mapping: Mapping{
			ID: "objectGUID", Login: []string{"userPrincipalName", "mail"}, Mail: "mail",
			ProxyAddresses: "proxyAddresses", MemberOf: "memberOf", GroupName: "cn", Member: "member",
		},
	},
	PresetOpenLDAP: {
		userFilter:  "(&(objectClass=inetOrgPerson)(mail=*))",
		groupFilter: "(|(objectClass=groupOfNames)(objectClass=posixGroup))",
		mapping: Mapping{
			ID: "entryUUID", Login: []string{"mail"}, Mail: "mail", Aliases: []string{"mailAlternateAddress"},
			UID: "uid", GroupName: "cn", Member: "member", MemberUID: "memberUid",
		},
	},
}

// Defaults.
const (
	defaultPageSize = 500
	maxPageSize     = 1000
	defaultTimeout  = 30 * time.Second
	defaultMaxGone  = 500
	minInterval     = time.Minute
)

// Duration is a time.Duration written as "15m" in JSON and TOML.
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the duration as Go does ("1h30m0s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads "90s", "15m", "1h".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want e.g. 30s, 15m or 1h", b)
	}
	*d = Duration(v)
	return nil
}

// effective is a profile with the preset filled in and defaults applied:
// what a run and a login use.
type effective struct {
	*Profile
	userFilter, groupFilter, disabledFilter string
	m                                       Mapping
	pageSize, maxGone                       int
	timeout                                 time.Duration
}

func (p *Profile) effective() (*effective, error) {
	ps, ok := presets[p.Preset]
	if !ok {
		return nil, fmt.Errorf("%w preset %q: want %s or %s", backend.ErrInvalid, p.Preset, PresetAD, PresetOpenLDAP)
	}
	e := &effective{Profile: p, userFilter: ps.userFilter, groupFilter: ps.groupFilter, disabledFilter: ps.disabledFilter, m: ps.mapping,
		pageSize: defaultPageSize, maxGone: defaultMaxGone, timeout: defaultTimeout}
	if p.UserFilter != "" {
		e.userFilter = p.UserFilter
	}
	if p.GroupFilter != "" {
		e.groupFilter = p.GroupFilter
	}
	if p.DisabledFilter != "" {
		e.disabledFilter = p.DisabledFilter
	}
	a := p.Attributes
	for _, f := range []struct{ dst, src *string }{
		{&e.m.ID, &a.ID}, {&e.m.Mail, &a.Mail}, {&e.m.ProxyAddresses, &a.ProxyAddresses}, {&e.m.MemberOf, &a.MemberOf},
		{&e.m.UID, &a.UID}, {&e.m.GroupName, &a.GroupName}, {&e.m.Member, &a.Member}, {&e.m.MemberUID, &a.MemberUID},
	} {
		if *f.src != "" {
			*f.dst = *f.src
		}
	}
	if len(a.Login) > 0 {
		e.m.Login = a.Login
	}
	if len(a.Aliases) > 0 {
		e.m.Aliases = a.Aliases
	}
	if p.PageSize > 0 {
		e.pageSize = min(p.PageSize, maxPageSize)
	}
	if p.MaxGone != 0 {
		e.maxGone = max(p.MaxGone, 0)
	}
	if p.Timeout > 0 {
		e.timeout = time.Duration(p.Timeout)
	}
	return e, nil
}

// guidID reports whether the id attribute holds binary GUIDs.
func (e *effective) guidID() bool { return strings.HasSuffix(strings.ToLower(e.m.ID), "guid") }

// userAttrs lists the attributes read from users.
func (e *effective) userAttrs() []string {
	attrs := []string{e.m.ID, e.m.Mail, e.m.ProxyAddresses, e.m.MemberOf, e.m.UID}
	attrs = append(attrs, e.m.Login...)
	attrs = append(attrs, e.m.Aliases...)
	return compactAttrs(attrs)
}

func compactAttrs(attrs []string) []string {
	out := attrs[:0]
	for _, a := range attrs {
		if a != "" && !slices.ContainsFunc(out, func(b string) bool { return strings.EqualFold(a, b) }) {
			out = append(out, a)
		}
	}
	return out
}

func (e *effective) groupBase() string {
	if e.GroupBaseDN != "" {
		return e.GroupBaseDN
	}
	return e.BaseDN
}

// validate checks everything that can be checked without the server.
func (p *Profile) validate() error {
	if err := backend.CheckDirectorySource(p.Name); err != nil {
		return err
	}
	e, err := p.effective()
	if err != nil {
		return err
	}
	u, err := url.Parse(p.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Hostname() == "" {
		return fmt.Errorf("%w directory URL %q: want ldap://host[:port] or ldaps://host[:port]", backend.ErrInvalid, p.URL)
	}
	if p.StartTLS && u.Scheme == "ldaps" {
		return fmt.Errorf("%w: StartTLS goes with ldap://, not ldaps://", backend.ErrInvalid)
	}
	if p.CAFile != "" {
		if _, err := loadCAs(p.CAFile); err != nil {
			return fmt.Errorf("%w: %v", backend.ErrInvalid, err)
		}
	}
	if p.BindDN == "" {
		return fmt.Errorf("%w: a bind DN is needed (directories do not show their users to anonymous clients)", backend.ErrInvalid)
	}
	for _, dn := range []struct{ what, v string }{{"bind DN", p.BindDN}, {"base DN", p.BaseDN}, {"group base DN", e.groupBase()}} {
		if _, err := ldap.ParseDN(dn.v); err != nil || dn.v == "" {
			return fmt.Errorf("%w %s %q", backend.ErrInvalid, dn.what, dn.v)
		}
	}
	for _, f := range []struct{ what, v string }{{"user filter", e.userFilter}, {"group filter", e.groupFilter}, {"disabled filter", e.disabledFilter}} {
		if f.v == "" && f.what != "disabled filter" {
			return fmt.Errorf("%w: empty %s", backend.ErrInvalid, f.what)
		}
		if _, err := ldap.CompileFilter(f.v); f.v != "" && err != nil {
			return fmt.Errorf("%w %s %q: %v", backend.ErrInvalid, f.what, f.v, err)
		}
	}
	if e.m.ID == "" || len(e.m.Login) == 0 {
		return fmt.Errorf("%w: the mapping needs an id and a login attribute", backend.ErrInvalid)
	}
	if len(p.Domains) == 0 {
		return fmt.Errorf("%w: name the domains this directory feeds", backend.ErrInvalid)
	}
	if _, err := backend.ParseGonePolicy(string(p.Gone)); err != nil {
		return err
	}
	for g, roles := range p.Roles {
		if strings.TrimSpace(g) == "" {
			return fmt.Errorf("%w: role mapping for an empty group name", backend.ErrInvalid)
		}
		for _, r := range roles {
			if _, err := backend.ParseRole(string(r)); err != nil {
				return fmt.Errorf("%w: roles of group %q: %v", backend.ErrInvalid, g, err)
			}
		}
	}
	if p.Interval != 0 && time.Duration(p.Interval) < minInterval {
		return fmt.Errorf("%w: interval %s is below %s", backend.ErrInvalid, time.Duration(p.Interval), minInterval)
	}
	if p.PageSize < 0 || p.Timeout < 0 || p.MaxGone < -1 {
		return fmt.Errorf("%w: negative page size, timeout or max_gone", backend.ErrInvalid)
	}
	return nil
}

func loadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// Keys of a tenant's settings.
func profileKey(name string) string { return "dirsync/profile/" + name }
func statusKey(name string) string  { return "dirsync/status/" + name }

const profilePrefix = "dirsync/profile/"

// passwordPurpose binds a sealed bind password to its profile.
func passwordPurpose(name string) string { return "dirsync bind password " + name }

// storedProfile is a profile as kept in the tenant's settings.
type storedProfile struct {
	Profile
	SealedPassword []byte `json:"sealed_bind_password,omitempty"`
}

// loadProfile reads a profile and opens its bind password.
func loadProfile(t *backend.Tenant, name string) (*Profile, error) {
	b, err := t.GetSetting(profileKey(name))
	if err != nil {
		return nil, fmt.Errorf("directory profile %q of tenant %q: %w", name, t.Name, err)
	}
	var sp storedProfile
	if err := json.Unmarshal(b, &sp); err != nil {
		return nil, fmt.Errorf("directory profile %q of tenant %q: %w", name, t.Name, err)
	}
	pw, err := t.Unseal(passwordPurpose(name), sp.SealedPassword)
	if err != nil {
		return nil, err
	}
	sp.Profile.BindPassword = string(pw)
	return &sp.Profile, nil
}

// saveProfile validates and stores a profile, claiming its domains. An
// empty bind password keeps the stored one.
func saveProfile(ctx context.Context, t *backend.Tenant, p Profile) error {
	if err := p.validate(); err != nil {
		return err
	}
	if p.BindPassword == "" {
		old, err := loadProfile(t, p.Name)
		if errors.Is(err, backend.ErrNotFound) {
			return fmt.Errorf("%w: a bind password is needed", backend.ErrInvalid)
		}
		if err != nil {
			return err
		}
		p.BindPassword = old.BindPassword
	}
	if err := t.ClaimDirectoryDomains(ctx, p.Name, p.Domains); err != nil {
		return err
	}
	sp := storedProfile{Profile: p, SealedPassword: t.Seal(passwordPurpose(p.Name), []byte(p.BindPassword))}
	sp.Profile.BindPassword = ""
	b, err := json.Marshal(&sp)
	if err != nil {
		return err
	}
	return t.PutSetting(ctx, profileKey(p.Name), b)
}

// listProfiles returns a tenant's profiles without their passwords.
func listProfiles(t *backend.Tenant) ([]Profile, error) {
	_, vals, err := t.Settings(profilePrefix)
	if err != nil {
		return nil, err
	}
	out := make([]Profile, 0, len(vals))
	for _, v := range vals {
		var sp storedProfile
		if err := json.Unmarshal(v, &sp); err != nil {
			return nil, fmt.Errorf("directory profiles of tenant %q: %w", t.Name, err)
		}
		out = append(out, sp.Profile)
	}
	return out, nil
}
