package backend

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Role is what a user may do in a tenant.
type Role string

// Roles. A role never grants reading mail by itself, except Compliance for
// journal mailboxes.
const (
	RoleAdmin      Role = "admin"      // manages users, mailboxes, grants; reads only what is granted
	RoleReader     Role = "reader"     // reads own and granted archive mailboxes
	RoleCompliance Role = "compliance" // also reads journal mailboxes
	RoleAuditor    Role = "auditor"    // reads the audit log, no mail
)

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToLower(s)); r {
	case RoleAdmin, RoleReader, RoleCompliance, RoleAuditor:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q: want admin, reader, compliance or auditor", s)
}

// MailboxKind tells what an archive mailbox holds.
type MailboxKind string

// Mailbox kinds.
const (
	KindUser    MailboxKind = "user"    // one person's mail
	KindShared  MailboxKind = "shared"  // a team or function address
	KindJournal MailboxKind = "journal" // every journaled copy; compliance users only
)

// Errors callers map to protocol answers.
var (
	ErrNotFound     = errors.New("not found")
	ErrExists       = errors.New("already exists")
	ErrInvalid      = errors.New("invalid")
	ErrDenied       = errors.New("permission denied")
	ErrAuthFailed   = errors.New("invalid login or password")
	ErrQuota        = errors.New("quota exceeded")
	ErrTenantClosed = errors.New("tenant closed")
)

// Quotas limit a tenant; zero means unlimited.
type Quotas struct {
	Users     int   `json:"users,omitempty"`
	Mailboxes int   `json:"mailboxes,omitempty"`
	Bytes     int64 `json:"bytes,omitempty"`
}

// TenantInfo is a tenant as the provider registry keeps it.
type TenantInfo struct {
	Name    string    `json:"name"`
	Domains []string  `json:"domains"`
	Quotas  Quotas    `json:"quotas"`
	Created time.Time `json:"created"`
	// AutoMailboxes creates a user archive mailbox for an unknown address of
	// one of the tenant's domains when mail for it arrives.
	AutoMailboxes bool   `json:"auto_mailboxes,omitempty"`
	WrappedKey    []byte `json:"wrapped_key"`
	// DeleteAfter schedules the tenant's end of life (see
	// ScheduleTenantDeletion); DeleteBy asked for it.
	DeleteAfter *time.Time `json:"delete_after,omitempty"`
	DeleteBy    string     `json:"delete_by,omitempty"`
}

// User is a person or service account of a tenant.
type User struct {
	Login        string    `json:"login"` // name@domain, lower case
	Roles        []Role    `json:"roles"`
	PasswordHash string    `json:"password_hash,omitempty"`
	Disabled     bool      `json:"disabled,omitempty"`
	Created      time.Time `json:"created"`
	// Directory is the stable directory id of a synced user; such users
	// authenticate against the directory.
	Directory string `json:"directory,omitempty"`
	// Scope makes the user an auditor account: read-only access to these
	// mailboxes and period only, until it expires (see auditor.go).
	Scope *AuditorScope `json:"scope,omitempty"`
	// AppPasswords are the user's passwords for mail clients.
	AppPasswords []AppPassword `json:"app_passwords,omitempty"`
	// TOTP is the user's second factor for the browser login.
	TOTP *TOTP `json:"totp,omitempty"`
}

// Active reports whether the user may log in and read at time now: not
// disabled, and not an auditor account past its expiry.
func (u *User) Active(now time.Time) bool {
	return !u.Disabled && (u.Scope == nil || now.Before(u.Scope.Expires))
}

// Has reports whether the user holds role r directly.
func (u *User) Has(r Role) bool { return slices.Contains(u.Roles, r) }

// Group gives its members roles and mailbox grants.
type Group struct {
	Name    string   `json:"name"`
	Members []string `json:"members"` // logins
	Roles   []Role   `json:"roles,omitempty"`
}

// Mailbox is an archive mailbox: the mail of one address and its aliases.
type Mailbox struct {
	ID      uint64      `json:"id"`
	Kind    MailboxKind `json:"kind"`
	Address string      `json:"address"` // primary address
	Aliases []string    `json:"aliases,omitempty"`
	Owner   string      `json:"owner,omitempty"` // login of the user whose own archive this is
	Readers []string    `json:"readers,omitempty"`
	Groups  []string    `json:"groups,omitempty"` // groups granted read access
	Created time.Time   `json:"created"`
}

// Addresses returns the primary address and the aliases.
func (m *Mailbox) Addresses() []string { return append([]string{m.Address}, m.Aliases...) }

// Folder is a folder of an archive mailbox.
type Folder struct {
	ID          uint64 `json:"id"`
	Mailbox     uint64 `json:"mailbox"`
	Name        string `json:"name"` // "/"-separated path; "INBOX" and "Sent" are standard
	UIDValidity uint32 `json:"uidvalidity"`
	Special     string `json:"special,omitempty"` // "\Sent" etc.
}

// Standard folder names.
const (
	FolderInbox = "INBOX"
	FolderSent  = "Sent"
)

var tenantNameRE = regexp.MustCompile(`^[a-z0-9_-]{1,63}$`)

// CheckTenantName validates a tenant name.
func CheckTenantName(name string) error {
	if !tenantNameRE.MatchString(name) {
		return fmt.Errorf("%w tenant name %q: use 1-63 characters a-z 0-9 _ -", ErrInvalid, name)
	}
	return nil
}

var domainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// NormalizeDomain lower-cases and checks a domain name.
func NormalizeDomain(d string) (string, error) {
	d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
	if len(d) > 253 || !domainRE.MatchString(d) {
		return "", fmt.Errorf("%w domain %q", ErrInvalid, d)
	}
	return d, nil
}

// NormalizeAddress lower-cases an e-mail address and checks its shape. The
// local part is compared case-insensitively, as every real mail system does.
func NormalizeAddress(a string) (string, error) {
	a = strings.ToLower(strings.TrimSpace(strings.Trim(strings.TrimSpace(a), "<>")))
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || at == len(a)-1 || strings.ContainsAny(a, " \t\r\n<>,;\"") {
		return "", fmt.Errorf("%w address %q", ErrInvalid, a)
	}
	if _, err := NormalizeDomain(a[at+1:]); err != nil {
		return "", fmt.Errorf("%w address %q", ErrInvalid, a)
	}
	return a, nil
}

func domainOf(addr string) string {
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		return addr[at+1:]
	}
	return ""
}
