package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/buntdb"
)

// JournalAccess says who may deliver journal copies to a tenant over SMTP:
// holders of a journal credential (SMTP AUTH) and servers in an allowed
// network (Exchange Online and many MTAs cannot authenticate). With neither
// configured nobody may: an archive must not take mail planted by anyone.
type JournalAccess struct {
	Credentials []JournalCredential `json:"credentials,omitempty"`
	Networks    []string            `json:"networks,omitempty"` // CIDR prefixes, canonical form
}

// JournalCredential is a service login for journal delivery only; it reads
// nothing. Its login is an address of one of the tenant's domains, so that
// the login alone finds the tenant.
type JournalCredential struct {
	Login        string    `json:"login"`
	PasswordHash string    `json:"password_hash,omitempty"`
	Created      time.Time `json:"created"`
}

const journalAccessKey = "journal:access"

// JournalAccess returns the tenant's journal access list, without password
// hashes.
func (t *Tenant) JournalAccess() (JournalAccess, error) {
	a, err := t.journalAccess()
	for i := range a.Credentials {
		a.Credentials[i].PasswordHash = ""
	}
	return a, err
}

func (t *Tenant) journalAccess() (JournalAccess, error) {
	var a JournalAccess
	err := t.db.View(func(tx *buntdb.Tx) error {
		v, err := tx.Get(journalAccessKey)
		if errors.Is(err, buntdb.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return json.Unmarshal([]byte(v), &a)
	})
	if err != nil {
		return JournalAccess{}, fmt.Errorf("read journal access of tenant %q: %w", t.Name, err)
	}
	return a, nil
}

func (t *Tenant) updateJournalAccess(fn func(*JournalAccess) error) error {
	t.touch()
	t.wmu.Lock()
	defer t.wmu.Unlock()
	a, err := t.journalAccess()
	if err != nil {
		return err
	}
	if err := fn(&a); err != nil {
		return err
	}
	err = t.db.Update(func(tx *buntdb.Tx) error { return setJSON(tx, journalAccessKey, &a) })
	if err != nil {
		return fmt.Errorf("write journal access of tenant %q: %w", t.Name, err)
	}
	return nil
}

// SetJournalCredential creates or replaces a journal login.
func (t *Tenant) SetJournalCredential(ctx context.Context, login, password string) error {
	l, err := NormalizeAddress(login)
	if err != nil {
		return err
	}
	if !t.infoHasDomain(domainOf(l)) {
		return fmt.Errorf("%w journal login %s: the domain must be one of tenant %q's", ErrInvalid, l, t.Name)
	}
	if len(password) < 12 {
		return fmt.Errorf("%w: a journal password needs at least 12 characters", ErrInvalid)
	}
	cred := JournalCredential{Login: l, PasswordHash: HashPassword(password), Created: time.Now().UTC()}
	err = t.updateJournalAccess(func(a *JournalAccess) error {
		a.Credentials = slices.DeleteFunc(a.Credentials, func(c JournalCredential) bool { return c.Login == l })
		a.Credentials = append(a.Credentials, cred)
		return nil
	})
	if err == nil {
		t.Audit(ctx, ActorOf(ctx), "journal-credential-set", l)
	}
	return err
}

// DeleteJournalCredential removes a journal login.
func (t *Tenant) DeleteJournalCredential(ctx context.Context, login string) error {
	l := strings.ToLower(strings.TrimSpace(login))
	err := t.updateJournalAccess(func(a *JournalAccess) error {
		n := len(a.Credentials)
		a.Credentials = slices.DeleteFunc(a.Credentials, func(c JournalCredential) bool { return c.Login == l })
		if len(a.Credentials) == n {
			return fmt.Errorf("journal login %s: %w", l, ErrNotFound)
		}
		return nil
	})
	if err == nil {
		t.Audit(ctx, ActorOf(ctx), "journal-credential-delete", l)
	}
	return err
}

// AllowJournalNetwork lets servers in network (CIDR or single address)
// deliver journal copies without authenticating.
func (t *Tenant) AllowJournalNetwork(ctx context.Context, network string) error {
	pfx, err := parseNetwork(network)
	if err != nil {
		return err
	}
	err = t.updateJournalAccess(func(a *JournalAccess) error {
		if !slices.Contains(a.Networks, pfx.String()) {
			a.Networks = append(a.Networks, pfx.String())
		}
		return nil
	})
	if err == nil {
		t.Audit(ctx, ActorOf(ctx), "journal-network-allow", pfx.String())
	}
	return err
}

// DisallowJournalNetwork removes a network from the allow-list.
func (t *Tenant) DisallowJournalNetwork(ctx context.Context, network string) error {
	pfx, err := parseNetwork(network)
	if err != nil {
		return err
	}
	err = t.updateJournalAccess(func(a *JournalAccess) error {
		i := slices.Index(a.Networks, pfx.String())
		if i < 0 {
			return fmt.Errorf("journal network %s: %w", pfx, ErrNotFound)
		}
		a.Networks = slices.Delete(a.Networks, i, i+1)
		return nil
	})
	if err == nil {
		t.Audit(ctx, ActorOf(ctx), "journal-network-disallow", pfx.String())
	}
	return err
}

func parseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%w network %q: want an address or CIDR prefix", ErrInvalid, s)
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w network %q: want an address or CIDR prefix", ErrInvalid, s)
	}
	return p.Masked(), nil
}

// JournalNetworkAllowed reports whether ip may deliver journal copies
// without authenticating.
func (t *Tenant) JournalNetworkAllowed(ip netip.Addr) (bool, error) {
	a, err := t.journalAccess()
	if err != nil {
		return false, err
	}
	ip = ip.Unmap()
	for _, n := range a.Networks {
		if p, err := netip.ParsePrefix(n); err == nil && p.Contains(ip) {
			return true, nil
		}
	}
	return false, nil
}

// JournalAuthConfigured reports whether the tenant has journal logins, so
// that an unauthenticated sender is told to authenticate rather than that
// it is refused.
func (t *Tenant) JournalAuthConfigured() (bool, error) {
	a, err := t.journalAccess()
	return len(a.Credentials) > 0, err
}

// JournalLogin checks a journal credential and returns its tenant, through
// the login gate as Login. Wrong logins and passwords give ErrAuthFailed,
// in the same time.
func (p *Provider) JournalLogin(ctx context.Context, login, password string) (*Tenant, error) {
	at, err := p.gate.begin(ctx, accountName(login))
	if err != nil {
		return nil, err
	}
	t, err := p.journalLogin(ctx, at, login, password)
	at.end(err)
	return t, err
}

func (p *Provider) journalLogin(ctx context.Context, at *attempt, login, password string) (*Tenant, error) {
	l, err := NormalizeAddress(login)
	if err != nil || password == "" {
		return nil, at.fail(ctx, password)
	}
	t, err := p.TenantForAddress(ctx, l)
	if errors.Is(err, ErrNotFound) {
		return nil, at.fail(ctx, password)
	}
	if err != nil {
		return nil, err
	}
	a, err := t.journalAccess()
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(a.Credentials, func(c JournalCredential) bool { return c.Login == l })
	if i < 0 {
		return nil, at.fail(ctx, password)
	}
	ok, err := at.check(ctx, a.Credentials[i].PasswordHash, password)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrAuthFailed
	}
	return t, nil
}

// IsJournalAddress reports whether addr (with or without a +detail) is a
// journal address of the tenant: journal@ any of its domains, or an address
// of its journal mailbox. Mail to such addresses is a journal copy, and
// they never stand for a person.
func (t *Tenant) IsJournalAddress(addr string) bool {
	a, err := NormalizeAddress(addr)
	if err != nil {
		return false
	}
	at := strings.LastIndexByte(a, '@')
	local, domain := a[:at], a[at+1:]
	if i := strings.IndexByte(local, '+'); i >= 0 {
		local = local[:i]
	}
	if !t.infoHasDomain(domain) {
		return false
	}
	if local == "journal" {
		return true
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	id, ok := t.addrs[local+"@"+domain]
	return ok && t.mailboxes[id].Kind == KindJournal
}

// TLSDir is where the listeners keep the TLS certificate and key of the
// server (self-signed at first start unless configured).
func (p *Provider) TLSDir() string { return filepath.Join(p.opt.DataDir, "tls") }
