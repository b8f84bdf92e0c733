package web

import (
	"net/http"
)

// The account page: a user's app passwords for mail clients. Each is shown
// once, when it is made; backend keeps only its hash and audits making and
// revoking it.

func (h *Handler) account(w http.ResponseWriter, r *http.Request, rq *request) {
	h.renderAccount(w, rq, map[string]any{"OK": r.URL.Query().Get("ok") != ""})
}

func (h *Handler) renderAccount(w http.ResponseWriter, rq *request, data map[string]any) {
	aps, err := rq.t.AppPasswords(rq.se.login)
	if err != nil {
		http.Error(w, text(rq.lang, "notfound"), http.StatusNotFound)
		return
	}
	data["AppPasswords"] = aps
	data["HasTOTP"] = rq.t.HasTOTP(rq.se.login)
	data["Back"] = "/web/account"
	h.render(w, "account.html", h.page(rq, data))
}

func (h *Handler) addAppPassword(w http.ResponseWriter, r *http.Request, rq *request) {
	_, secret, err := rq.t.CreateAppPassword(actor(r, rq), rq.se.login, r.PostFormValue("name"))
	if err != nil {
		h.done(w, r, rq, "/web/account", err)
		return
	}
	// Shown in the answer to the POST, never again (the page is not
	// cached, and a reload asks before posting again).
	h.renderAccount(w, rq, map[string]any{"Secret": secret})
}

func (h *Handler) revokeAppPassword(w http.ResponseWriter, r *http.Request, rq *request) {
	h.done(w, r, rq, "/web/account", rq.t.RevokeAppPassword(actor(r, rq), rq.se.login, r.PostFormValue("id")))
}
