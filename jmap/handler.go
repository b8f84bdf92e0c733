package jmap

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/mailvault/mailvault/backend"
)

// Paths the handler serves; mount it for "/jmap/" and "/.well-known/jmap".
const (
	WellKnownPath   = "/.well-known/jmap"
	Prefix          = "/jmap/"
	sessionPath     = "/jmap/session"
	apiPath         = "/jmap/api"
	downloadPrefix  = "/jmap/download/"
	uploadPrefix    = "/jmap/upload/"
	eventSourcePath = "/jmap/eventsource"
	tokensPath      = "/jmap/tokens"
)

// Limits advertised in the core capability and enforced.
const (
	maxSizeRequest        = 10 << 20
	maxConcurrentRequests = 8 // per user
	maxCallsInRequest     = 32
	maxObjectsInGet       = 500
	maxObjectsInSet       = 500
	maxQueryLimit         = 5000 // ids one Email/query returns
	maxStreamsPerUser     = 8
)

// Handler is the JMAP server; it is an http.Handler.
type Handler struct {
	p    *backend.Provider
	base string // scheme://host[:port] of the absolute URLs; "" = from the request
	log  *slog.Logger

	auth   *authCache
	done   chan struct{} // closed by Close: ends event streams
	closed sync.Once

	mu      sync.Mutex
	active  map[string]int                    // requests in flight per tenant/login
	streams map[string]int                    // event streams per tenant/login
	threads map[string]*threadTable           // per tenant
	marks   map[folderKey]*folderCache        // per tenant folder
	watched map[string]*backend.Tenant        // tenants whose caches are dropped when they close
	flagSub map[string]map[chan struct{}]bool // keyword change listeners per tenant/login

	met metricsPtr
}

type folderKey struct {
	tenant string
	folder uint64
}

// New returns the JMAP handler. baseURL (like "https://archive.example.com")
// makes the session's URLs absolute; empty takes them from each request.
func New(p *backend.Provider, baseURL string, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		p: p, base: strings.TrimSuffix(baseURL, "/"), log: log,
		auth: newAuthCache(), done: make(chan struct{}),
		active: map[string]int{}, streams: map[string]int{}, threads: map[string]*threadTable{},
		marks: map[folderKey]*folderCache{}, flagSub: map[string]map[chan struct{}]bool{},
		watched: map[string]*backend.Tenant{},
	}
	h.met.Store(newMetrics(Metrics{}))
	return h
}

// Close ends the event streams, so that an HTTP server shutdown need not
// wait for them. The handler answers requests afterwards, without push.
func (h *Handler) Close() error {
	h.closed.Do(func() { close(h.done) })
	return nil
}

// ServeHTTP routes a request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache, no-store")
	path := r.URL.Path
	switch {
	case path == WellKnownPath:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		http.Redirect(w, r, h.baseURL(r)+sessionPath, http.StatusTemporaryRedirect)
	case path == sessionPath:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		h.withUser(w, r, h.serveSession)
	case path == apiPath:
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		h.withUser(w, r, h.serveAPI)
	case strings.HasPrefix(path, downloadPrefix):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		h.withUser(w, r, h.serveDownload)
	case strings.HasPrefix(path, uploadPrefix):
		h.withUser(w, r, func(w http.ResponseWriter, r *http.Request, u *user) {
			problem(w, http.StatusForbidden, "about:blank", "The archive is read-only: nothing can be uploaded.")
		})
	case path == eventSourcePath:
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET")
			return
		}
		h.withUser(w, r, h.serveEventSource)
	case path == tokensPath || strings.HasPrefix(path, tokensPath+"/"):
		h.serveTokens(w, r)
	default:
		http.NotFound(w, r)
	}
}

// baseURL is scheme://host of the absolute URLs in the session.
func (h *Handler) baseURL(r *http.Request) string {
	if h.base != "" {
		return h.base
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

// problem writes an RFC 7807 problem details object, as RFC 8620 3.6.1
// wants for request-level errors.
func problem(w http.ResponseWriter, status int, typ, detail string) {
	problemLimit(w, status, typ, detail, "")
}

func problemLimit(w http.ResponseWriter, status int, typ, detail, limit string) {
	body := struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
		Limit  string `json:"limit,omitempty"`
	}{typ, status, detail, limit}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(&body)
}

// writeJSON writes v as the JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		problem(w, http.StatusInternalServerError, "about:blank", "cannot encode the answer")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// acquire counts a request of the user against maxConcurrentRequests.
func (h *Handler) acquire(key string) (release func(), ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.active[key] >= maxConcurrentRequests {
		return nil, false
	}
	h.active[key]++
	sessions := h.met.Load().Sessions
	sessions.Inc()
	return func() {
		sessions.Dec()
		h.mu.Lock()
		if h.active[key]--; h.active[key] == 0 {
			delete(h.active, key)
		}
		h.mu.Unlock()
	}, true
}
