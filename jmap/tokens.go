package jmap

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mailvault/mailvault/backend"
)

// API tokens (not part of JMAP): a user creates one with
// POST /jmap/tokens {"label": "..."} authenticated by password, lists them
// with GET and revokes one with DELETE /jmap/tokens/{id}. A token cannot
// manage tokens: that needs the password.

type tokenView struct {
	ID      string    `json:"id"`
	Label   string    `json:"label"`
	Created time.Time `json:"created"`
	Token   string    `json:"token,omitempty"` // only in the answer to its creation
}

func (h *Handler) serveTokens(w http.ResponseWriter, r *http.Request) {
	u, ok := h.authenticate(w, r, false)
	if !ok {
		return
	}
	id := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, tokensPath), "/")
	switch {
	case id == "" && r.Method == http.MethodGet:
		list, err := u.t.APITokens(u.login)
		if err != nil {
			h.log.Error("list API tokens", "err", err)
			problem(w, http.StatusInternalServerError, "about:blank", "cannot list tokens")
			return
		}
		out := make([]tokenView, 0, len(list))
		for _, t := range list {
			out = append(out, tokenView{ID: t.ID, Label: t.Label, Created: t.Created})
		}
		writeJSON(w, http.StatusOK, out)
	case id == "" && r.Method == http.MethodPost:
		var req struct {
			Label string `json:"label"`
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
		if err == nil && len(strings.TrimSpace(string(body))) > 0 {
			err = json.Unmarshal(body, &req)
		}
		if err != nil {
			problem(w, http.StatusBadRequest, "about:blank", `want a JSON object like {"label": "backup script"}`)
			return
		}
		secret, tok, err := u.t.CreateAPIToken(r.Context(), u.login, req.Label)
		switch {
		case errors.Is(err, backend.ErrInvalid), errors.Is(err, backend.ErrQuota):
			problem(w, http.StatusBadRequest, "about:blank", err.Error())
		case err != nil:
			h.log.Error("create API token", "err", err)
			problem(w, http.StatusInternalServerError, "about:blank", "cannot create the token")
		default:
			writeJSON(w, http.StatusCreated, tokenView{ID: tok.ID, Label: tok.Label, Created: tok.Created, Token: secret})
		}
	case id != "" && r.Method == http.MethodDelete:
		err := u.t.RevokeAPIToken(r.Context(), u.login, id)
		switch {
		case errors.Is(err, backend.ErrNotFound):
			http.NotFound(w, r)
		case err != nil:
			h.log.Error("revoke API token", "err", err)
			problem(w, http.StatusInternalServerError, "about:blank", "cannot revoke the token")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	case id == "":
		methodNotAllowed(w, "GET, POST")
	default:
		methodNotAllowed(w, "DELETE")
	}
}
