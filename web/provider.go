package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/server/answer"
)

// The provider console: the tenants with their usage, creating tenants
// and setting their quotas, and the health of the system. The provider
// logs in with the provider token (provider.token in the data directory)
// and never sees mail: a provider session opens no page of the archive.

// providerActor is who the provider's changes are audited as, as by the
// management API.
const providerActor = "provider"

func (h *Handler) providerLoginPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, "provider-login.html", map[string]any{"L": lang(r)})
}

func (h *Handler) providerLogin(w http.ResponseWriter, r *http.Request) {
	l := lang(r)
	if !sameOrigin(r) {
		http.Error(w, text(l, "csrf"), http.StatusForbidden)
		return
	}
	if !h.p.CheckProviderToken(strings.TrimSpace(r.PostFormValue("token"))) {
		// The token is random and long: guessing is hopeless, but a
		// pause keeps a flood of tries slow.
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusUnauthorized)
		h.render(w, "provider-login.html", map[string]any{"L": l, "Error": text(l, "provider.bad")})
		return
	}
	id, se := h.sessions.create("", providerActor, false)
	h.sessions.setProvider(id)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/web/", HttpOnly: true,
		Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: int(time.Until(se.expires) / time.Second)})
	http.Redirect(w, r, "/web/provider", http.StatusSeeOther)
}

// provider wraps a handler of the provider console.
func (h *Handler) provider(fn func(http.ResponseWriter, *http.Request, *session, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, se, ok := h.session(w, r, true)
		if !ok {
			return
		}
		fn(w, r, se, id)
	}
}

// tenantRow is one line of the tenant list.
type tenantRow struct {
	backend.TenantInfo
	Usage backend.Usage
	Err   string
}

func (h *Handler) providerHome(w http.ResponseWriter, r *http.Request, se *session, _ string) {
	l := lang(r)
	infos, err := h.p.Tenants()
	if err != nil {
		h.log.Error("web: tenants", "err", err)
		http.Error(w, "archive unavailable", http.StatusServiceUnavailable)
		return
	}
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	var match []*backend.TenantInfo
	for _, ti := range infos {
		if q == "" || strings.Contains(ti.Name, q) || strings.Contains(strings.Join(ti.Domains, " "), q) {
			match = append(match, ti)
		}
	}
	page, pg := pageOf(l, match, int(atoi(r.URL.Query().Get("page"))), "/web/provider?q="+q)
	// Only the tenants of the page are opened for their figures.
	rows := make([]tenantRow, len(page))
	var total backend.Usage
	for i, ti := range page {
		rows[i].TenantInfo = *ti
		t, err := h.p.Tenant(r.Context(), ti.Name)
		if err != nil {
			rows[i].Err = err.Error()
			continue
		}
		rows[i].Usage = t.Usage()
		total.Messages += rows[i].Usage.Messages
		total.Bytes += rows[i].Usage.Bytes
		total.Users += rows[i].Usage.Users
	}
	data := map[string]any{"L": l, "User": providerActor, "Provider": true, "CSRF": se.csrf, "Tenants": rows, "Total": total, "P": pg, "Q": q,
		"Back": r.URL.RequestURI(), "OK": r.URL.Query().Get("ok") != "", "Logins": h.p.LoginStats()}
	if err := h.p.Ready(); err != nil {
		data["Health"] = err.Error()
	}
	if h.endpoints != nil {
		var eps []endpointStats
		for name, st := range h.endpoints() {
			b, _ := json.MarshalIndent(st, "", "  ")
			eps = append(eps, endpointStats{Name: name, JSON: string(b)})
		}
		data["Endpoints"] = eps
	}
	h.render(w, "provider.html", data)
}

type endpointStats struct{ Name, JSON string }

// providerDone is done for the provider's pages.
func (h *Handler) providerDone(w http.ResponseWriter, r *http.Request, se *session, err error) {
	if err == nil {
		http.Redirect(w, r, "/web/provider?ok=1", http.StatusSeeOther)
		return
	}
	code := answer.Status(err)
	if code == http.StatusInternalServerError {
		h.log.Error("web: provider change", "path", r.URL.Path, "err", err)
	}
	w.WriteHeader(code)
	h.render(w, "result.html", map[string]any{"L": lang(r), "User": providerActor, "Provider": true, "CSRF": se.csrf,
		"Error": text(lang(r), "failed"), "Detail": err.Error(), "BackTo": "/web/provider"})
}

// quotas reads the quota fields of a form; empty is unlimited.
func quotas(r *http.Request) (backend.Quotas, error) {
	num := func(name string) (float64, error) {
		v := strings.TrimSpace(r.PostFormValue(name))
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%w: %s must be a number of 0 or more", backend.ErrInvalid, name)
		}
		return n, nil
	}
	users, err1 := num("users")
	mailboxes, err2 := num("mailboxes")
	gb, err3 := num("gb")
	return backend.Quotas{Users: int(users), Mailboxes: int(mailboxes), Bytes: int64(gb * (1 << 30))}, errors.Join(err1, err2, err3)
}

func (h *Handler) createTenant(w http.ResponseWriter, r *http.Request, se *session, _ string) {
	q, err := quotas(r)
	if err != nil {
		h.providerDone(w, r, se, err)
		return
	}
	ctx := backend.WithActor(r.Context(), providerActor)
	info, err := h.p.CreateTenant(ctx, r.PostFormValue("name"), list(r.PostFormValue("domains")), q)
	if err == nil {
		// As POST /api/v1/tenants audits it.
		if t, terr := h.p.Tenant(ctx, info.Name); terr == nil {
			t.Audit(ctx, providerActor, "tenant-create", fmt.Sprintf("%s domains %v quotas %+v", info.Name, info.Domains, info.Quotas))
		}
	}
	h.providerDone(w, r, se, err)
}

func (h *Handler) setQuotas(w http.ResponseWriter, r *http.Request, se *session, _ string) {
	q, err := quotas(r)
	if err != nil {
		h.providerDone(w, r, se, err)
		return
	}
	ctx := backend.WithActor(r.Context(), providerActor)
	name := r.PostFormValue("tenant")
	if err = h.p.SetTenantOptions(ctx, name, &q, nil); err == nil {
		// As PATCH /api/v1/tenants/{t} audits it.
		if t, terr := h.p.Tenant(ctx, name); terr == nil {
			t.Audit(ctx, providerActor, "tenant-set", fmt.Sprintf("quotas %+v", q))
		}
	}
	h.providerDone(w, r, se, err)
}

func (h *Handler) providerLogout(w http.ResponseWriter, r *http.Request, _ *session, id string) {
	h.sessions.drop(id)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/web/", HttpOnly: true,
		Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/web/provider/login", http.StatusSeeOther)
}
