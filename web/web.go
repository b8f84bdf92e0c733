package web

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/microcosm-cc/bluemonday"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/dirsync"
	"github.com/mailvault/mailvault/mailparse"
	"github.com/mailvault/mailvault/pull"
)

// Prefix is where the web front end is served.
const Prefix = "/web/"

//go:embed assets
var assets embed.FS

// pageSize is the number of messages per list page.
const pageSize = 50

// Options are the services the front end shows beside the archive.
type Options struct {
	// Directory runs and reports directory sync profiles; nil shows none.
	Directory *dirsync.Syncer
	// Pull runs and reports pull profiles (imports from other servers);
	// nil shows none.
	Pull *pull.Puller
	// Endpoints reports the protocol endpoints' counters (SMTP journal
	// rate, last message, rejects) for the provider; nil shows none.
	Endpoints func() map[string]any
}

// Handler serves the web front end.
type Handler struct {
	p         *backend.Provider
	dir       *dirsync.Syncer
	endpoints func() map[string]any
	pull      *pull.Puller
	// bg is the context of runs started from a page (pull now), which
	// outlive the request; Close ends them and waits.
	bg       context.Context
	stopBg   context.CancelFunc
	runs     sync.WaitGroup
	log      *slog.Logger
	sessions *sessions
	tmpl     *template.Template
	mux      *http.ServeMux
	policy   *bluemonday.Policy // safe for concurrent use once built
}

// New returns the web front end of p.
func New(p *backend.Provider, log *slog.Logger, opt Options) *Handler {
	h := &Handler{p: p, dir: opt.Directory, pull: opt.Pull, endpoints: opt.Endpoints, log: log, sessions: newSessions(), mux: http.NewServeMux(), policy: sanitizer()}
	h.bg, h.stopBg = context.WithCancel(context.Background())
	h.tmpl = template.Must(template.New("").Funcs(template.FuncMap{
		"t":     text,
		"date":  formatDate,
		"size":  formatSize,
		"addrs": formatAddrs,
		"add":   func(a, b int) int { return a + b },
		"datep": func(l string, t *time.Time) string {
			if t == nil {
				return ""
			}
			return formatDate(l, *t)
		},
		"urlPart": url.PathEscape,
		"has":     func(rs []backend.Role, r backend.Role) bool { return slices.Contains(rs, r) },
		"join":    strings.Join,
		"gb":      func(n int64) string { return strconv.FormatFloat(float64(n)/(1<<30), 'f', -1, 64) },
	}).ParseFS(assets, "assets/*.html"))
	static, _ := fs.Sub(assets, "assets/static")
	h.mux.Handle("GET /web/static/", http.StripPrefix("/web/static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /web/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/web/mail", http.StatusSeeOther)
	})
	h.mux.HandleFunc("GET /web/login", h.loginPage)
	h.mux.HandleFunc("POST /web/login", h.login)
	h.mux.HandleFunc("GET /web/login/totp", h.totpPage)
	h.mux.HandleFunc("POST /web/login/totp", h.totpLogin)
	h.mux.HandleFunc("GET /web/login/enrol", h.enrolPage)
	h.mux.HandleFunc("POST /web/login/enrol", h.enrolLogin)
	h.mux.HandleFunc("POST /web/lang", h.setLang)
	h.mux.HandleFunc("POST /web/logout", h.authed(h.logout))
	h.mux.HandleFunc("GET /web/mail", h.authed(h.mail))
	h.mux.HandleFunc("GET /web/msg/{folder}/{uid}", h.authed(h.message))
	h.mux.HandleFunc("GET /web/msg/{folder}/{uid}/html", h.authed(h.htmlBody))
	h.mux.HandleFunc("GET /web/msg/{folder}/{uid}/raw", h.authed(h.raw))
	h.mux.HandleFunc("GET /web/msg/{folder}/{uid}/part/{path}", h.authed(h.part))
	h.mux.HandleFunc("GET /web/msg/{folder}/{uid}/retention", h.authed(h.retention))
	h.mux.HandleFunc("POST /web/export", h.authed(h.export))
	admin := func(pattern string, fn func(http.ResponseWriter, *http.Request, *request)) {
		h.mux.HandleFunc(pattern, h.authed(h.role(mayAdminister, fn)))
	}
	admin("GET /web/admin", h.adminHome)
	admin("POST /web/admin/dirsync", h.syncNow)
	admin("POST /web/admin/security", h.setSecurity)
	admin("POST /web/admin/pull", h.pullNow)
	admin("GET /web/admin/users", h.adminUsers)
	admin("POST /web/admin/users", h.addUser)
	admin("POST /web/admin/users/disabled", h.disableUser)
	admin("POST /web/admin/users/password", h.userPassword)
	admin("GET /web/admin/groups", h.adminGroups)
	admin("POST /web/admin/groups", h.addGroup)
	admin("POST /web/admin/groups/members", h.groupMember)
	admin("GET /web/admin/mailboxes", h.adminMailboxes)
	admin("POST /web/admin/mailboxes", h.addMailbox)
	admin("POST /web/admin/mailboxes/grants", h.mailboxGrant)
	admin("POST /web/admin/mailboxes/aliases", h.mailboxAlias)
	with := func(may func(*backend.Tenant, string) bool) func(string, func(http.ResponseWriter, *http.Request, *request)) {
		return func(pattern string, fn func(http.ResponseWriter, *http.Request, *request)) {
			h.mux.HandleFunc(pattern, h.authed(h.role(may, fn)))
		}
	}
	comp := with(mayRetention)
	comp("GET /web/compliance", h.compliance)
	comp("POST /web/compliance/holds", h.placeHold)
	comp("POST /web/compliance/holds/lift", h.liftHold)
	comp("POST /web/compliance/policies", h.changePolicy)
	comp("POST /web/compliance/dry-run", h.dryRun)
	comp("POST /web/compliance/delete", h.confirmDelete)
	with(mayAuditors)("GET /web/auditors", h.auditors)
	with(mayAuditors)("POST /web/auditors", h.addAuditor)
	with(mayAudit)("GET /web/audit", h.audit)
	h.mux.HandleFunc("GET /web/account", h.authed(h.account))
	h.mux.HandleFunc("POST /web/account/app-passwords", h.authed(h.addAppPassword))
	h.mux.HandleFunc("POST /web/account/app-passwords/revoke", h.authed(h.revokeAppPassword))
	h.mux.HandleFunc("POST /web/account/totp/begin", h.authed(h.totpBegin))
	h.mux.HandleFunc("POST /web/account/totp", h.authed(h.totpEnable))
	h.mux.HandleFunc("POST /web/account/totp/disable", h.authed(h.totpDisable))
	admin("POST /web/admin/users/totp-reset", h.totpReset)
	h.mux.HandleFunc("GET /web/provider/login", h.providerLoginPage)
	h.mux.HandleFunc("POST /web/provider/login", h.providerLogin)
	h.mux.HandleFunc("GET /web/provider", h.provider(h.providerHome))
	h.mux.HandleFunc("POST /web/provider/tenants", h.provider(h.createTenant))
	h.mux.HandleFunc("POST /web/provider/quotas", h.provider(h.setQuotas))
	h.mux.HandleFunc("POST /web/provider/logout", h.provider(h.providerLogout))
	return h
}

// Close ends the runs started from pages and waits for them; the front
// end holds no connections open.
func (h *Handler) Close() error {
	h.stopBg()
	h.runs.Wait()
	return nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// Pages are ours: no framing by others, no scripts or styles from
	// elsewhere. The message body frame has its own, stricter policy.
	hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// request is what a handler of a logged-in user gets.
type request struct {
	t    *backend.Tenant
	se   *session
	sid  string
	lang string
}

// authed resolves the session cookie and, for POSTs, checks the CSRF token
// and the origin.
func (h *Handler) authed(fn func(http.ResponseWriter, *http.Request, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, se, ok := h.session(w, r, false)
		if !ok {
			return
		}
		l := lang(r)
		t, err := h.p.Tenant(r.Context(), se.tenant)
		if err != nil {
			h.log.Error("web: open tenant", "tenant", se.tenant, "err", err)
			http.Error(w, "archive unavailable", http.StatusServiceUnavailable)
			return
		}
		if u, err := t.User(se.login); err != nil || u.Disabled {
			h.sessions.drop(id)
			http.Redirect(w, r, "/web/login", http.StatusSeeOther)
			return
		}
		fn(w, r, &request{t: t, se: se, sid: id, lang: l})
	}
}

// session resolves the session cookie to a session of a tenant user, or
// with provider to the provider's, and for POSTs checks the CSRF token and
// the origin; when it fails it has answered.
func (h *Handler) session(w http.ResponseWriter, r *http.Request, provider bool) (string, *session, bool) {
	c, err := r.Cookie(cookieName)
	var se *session
	if err == nil {
		se = h.sessions.get(c.Value)
	}
	if se == nil || se.pending || se.provider != provider {
		login := "/web/login"
		if provider {
			login = "/web/provider/login"
		}
		if r.Method == http.MethodGet {
			http.Redirect(w, r, login, http.StatusSeeOther)
		} else {
			http.Error(w, "not logged in", http.StatusUnauthorized)
		}
		return "", nil, false
	}
	if r.Method == http.MethodPost && (!sameOrigin(r) || !se.validCSRF(r.PostFormValue("csrf"))) {
		http.Error(w, text(lang(r), "csrf"), http.StatusForbidden)
		return "", nil, false
	}
	return c.Value, se, true
}

// sameOrigin refuses a POST from another site: by Sec-Fetch-Site where
// the browser sends it, else by Origin or Referer. A client that sends
// none of them is no browser a forged form could drive; the CSRF token
// still decides for it.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		return s == "same-origin" || s == "none"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		o = r.Header.Get("Referer")
	}
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (h *Handler) render(w http.ResponseWriter, name string, data map[string]any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := h.tmpl.ExecuteTemplate(w, name, data); err != nil {
		h.log.Error("web: render", "page", name, "err", err)
	}
}

func (h *Handler) page(rq *request, data map[string]any) map[string]any {
	data["L"] = rq.lang
	data["User"] = rq.se.login
	data["CSRF"] = rq.se.csrf
	data["Nav"] = h.nav(rq)
	return data
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, "login.html", map[string]any{"L": lang(r), "Error": r.URL.Query().Get("e")})
}

// login checks the password through the provider's login gate, which
// throttles and bounds password checks for every protocol alike.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	l := lang(r)
	if !sameOrigin(r) {
		http.Error(w, text(l, "csrf"), http.StatusForbidden)
		return
	}
	ctx, cancel := context.WithTimeout(backend.WithRemote(r.Context(), remoteAddr(r)), 30*time.Second)
	defer cancel()
	t, u, err := h.p.Login(ctx, strings.TrimSpace(r.PostFormValue("login")), r.PostFormValue("password"))
	if err != nil {
		code, msg := http.StatusUnauthorized, "login.bad"
		var te *backend.ThrottledError
		if errors.As(err, &te) || errors.Is(err, backend.ErrLoginBusy) {
			code, msg = http.StatusTooManyRequests, "login.busy"
		} else if !errors.Is(err, backend.ErrAuthFailed) {
			h.log.Error("web: login", "err", err)
			code = http.StatusServiceUnavailable
		}
		w.WriteHeader(code)
		h.render(w, "login.html", map[string]any{"L": l, "Error": text(l, msg), "Login": r.PostFormValue("login")})
		return
	}
	if t.IsCompliance(u.Login) {
		t.Audit(ctx, u.Login, "web-login", "")
	}
	if t.HasTOTP(u.Login) {
		h.startSession(w, r, t.Name, u.Login, true)
		http.Redirect(w, r, "/web/login/totp", http.StatusSeeOther)
		return
	}
	if t.RequiresTOTP() {
		h.sessions.setEnrol(h.startSession(w, r, t.Name, u.Login, true))
		http.Redirect(w, r, "/web/login/enrol", http.StatusSeeOther)
		return
	}
	h.startSession(w, r, t.Name, u.Login, false)
	http.Redirect(w, r, "/web/mail", http.StatusSeeOther)
}

func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, tenant, login string, pending bool) string {
	id, se := h.sessions.create(tenant, login, pending)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/web/", HttpOnly: true,
		Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: int(time.Until(se.expires) / time.Second)})
	return id
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, rq *request) {
	h.sessions.drop(rq.sid)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/web/", HttpOnly: true,
		Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/web/login", http.StatusSeeOther)
}

// setLang stores the chosen language; it changes nothing in the archive,
// so it needs no session.
func (h *Handler) setLang(w http.ResponseWriter, r *http.Request) {
	l := r.PostFormValue("lang")
	if _, ok := catalogue[l]; !ok || !sameOrigin(r) {
		http.Error(w, "bad language", http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "lang", Value: l, Path: "/web/", Secure: secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: 365 * 24 * 3600})
	back := r.PostFormValue("back")
	if !strings.HasPrefix(back, Prefix) {
		back = "/web/mail"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// secure says whether the browser reached us over TLS (directly or through
// a proxy that says so).
func secure(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

func formatDate(l string, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	if l == "de" {
		return t.Format("02.01.2006 15:04")
	}
	return t.Format("2006-01-02 15:04")
}

func formatSize(l string, n int64) string {
	var s string
	switch {
	case n < 1024:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1<<20:
		s = strconv.FormatFloat(float64(n)/1024, 'f', 1, 64) + " KB"
	case n < 1<<30:
		s = strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB"
	default:
		s = strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GB"
	}
	if l == "de" {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

// atoi parses a path or query number; 0 when absent or not a number.
func atoi(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// formatAddrs shows addresses as "Name <box@host>".
func formatAddrs(as []mailparse.Address) string {
	var b strings.Builder
	for i, a := range as {
		if i > 0 {
			b.WriteString(", ")
		}
		addr := a.Mailbox
		if a.Host != "" {
			addr += "@" + a.Host
		}
		if a.Name != "" {
			b.WriteString(a.Name + " <" + addr + ">")
		} else {
			b.WriteString(addr)
		}
	}
	return b.String()
}
