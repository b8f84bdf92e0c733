package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// session is one logged-in browser.
type session struct {
	tenant  string
	login   string
	csrf    string // sent with every form, compared on every POST
	expires time.Time
	// pending: the password was right, the second factor is still due;
	// such a session opens nothing but the code form.
	pending bool
	// enrol: pending, and the tenant requires a second factor the user
	// has yet to set up.
	enrol bool
	// totpSecret is a second factor being set up, until its first code.
	totpSecret string
	// provider: the provider's session (tenants and usage, never mail).
	provider bool
}

const (
	sessionTTL  = 8 * time.Hour
	pendingTTL  = 5 * time.Minute
	maxSessions = 100000
	cookieName  = "mv_session"
)

// sessions maps random cookie values to sessions. They live in memory: a
// restart logs everybody out, which is acceptable for an archive.
type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

func newSessions() *sessions { return &sessions{m: map[string]*session{}} }

func token() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) create(tenant, login string, pending bool) (string, *session) {
	id := token()
	ttl := sessionTTL
	if pending {
		ttl = pendingTTL
	}
	se := &session{tenant: tenant, login: login, csrf: token(), expires: time.Now().Add(ttl), pending: pending}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		s.sweepLocked(time.Now())
	}
	s.m[id] = se
	return id, se
}

func (s *sessions) get(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.m[id]
	if se == nil {
		return nil
	}
	if time.Now().After(se.expires) {
		delete(s.m, id)
		return nil
	}
	cp := *se
	return &cp
}

// setEnrol marks a pending session as one that sets up its second factor.
func (s *sessions) setEnrol(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if se := s.m[id]; se != nil {
		se.enrol = true
	}
}

// setProvider makes the session the provider's.
func (s *sessions) setProvider(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if se := s.m[id]; se != nil {
		se.provider = true
	}
}

// setTOTPSecret keeps (or, with "", forgets) the second factor being set
// up in the session.
func (s *sessions) setTOTPSecret(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if se := s.m[id]; se != nil {
		se.totpSecret = secret
	}
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

func (s *sessions) sweepLocked(now time.Time) {
	for id, se := range s.m {
		if now.After(se.expires) {
			delete(s.m, id)
		}
	}
}

// validCSRF compares a form's token with the session's in constant time.
func (se *session) validCSRF(got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(se.csrf)) == 1
}
