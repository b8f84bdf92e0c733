package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"image/png"
	"net/http"
	"time"

	"github.com/pquerna/otp"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/server/answer"
)

// Two-step login: after the password, a session is pending until the code
// of the user's authenticator app is right (backend checks it, throttled
// by the login gate); only then does the browser get a session that opens
// anything, under a new cookie.

// pendingSession returns the session of a login waiting for its code.
func (h *Handler) pendingSession(r *http.Request) (string, *session) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return "", nil
	}
	se := h.sessions.get(c.Value)
	if se == nil || !se.pending {
		return "", nil
	}
	return c.Value, se
}

func (h *Handler) totpPage(w http.ResponseWriter, r *http.Request) {
	_, se := h.pendingSession(r)
	if se == nil || se.enrol {
		http.Redirect(w, r, "/web/login", http.StatusSeeOther)
		return
	}
	h.render(w, "totp.html", map[string]any{"L": lang(r), "CSRF": se.csrf})
}

func (h *Handler) totpLogin(w http.ResponseWriter, r *http.Request) {
	l := lang(r)
	id, se := h.pendingSession(r)
	if se == nil || se.enrol {
		http.Error(w, "not logged in", http.StatusUnauthorized)
		return
	}
	if !sameOrigin(r) || !se.validCSRF(r.PostFormValue("csrf")) {
		http.Error(w, text(l, "csrf"), http.StatusForbidden)
		return
	}
	ctx, cancel := context.WithTimeout(backend.WithRemote(r.Context(), remoteAddr(r)), 30*time.Second)
	defer cancel()
	t, err := h.p.Tenant(ctx, se.tenant)
	if err == nil {
		err = t.CheckTOTP(ctx, se.login, r.PostFormValue("code"))
	}
	if err != nil {
		code, msg := http.StatusUnauthorized, "totp.bad"
		var te *backend.ThrottledError
		if errors.As(err, &te) || errors.Is(err, backend.ErrLoginBusy) {
			code, msg = http.StatusTooManyRequests, "login.busy"
		} else if !errors.Is(err, backend.ErrAuthFailed) {
			h.log.Error("web: second factor", "err", err)
			code, msg = http.StatusServiceUnavailable, "failed"
		}
		w.WriteHeader(code)
		h.render(w, "totp.html", map[string]any{"L": l, "CSRF": se.csrf, "Error": text(l, msg)})
		return
	}
	h.sessions.drop(id)
	if t.IsCompliance(se.login) {
		t.Audit(ctx, se.login, "web-login", "")
	}
	h.startSession(w, r, se.tenant, se.login, false)
	http.Redirect(w, r, "/web/mail", http.StatusSeeOther)
}

// enrolPage: the tenant requires two-step login and the user has none
// yet; the pending session sets it up before it opens anything.
func (h *Handler) enrolPage(w http.ResponseWriter, r *http.Request) {
	id, se := h.pendingSession(r)
	if se == nil || !se.enrol {
		http.Redirect(w, r, "/web/login", http.StatusSeeOther)
		return
	}
	t, err := h.p.Tenant(r.Context(), se.tenant)
	if err != nil {
		http.Error(w, "archive unavailable", http.StatusServiceUnavailable)
		return
	}
	h.renderEnrol(w, r, id, se, t, "")
}

func (h *Handler) renderEnrol(w http.ResponseWriter, r *http.Request, id string, se *session, t *backend.Tenant, msg string) {
	secret, u, err := t.NewTOTPKey(se.login)
	if err != nil {
		http.Error(w, "archive unavailable", http.StatusServiceUnavailable)
		return
	}
	h.sessions.setTOTPSecret(id, secret)
	h.render(w, "enrol.html", map[string]any{"L": lang(r), "CSRF": se.csrf, "TOTPSecret": secret, "QR": qrCode(u), "Error": msg})
}

func (h *Handler) enrolLogin(w http.ResponseWriter, r *http.Request) {
	l := lang(r)
	id, se := h.pendingSession(r)
	if se == nil || !se.enrol {
		http.Error(w, "not logged in", http.StatusUnauthorized)
		return
	}
	if !sameOrigin(r) || !se.validCSRF(r.PostFormValue("csrf")) {
		http.Error(w, text(l, "csrf"), http.StatusForbidden)
		return
	}
	t, err := h.p.Tenant(r.Context(), se.tenant)
	if err != nil {
		http.Error(w, "archive unavailable", http.StatusServiceUnavailable)
		return
	}
	ctx := backend.WithActor(r.Context(), se.login)
	if err := t.EnableTOTP(ctx, se.login, se.totpSecret, r.PostFormValue("code")); err != nil {
		// A new secret with each try: the form shows the one to scan.
		w.WriteHeader(answer.Status(err))
		h.renderEnrol(w, r, id, se, t, err.Error())
		return
	}
	h.sessions.drop(id)
	if t.IsCompliance(se.login) {
		t.Audit(ctx, se.login, "web-login", "")
	}
	h.startSession(w, r, se.tenant, se.login, false)
	http.Redirect(w, r, "/web/mail", http.StatusSeeOther)
}

// qrCode is the otpauth URL as a QR code image to put in a page.
func qrCode(u string) template.URL {
	k, err := otp.NewKeyFromURL(u)
	if err != nil {
		return ""
	}
	img, err := k.Image(220, 220)
	if err != nil {
		return ""
	}
	var b bytes.Buffer
	if png.Encode(&b, img) != nil {
		return ""
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes()))
}

// setSecurity: an admin makes two-step login compulsory in the tenant.
func (h *Handler) setSecurity(w http.ResponseWriter, r *http.Request, rq *request) {
	h.done(w, r, rq, "/web/admin", rq.t.SetRequireTOTP(actor(r, rq), r.PostFormValue("require_totp") != ""))
}

// totpBegin makes a secret to set up and keeps it in the session until
// the user's first code confirms it.
func (h *Handler) totpBegin(w http.ResponseWriter, r *http.Request, rq *request) {
	secret, u, err := rq.t.NewTOTPKey(rq.se.login)
	if err != nil {
		h.done(w, r, rq, "/web/account", err)
		return
	}
	h.sessions.setTOTPSecret(rq.sid, secret)
	h.renderAccount(w, rq, map[string]any{"Enrol": true, "TOTPSecret": secret, "QR": qrCode(u)})
}

func (h *Handler) totpEnable(w http.ResponseWriter, r *http.Request, rq *request) {
	if rq.se.totpSecret == "" {
		h.done(w, r, rq, "/web/account", fmt.Errorf("%w: start the set-up again", backend.ErrInvalid))
		return
	}
	err := rq.t.EnableTOTP(actor(r, rq), rq.se.login, rq.se.totpSecret, r.PostFormValue("code"))
	if err == nil {
		h.sessions.setTOTPSecret(rq.sid, "")
	}
	h.done(w, r, rq, "/web/account", err)
}

// totpDisable turns the second factor off with a current code of it.
func (h *Handler) totpDisable(w http.ResponseWriter, r *http.Request, rq *request) {
	ctx := backend.WithRemote(actor(r, rq), remoteAddr(r))
	err := rq.t.CheckTOTP(ctx, rq.se.login, r.PostFormValue("code"))
	if errors.Is(err, backend.ErrAuthFailed) {
		err = fmt.Errorf("%w: %s", backend.ErrInvalid, text(rq.lang, "totp.bad"))
	}
	if err == nil {
		err = rq.t.DisableTOTP(ctx, rq.se.login)
	}
	h.done(w, r, rq, "/web/account", err)
}

// totpReset: an admin removes the second factor of a user who lost the
// device; the user sets it up again after logging in with the password.
func (h *Handler) totpReset(w http.ResponseWriter, r *http.Request, rq *request) {
	login := r.PostFormValue("login")
	h.done(w, r, rq, "/web/admin/users?q="+login, rq.t.DisableTOTP(actor(r, rq), login))
}
