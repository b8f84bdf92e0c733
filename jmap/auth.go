package jmap

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailvault/mailvault/backend"
)

// user is the authenticated user of one request.
type user struct {
	t          *backend.Tenant
	login      string
	compliance bool // every read is audited
}

// key identifies the user across tenants.
func (u *user) key() string { return u.t.Name + "/" + u.login }

// audit records a read by a compliance user in the tenant's audit log.
func (u *user) audit(ctx context.Context, action, detail string) {
	if u.compliance {
		u.t.Audit(ctx, u.login, action, detail)
	}
}

const challenge = `Basic realm="mailvault", charset="UTF-8", Bearer realm="mailvault"`

// withUser authenticates the request (HTTP Basic with name@domain and
// password, or Bearer with an API token) and calls fn.
func (h *Handler) withUser(w http.ResponseWriter, r *http.Request, fn func(http.ResponseWriter, *http.Request, *user)) {
	u, ok := h.authenticate(w, r, true)
	if ok {
		fn(w, r, u)
	}
}

// authenticate answers the request itself when it fails.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request, tokens bool) (*user, bool) {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	cred = strings.TrimSpace(cred)
	bearer := strings.EqualFold(scheme, "Bearer") && tokens
	if !bearer && !strings.EqualFold(scheme, "Basic") {
		unauthorized(w, "Authenticate with HTTP Basic (name@domain and password) or an API token (Bearer).")
		return nil, false
	}
	ctx, cancel := context.WithTimeout(backend.WithRemote(r.Context(), remoteAddr(r)), 30*time.Second)
	defer cancel()
	var (
		t   *backend.Tenant
		u   *backend.User
		err error
	)
	if bearer {
		t, u, err = h.p.TokenLogin(ctx, cred)
		if errors.Is(err, backend.ErrAuthFailed) {
			// 32 random bytes cannot be guessed, and clients such as
			// jmap-jam first try a dummy token: no throttling here.
			unauthorized(w, "Wrong or revoked API token.")
			return nil, false
		}
	} else if login, password, ok := r.BasicAuth(); !ok {
		err = backend.ErrAuthFailed
	} else {
		t, u, err = h.basicLogin(ctx, login, password)
	}
	var te *backend.ThrottledError
	switch {
	case err == nil:
		return &user{t: t, login: u.Login, compliance: t.IsCompliance(u.Login)}, true
	case errors.Is(err, backend.ErrAuthFailed):
		h.log.Info("jmap authentication failed", "scheme", scheme, "remote", r.RemoteAddr)
		h.met.Load().LoginsFailed.Inc()
		unauthorized(w, "Wrong login, password or token.")
	case errors.As(err, &te):
		w.Header().Set("Retry-After", strconv.Itoa(int(te.RetryAfter/time.Second)+1))
		problem(w, http.StatusTooManyRequests, "about:blank", "Too many failed logins for this account; try again later.")
	case errors.Is(err, backend.ErrLoginBusy):
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusServiceUnavailable, "about:blank", "Too many logins at once; try again in a moment.")
	default:
		h.log.Error("jmap authentication", "err", err)
		problem(w, http.StatusServiceUnavailable, "about:blank", "The archive cannot check logins right now; try again later.")
	}
	return nil, false
}

// basicLogin checks a password, from the cache when it was checked
// recently: a password hash costs tens of milliseconds, and JMAP sends the
// password with every request.
func (h *Handler) basicLogin(ctx context.Context, login, password string) (*backend.Tenant, *backend.User, error) {
	key := sha256.Sum256([]byte(strings.ToLower(login) + "\x00" + password))
	if tenant, ok := h.auth.get(key); ok {
		t, err := h.p.Tenant(ctx, tenant)
		if err == nil {
			if u, err := t.User(login); err == nil && u.Active(time.Now()) {
				return t, &u, nil
			}
		}
		h.auth.drop(key)
	}
	t, u, err := h.p.MailLogin(ctx, login, password)
	if err != nil {
		return nil, nil, err
	}
	h.auth.put(key, t.Name)
	if t.IsCompliance(u.Login) {
		t.Audit(ctx, u.Login, "jmap-login", "")
	}
	return t, u, nil
}

func unauthorized(w http.ResponseWriter, detail string) {
	w.Header().Set("WWW-Authenticate", challenge)
	problem(w, http.StatusUnauthorized, "about:blank", detail)
}

// remoteAddr is the client's IP address, which logins are throttled by.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

// authCache remembers recently checked passwords by the SHA-256 of login
// and password, for a short time: a changed password stops working at the
// latest after authTTL; a disabled or deleted user at once.
type authCache struct {
	mu      sync.Mutex
	entries map[[32]byte]authEntry
}

type authEntry struct {
	tenant  string
	expires time.Time
}

const (
	authTTL        = 2 * time.Minute
	maxAuthEntries = 10000
)

func newAuthCache() *authCache { return &authCache{entries: map[[32]byte]authEntry{}} }

func (c *authCache) get(key [32]byte) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || time.Now().After(e.expires) {
		return "", false
	}
	return e.tenant, true
}

func (c *authCache) put(key [32]byte, tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxAuthEntries {
		now := time.Now()
		for k, e := range c.entries {
			if now.After(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxAuthEntries {
			clear(c.entries)
		}
	}
	c.entries[key] = authEntry{tenant: tenant, expires: time.Now().Add(authTTL)}
}

func (c *authCache) drop(key [32]byte) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}
