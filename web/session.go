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
}

const (
	sessionTTL  = 8 * time.Hour
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

func (s *sessions) create(tenant, login string) (string, *session) {
	id := token()
	se := &session{tenant: tenant, login: login, csrf: token(), expires: time.Now().Add(sessionTTL)}
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
	return se
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
