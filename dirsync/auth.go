package dirsync

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/mailvault/mailvault/backend"
)

// Authenticate checks a directory user's password by binding as them: the
// service account finds the user's entry by login, the entry must carry the
// user's stable id (a login taken over by someone else in the directory does
// not open this archive), and a separate short-lived connection binds as
// that entry. It implements backend.Authenticator. A wrong password, or a
// user missing or disabled in the directory, gives backend.ErrAuthFailed;
// a directory that cannot be reached gives another error (and a log line),
// so that protocols answer "try again later" instead of "wrong password".
func (s *Syncer) Authenticate(ctx context.Context, tenant string, u *backend.User, password string) error {
	if password == "" {
		return backend.ErrAuthFailed
	}
	source, id := backend.DirectoryRef(u)
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return err
	}
	prof, err := loadProfile(t, source)
	if errors.Is(err, backend.ErrNotFound) {
		s.log.Warn("directory login refused: the user's directory profile does not exist", "tenant", tenant, "login", u.Login, "directory", source)
		return backend.ErrAuthFailed
	}
	if err != nil {
		return err
	}
	e, err := prof.effective()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	dn, err := findUser(ctx, e, u.Login, id)
	if err == nil {
		err = bindAs(ctx, e, dn, password)
	}
	var be *bindError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, backend.ErrAuthFailed), errors.As(err, &be) && be.dn == dn:
		return backend.ErrAuthFailed
	case errors.Is(err, errUnreachable):
		s.log.Error("directory login impossible: the directory is unreachable", "tenant", tenant, "login", u.Login, "directory", source, "url", e.URL, "err", err)
	default:
		s.log.Error("directory login impossible", "tenant", tenant, "login", u.Login, "directory", source, "url", e.URL, "err", err)
	}
	return fmt.Errorf("login %s against directory %s: %w", u.Login, source, err)
}

// findUser returns the DN of the enabled directory user with this login
// and stable id, or backend.ErrAuthFailed.
func findUser(ctx context.Context, e *effective, login, id string) (string, error) {
	c, err := dial(ctx, e)
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := c.bind(e.BindDN, e.BindPassword); err != nil {
		return "", err
	}
	filter := loginFilter(e, login)
	req := ldap.NewSearchRequest(e.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 10, int(e.timeout.Seconds()), false,
		filter, []string{e.m.ID}, nil)
	res, err := c.l.Search(req)
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %v", errUnreachable, ctx.Err()) // no answer in time
		} else if c.broken(err) {
			err = fmt.Errorf("%w: %v", errUnreachable, err)
		}
		return "", fmt.Errorf("search %s: %w", filter, err)
	}
	guid := e.guidID()
	for _, en := range res.Entries {
		if stableID(en.GetEqualFoldRawAttributeValue(e.m.ID), guid) == id {
			return en.DN, nil
		}
	}
	return "", backend.ErrAuthFailed
}

// loginFilter finds a user by any attribute a login can come from, among
// the profile's enabled users.
func loginFilter(e *effective, login string) string {
	v := ldap.EscapeFilter(login)
	var b strings.Builder
	b.WriteString("(&")
	b.WriteString(e.userFilter)
	if e.disabledFilter != "" {
		b.WriteString("(!" + e.disabledFilter + ")")
	}
	b.WriteString("(|")
	for _, a := range compactAttrs(append([]string{e.m.Mail}, e.m.Login...)) {
		b.WriteString("(" + a + "=" + v + ")")
	}
	if e.m.ProxyAddresses != "" {
		b.WriteString("(" + e.m.ProxyAddresses + "=smtp:" + v + ")")
	}
	b.WriteString("))")
	return b.String()
}

// bindAs checks the password on a connection of its own: a failed bind
// leaves a connection unauthenticated, and the service connection must
// never act as the user.
func bindAs(ctx context.Context, e *effective, dn, password string) error {
	c, err := dial(ctx, e)
	if err != nil {
		return err
	}
	defer c.close()
	return c.bind(dn, password)
}
