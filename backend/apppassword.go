package backend

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// AppPassword is a password of one user for one mail client (IMAP, JMAP),
// so that the account password (and, where it is asked for, a second
// factor) stays in the browser. It is random, shown once, stored as an
// argon2id hash like account passwords, and revocable on its own.
type AppPassword struct {
	ID      string    `json:"id"` // the first group of the password
	Name    string    `json:"name"`
	Hash    string    `json:"hash,omitempty"`
	Created time.Time `json:"created"`
}

// MaxAppPasswords bounds a user's app passwords.
const MaxAppPasswords = 20

// appAlphabet has no letters or digits that are easily mistaken for
// another (0/o, 1/l/i) when typed from the screen into a client.
const appAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// newAppPassword returns a password of five groups of four characters,
// xxxx-xxxx-xxxx-xxxx-xxxx; the first group names it (its ID), the other
// four are its secret (about 79 bits).
func newAppPassword() string {
	b := make([]byte, 20)
	randRead(b)
	var s strings.Builder
	for i, c := range b {
		if i > 0 && i%4 == 0 {
			s.WriteByte('-')
		}
		// 256 % 31 = 8: the first eight letters come up a little more
		// often, which costs well under a bit of the 79.
		s.WriteByte(appAlphabet[int(c)%len(appAlphabet)])
	}
	return s.String()
}

// appPasswordID returns the ID of a string shaped like an app password.
func appPasswordID(pw string) (string, bool) {
	if len(pw) != 24 {
		return "", false
	}
	for i := 0; i < len(pw); i++ {
		if i%5 == 4 {
			if pw[i] != '-' {
				return "", false
			}
		} else if strings.IndexByte(appAlphabet, pw[i]) < 0 {
			return "", false
		}
	}
	return pw[:4], true
}

// CreateAppPassword gives the user a new app password named name and
// returns it with its one showing of the password itself.
func (t *Tenant) CreateAppPassword(ctx context.Context, login, name string) (AppPassword, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 64 || strings.ContainsAny(name, "\r\n\t") {
		return AppPassword{}, "", fmt.Errorf("%w: an app password needs a name of 1 to 64 characters", ErrInvalid)
	}
	var ap AppPassword
	var secret string
	err := t.UpdateUser(ctx, login, func(u *User) error {
		if len(u.AppPasswords) >= MaxAppPasswords {
			return fmt.Errorf("%w: at most %d app passwords; revoke one first", ErrQuota, MaxAppPasswords)
		}
		for {
			secret = newAppPassword()
			id := secret[:4]
			if !slices.ContainsFunc(u.AppPasswords, func(a AppPassword) bool { return a.ID == id }) {
				break
			}
		}
		ap = AppPassword{ID: secret[:4], Name: name, Hash: HashPassword(secret), Created: time.Now().UTC()}
		u.AppPasswords = append(slices.Clone(u.AppPasswords), ap)
		return nil
	})
	if err != nil {
		return AppPassword{}, "", err
	}
	t.Audit(ctx, ActorOf(ctx), "app-password-create", fmt.Sprintf("%s %s %q", strings.ToLower(login), ap.ID, name))
	ap.Hash = ""
	return ap, secret, nil
}

// RevokeAppPassword deletes one of the user's app passwords; clients that
// use it are refused from their next login.
func (t *Tenant) RevokeAppPassword(ctx context.Context, login, id string) error {
	err := t.UpdateUser(ctx, login, func(u *User) error {
		i := slices.IndexFunc(u.AppPasswords, func(a AppPassword) bool { return a.ID == id })
		if i < 0 {
			return fmt.Errorf("app password %s of %s: %w", id, login, ErrNotFound)
		}
		u.AppPasswords = slices.Delete(slices.Clone(u.AppPasswords), i, i+1)
		return nil
	})
	if err == nil {
		t.Audit(ctx, ActorOf(ctx), "app-password-revoke", strings.ToLower(login)+" "+id)
	}
	return err
}

// AppPasswords lists the user's app passwords, without their hashes.
func (t *Tenant) AppPasswords(login string) ([]AppPassword, error) {
	u, err := t.User(login)
	if err != nil {
		return nil, err
	}
	return u.AppPasswords, nil
}

// withoutSecrets is a copy of u for callers: no password or app password
// hashes.
func withoutSecrets(u *User) User {
	c := *u
	c.PasswordHash = ""
	if c.TOTP != nil {
		c.TOTP = &TOTP{Enabled: c.TOTP.Enabled}
	}
	if len(c.AppPasswords) > 0 {
		c.AppPasswords = slices.Clone(c.AppPasswords)
		for i := range c.AppPasswords {
			c.AppPasswords[i].Hash = ""
		}
	}
	return c
}

// MailLogin authenticates a mail client (IMAP, JMAP): like Login, and it
// also accepts one of the user's app passwords. The web front end logs in
// with Login, which takes the account password only.
func (p *Provider) MailLogin(ctx context.Context, login, password string) (*Tenant, *User, error) {
	return p.Login(withAppPasswords(ctx), login, password)
}

type appPasswordsKey struct{}

func withAppPasswords(ctx context.Context) context.Context {
	return context.WithValue(ctx, appPasswordsKey{}, true)
}

func appPasswordsAllowed(ctx context.Context) bool {
	ok, _ := ctx.Value(appPasswordsKey{}).(bool)
	return ok
}

// appPasswordHash is the hash to check password against when it is one
// of u's app passwords.
func appPasswordHash(ctx context.Context, u *User, password string) (string, bool) {
	if len(u.AppPasswords) == 0 || !appPasswordsAllowed(ctx) {
		return "", false
	}
	id, ok := appPasswordID(password)
	if !ok {
		return "", false
	}
	i := slices.IndexFunc(u.AppPasswords, func(a AppPassword) bool { return a.ID == id })
	if i < 0 {
		return "", false
	}
	return u.AppPasswords[i].Hash, true
}
