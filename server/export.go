package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/server/answer"
)

// Export response headers: the scope's totals, sent before the body.
const (
	ExportMessagesHeader = "X-Mailvault-Export-Messages"
	ExportBytesHeader    = "X-Mailvault-Export-Bytes"
)

// ExportQuery is the query string of GET .../export for a scope and format.
func ExportQuery(s backend.ExportScope, f backend.ExportFormat) url.Values {
	q := url.Values{"format": {string(f)}}
	for _, m := range s.Mailboxes {
		q.Add("mailbox", m)
	}
	if s.All {
		q.Set("all", "1")
	}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("folder", s.Folder)
	set("auditor", s.Auditor)
	if !s.Since.IsZero() {
		set("since", s.Since.UTC().Format(time.RFC3339))
	}
	if !s.Until.IsZero() {
		set("until", s.Until.UTC().Format(time.RFC3339))
	}
	set("text", s.Text)
	set("from", s.From)
	set("to", s.To)
	set("subject", s.Subject)
	return q
}

// ParseExportTime reads a scope bound: a date (YYYY-MM-DD, midnight UTC)
// or an RFC 3339 time.
func ParseExportTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("%w: %q is neither YYYY-MM-DD nor an RFC 3339 time", answer.ErrBadRequest, s)
	}
	return t, nil
}

func parseExportQuery(q url.Values) (backend.ExportScope, backend.ExportFormat, error) {
	s := backend.ExportScope{All: q.Get("all") == "1", Folder: q.Get("folder"), Auditor: q.Get("auditor"),
		Text: q.Get("text"), From: q.Get("from"), To: q.Get("to"), Subject: q.Get("subject")}
	for _, m := range q["mailbox"] {
		for _, part := range strings.Split(m, ",") {
			if part = strings.TrimSpace(part); part != "" {
				s.Mailboxes = append(s.Mailboxes, part)
			}
		}
	}
	var err error
	if s.Since, err = ParseExportTime(q.Get("since")); err != nil {
		return s, "", err
	}
	if s.Until, err = ParseExportTime(q.Get("until")); err != nil {
		return s, "", err
	}
	format := backend.ExportEML
	if f := q.Get("format"); f != "" {
		if format, err = backend.ParseExportFormat(f); err != nil {
			return s, "", err
		}
	}
	return s, format, nil
}

// countWriter notes whether the response body has begun.
type countWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// export streams an export as the response body. Its totals go out as
// headers first; an error once the body has begun breaks the connection,
// so a client never takes a cut export for a whole one.
func (a *API) export(w http.ResponseWriter, r *http.Request) error {
	scope, format, err := parseExportQuery(r.URL.Query())
	if err != nil {
		return err
	}
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	req := backend.ExportRequest{Scope: scope, Format: format, Actor: backend.ActorOf(r.Context())}
	if u, ok := r.Context().Value(apiUserKey{}).(apiUser); ok {
		if u.tenant != t.Name {
			return fmt.Errorf("tenant %s: %w", r.PathValue("t"), backend.ErrNotFound)
		}
		req.By = u.login
	}
	name := t.Name + "-export.zip"
	ctype := "application/zip"
	switch format {
	case backend.ExportMbox:
		name, ctype = t.Name+"-export.mbox", "application/mbox"
	case backend.ExportZ3:
		name = t.Name + "-z3.zip"
	}
	req.Started = func(total backend.ExportResult) {
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
		h.Set(ExportMessagesHeader, strconv.Itoa(total.Messages))
		h.Set(ExportBytesHeader, strconv.FormatInt(total.Bytes, 10))
	}
	cw := &countWriter{ResponseWriter: w}
	res, err := t.Export(r.Context(), req, cw)
	if err != nil {
		if cw.n > 0 {
			a.log.Error("export broken off", "tenant", t.Name, "messages", res.Messages, "err", err)
			panic(http.ErrAbortHandler)
		}
		return err
	}
	return nil
}

// SigningImport is the body of PUT .../signing: a certificate and its
// private key, PEM.
type SigningImport struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// SigningCert is the answer of GET .../signing.
type SigningCert struct {
	Cert string `json:"cert"`
}

func (a *API) signingCert(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	pem, err := t.SigningCert()
	if err != nil {
		return err
	}
	answer.JSON(w, http.StatusOK, SigningCert{Cert: string(pem)})
	return nil
}

func (a *API) signingGenerate(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	pem, err := t.GenerateSigningKey(r.Context())
	if err != nil {
		return err
	}
	answer.JSON(w, http.StatusCreated, SigningCert{Cert: string(pem)})
	return nil
}

// AuditorRequest creates an auditor account. Dates are YYYY-MM-DD or RFC
// 3339; Until is exclusive.
type AuditorRequest struct {
	Login     string   `json:"login"`
	Password  string   `json:"password"`
	Mailboxes []string `json:"mailboxes,omitempty"`
	All       bool     `json:"all,omitempty"`
	Since     string   `json:"since,omitempty"`
	Until     string   `json:"until,omitempty"`
	Expires   string   `json:"expires"`
}

func (a *API) createAuditor(w http.ResponseWriter, r *http.Request) error {
	var req AuditorRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := a.tenant(r)
	if err != nil {
		return err
	}
	by := ""
	if u, ok := r.Context().Value(apiUserKey{}).(apiUser); ok {
		if u.tenant != t.Name {
			return fmt.Errorf("tenant %s: %w", r.PathValue("t"), backend.ErrNotFound)
		}
		by = u.login
	}
	if err := checkPassword(req.Password); err != nil {
		return err
	}
	spec := backend.AuditorSpec{Login: req.Login, Password: req.Password, Mailboxes: req.Mailboxes, All: req.All}
	for _, f := range []struct {
		name string
		in   string
		out  *time.Time
	}{{"since", req.Since, &spec.Since}, {"until", req.Until, &spec.Until}, {"expires", req.Expires, &spec.Expires}} {
		v, err := ParseExportTime(f.in)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		*f.out = v
	}
	u, err := t.CreateAuditor(r.Context(), by, spec)
	if err != nil {
		return err
	}
	answer.JSON(w, http.StatusCreated, u)
	return nil
}
