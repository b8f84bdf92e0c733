package pull

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/mailvault/mailvault/backend"
)

// Security is how a profile's connection is protected.
type Security string

// Connection security of a source server.
const (
	SecurityTLS      Security = "tls"      // implicit TLS (993)
	SecuritySTARTTLS Security = "starttls" // plain connection upgraded (143)
	SecurityNone     Security = "none"     // cleartext: test servers and loopback only
)

// Profile is one source mailbox pulled into one archive mailbox.
type Profile struct {
	Name string `json:"name"`
	// Protocol is "imap" (default) or "pop3"; POP3 has one folder, the
	// archive's INBOX, and no flags or dates (the archive's time is taken).
	Protocol string   `json:"protocol,omitempty"`
	Host     string   `json:"host"`
	Port     int      `json:"port,omitempty"`     // default 993/995 (tls) or 143/110
	Security Security `json:"security,omitempty"` // default tls
	// CAFile is a PEM file of the CAs the server's certificate must chain
	// to (default: the system's).
	CAFile string `json:"ca_file,omitempty"`
	// Login is the source mailbox's user. With MasterLogin set, the
	// connection logs in as "Login*MasterLogin" with the master's password
	// (Dovecot master users), so one secret reads many mailboxes.
	Login       string `json:"login"`
	MasterLogin string `json:"master_login,omitempty"`
	// Password is write-only: stored sealed with the tenant's key, never
	// returned; an empty Password on a put keeps the stored one.
	Password string `json:"password,omitempty"`
	// Mailbox is the address of the archive mailbox the mail goes into,
	// folder by folder.
	Mailbox string `json:"mailbox"`
	// Include and Exclude are patterns (path.Match, "/" between levels)
	// on the archive's folder names; an empty Include takes every folder.
	// Trash and Junk (by name or special use) are left out unless Include
	// names them.
	Include  []string `json:"include,omitempty"`
	Exclude  []string `json:"exclude,omitempty"`
	Interval Duration `json:"interval,omitempty"` // scheduled runs; 0 = on demand only
}

// Duration is a time.Duration written as "15m" in JSON.
type Duration time.Duration

// MarshalText writes the duration as Go does ("1h0m0s").
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

var nameRE = regexp.MustCompile(`^[a-z0-9_-]{1,63}$`)

func checkName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w pull profile name %q: use 1-63 characters a-z 0-9 _ -", backend.ErrInvalid, name)
	}
	return nil
}

func (p *Profile) check() error {
	if err := checkName(p.Name); err != nil {
		return err
	}
	switch p.Protocol {
	case "":
		p.Protocol = "imap"
	case "imap", "pop3":
	default:
		return fmt.Errorf("%w protocol %q: want imap or pop3", backend.ErrInvalid, p.Protocol)
	}
	switch p.Security {
	case "":
		p.Security = SecurityTLS
	case SecurityTLS, SecuritySTARTTLS, SecurityNone:
	default:
		return fmt.Errorf("%w security %q: want tls, starttls or none", backend.ErrInvalid, p.Security)
	}
	if p.Host == "" || p.Login == "" || p.Mailbox == "" {
		return fmt.Errorf("%w pull profile %s: host, login and mailbox are required", backend.ErrInvalid, p.Name)
	}
	if p.Port < 0 || p.Port > 65535 {
		return fmt.Errorf("%w port %d", backend.ErrInvalid, p.Port)
	}
	if p.Interval != 0 && time.Duration(p.Interval) < time.Minute {
		return fmt.Errorf("%w interval %s: at least 1m", backend.ErrInvalid, time.Duration(p.Interval))
	}
	for _, pat := range append(append([]string(nil), p.Include...), p.Exclude...) {
		if _, err := path.Match(pat, ""); err != nil {
			return fmt.Errorf("%w folder pattern %q: %v", backend.ErrInvalid, pat, err)
		}
	}
	return nil
}

func (p *Profile) port() int {
	pop := p.Protocol == "pop3"
	switch {
	case p.Port != 0:
		return p.Port
	case p.Security == SecurityTLS && pop:
		return 995
	case p.Security == SecurityTLS:
		return 993
	case pop:
		return 110
	}
	return 143
}

// user is the login sent to the server.
func (p *Profile) user() string {
	if p.MasterLogin != "" {
		return p.Login + "*" + p.MasterLogin
	}
	return p.Login
}

// wanted says whether a folder (archive name, source special-use
// attributes) is pulled.
func (p *Profile) wanted(name string, trashOrJunk bool) bool {
	match := func(pats []string) bool {
		for _, pat := range pats {
			if ok, _ := path.Match(pat, name); ok {
				return true
			}
		}
		return false
	}
	if match(p.Exclude) {
		return false
	}
	if len(p.Include) > 0 {
		return match(p.Include)
	}
	return !trashOrJunk && !defaultOut(name)
}

// defaultOut names the folders left out by default when the server does
// not mark them with a special use.
func defaultOut(name string) bool {
	switch strings.ToLower(name) {
	case "trash", "junk", "spam", "deleted items", "deleted messages", "junk e-mail":
		return true
	}
	return false
}

// Keys of the tenant settings.
func profileKey(name string) string { return "pull:profile:" + name }
func stateKey(name string) string   { return "pull:state:" + name }

const profilePrefix = "pull:profile:"

// stored is a profile as kept in the tenant's settings: the password
// sealed.
type stored struct {
	Profile
	Sealed []byte `json:"sealed_password,omitempty"`
}

func sealPurpose(name string) string { return "pull password " + name }

func loadProfile(t *backend.Tenant, name string) (*Profile, []byte, error) {
	b, err := t.GetSetting(profileKey(name))
	if err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			return nil, nil, fmt.Errorf("pull profile %q of tenant %q: %w", name, t.Name, backend.ErrNotFound)
		}
		return nil, nil, err
	}
	var s stored
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, nil, fmt.Errorf("pull profile %q: %w", name, err)
	}
	s.Password = ""
	return &s.Profile, s.Sealed, nil
}

// password opens the sealed password of a profile.
func password(t *backend.Tenant, name string, sealed []byte) (string, error) {
	if len(sealed) == 0 {
		return "", nil
	}
	b, err := t.Unseal(sealPurpose(name), sealed)
	return string(b), err
}

// FolderState is where the last run of a folder stopped.
type FolderState struct {
	UIDValidity uint32 `json:"uidvalidity"`
	LastUID     uint32 `json:"last_uid"`
}

// State is a profile's progress and the outcome of its last run.
type State struct {
	Folders map[string]FolderState `json:"folders"` // by source folder name
	// UIDLs are the POP3 unique ids archived that the server still lists.
	UIDLs       []string  `json:"uidls,omitempty"`
	LastRun     time.Time `json:"last_run,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	Error       string    `json:"error,omitempty"`
	Last        *Report   `json:"last_report,omitempty"`
}

func loadState(t *backend.Tenant, name string) (*State, error) {
	st := &State{Folders: map[string]FolderState{}}
	b, err := t.GetSetting(stateKey(name))
	if errors.Is(err, backend.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("state of pull profile %q: %w", name, err)
	}
	if st.Folders == nil {
		st.Folders = map[string]FolderState{}
	}
	return st, nil
}
