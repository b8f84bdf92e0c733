package jmap

import (
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
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
	ipKey := "ip:" + remoteIP(r)
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	cred = strings.TrimSpace(cred)
	var keys []string
	switch {
	case strings.EqualFold(scheme, "Basic"):
		login, _, _ := r.BasicAuth()
		keys = []string{"login:" + strings.ToLower(login), ipKey}
	case strings.EqualFold(scheme, "Bearer") && tokens:
		keys = []string{ipKey}
	default:
		unauthorized(w, "Authenticate with HTTP Basic (name@domain and password) or an API token (Bearer).")
		return nil, false
	}
	if d := h.limiter.delay(keys...); d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(d/time.Second)+1))
		problem(w, http.StatusTooManyRequests, "about:blank", "Too many failed logins; try again later.")
		return nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	var (
		t   *backend.Tenant
		u   *backend.User
		err error
	)
	if len(keys) == 1 {
		t, u, err = h.p.TokenLogin(ctx, cred)
		if errors.Is(err, backend.ErrAuthFailed) {
			// 32 random bytes cannot be guessed, and clients such as
			// jmap-jam first try a dummy token: no throttling here.
			unauthorized(w, "Wrong or revoked API token.")
			return nil, false
		}
	} else {
		login, password, ok := r.BasicAuth()
		if !ok {
			err = backend.ErrAuthFailed
		} else {
			t, u, err = h.basicLogin(ctx, login, password)
		}
	}
	if err != nil {
		if errors.Is(err, backend.ErrAuthFailed) {
			h.limiter.fail(keys...)
			h.log.Info("jmap authentication failed", "scheme", scheme, "remote", remoteIP(r))
			unauthorized(w, "Wrong login, password or token.")
			return nil, false
		}
		h.log.Error("jmap authentication", "err", err)
		problem(w, http.StatusServiceUnavailable, "about:blank", "The archive cannot check logins right now; try again later.")
		return nil, false
	}
	if len(keys) > 1 {
		h.limiter.succeed(keys[0])
	}
	return &user{t: t, login: u.Login, compliance: t.IsCompliance(u.Login)}, true
}

// basicLogin checks a password, from the cache when it was checked
// recently: a password hash costs tens of milliseconds, and JMAP sends the
// password with every request.
func (h *Handler) basicLogin(ctx context.Context, login, password string) (*backend.Tenant, *backend.User, error) {
	key := sha256.Sum256([]byte(strings.ToLower(login) + "\x00" + password))
	if tenant, ok := h.auth.get(key); ok {
		t, err := h.p.Tenant(ctx, tenant)
		if err == nil {
			if u, err := t.User(login); err == nil && !u.Disabled {
				return t, &u, nil
			}
		}
		h.auth.drop(key)
	}
	t, u, err := h.p.Login(ctx, login, password)
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

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
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

// limiter slows down password and token guessing: after a few failures for
// a login or from an address, further attempts are refused for a while,
// twice as long per failure up to a cap. Refusing for a while rather than
// locking out means an attacker cannot lock a real user out.
type limiter struct {
	mu    sync.Mutex
	fails map[string]*failures
}

type failures struct {
	n    int
	last time.Time
}

const (
	freeFailures        = 3
	freeAddressFailures = 20
	failureBase         = 500 * time.Millisecond
	failureMax          = 30 * time.Second
	failureForget       = 15 * time.Minute
	maxLimiterKeys      = 100000
	maxFailureShifts    = 16
)

func newLimiter() *limiter { return &limiter{fails: map[string]*failures{}} }

// delay returns how long attempts for the keys are refused from now.
func (l *limiter) delay(keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	var d time.Duration
	for _, k := range keys {
		f := l.fails[k]
		free := freeFailures
		if strings.HasPrefix(k, "ip:") {
			// An address may be a whole office behind NAT.
			free = freeAddressFailures
		}
		if f == nil || now.Sub(f.last) > failureForget || f.n < free {
			continue
		}
		wait := failureMax
		if shift := f.n - free; shift < maxFailureShifts {
			wait = min(failureBase<<shift, failureMax)
		}
		if left := f.last.Add(wait).Sub(now); left > d {
			d = left
		}
	}
	return d
}

func (l *limiter) fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fails) >= maxLimiterKeys {
		now := time.Now()
		for k, f := range l.fails {
			if now.Sub(f.last) > failureForget {
				delete(l.fails, k)
			}
		}
		if len(l.fails) >= maxLimiterKeys {
			clear(l.fails)
		}
	}
	for _, k := range keys {
		f := l.fails[k]
		if f == nil {
			f = &failures{}
			l.fails[k] = f
		}
		f.n++
		f.last = time.Now()
	}
}

func (l *limiter) succeed(key string) {
	l.mu.Lock()
	delete(l.fails, key)
	l.mu.Unlock()
}
