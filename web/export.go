package web

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mailvault/mailvault/backend"
)

// export streams the messages of the open folder that match the search
// form as a ZIP of EML files or an mbox, through backend's export path: it
// decides who may export (admins and compliance users) and audits it.
// The page offers it only to them; the folder must be one they read.
func (h *Handler) export(w http.ResponseWriter, r *http.Request, rq *request) {
	if !mayExport(rq) {
		http.Error(w, text(rq.lang, "notfound"), http.StatusForbidden)
		return
	}
	if r.PostFormValue("att") != "" {
		// Export scopes have no attachment filter: an export would hold
		// more than the page shows.
		http.Error(w, "exports cannot filter by attachment", http.StatusBadRequest)
		return
	}
	snap, err := rq.t.Snapshot(rq.se.login, atoi(r.PostFormValue("folder")))
	if err != nil {
		http.Error(w, text(rq.lang, "notfound"), http.StatusNotFound)
		return
	}
	var address string
	for _, mb := range rq.t.Readable(rq.se.login) {
		if mb.ID == snap.Mailbox {
			address = mb.Address
		}
	}
	scope := backend.ExportScope{Mailboxes: []string{address}, Folder: snap.Name,
		Text: r.PostFormValue("q"), From: r.PostFormValue("from"), To: r.PostFormValue("to"), Subject: r.PostFormValue("subject")}
	for _, d := range []struct {
		v   string
		out *time.Time
	}{{r.PostFormValue("after"), &scope.Since}, {r.PostFormValue("before"), &scope.Until}} {
		if d.v == "" {
			continue
		}
		if *d.out, err = time.Parse(time.DateOnly, d.v); err != nil {
			http.Error(w, "bad date", http.StatusBadRequest)
			return
		}
	}
	format, name, ctype := backend.ExportEML, "export.zip", "application/zip"
	if r.PostFormValue("format") == "mbox" {
		format, name, ctype = backend.ExportMbox, "export.mbox", "application/mbox"
	}
	req := backend.ExportRequest{Scope: scope, Format: format, By: rq.se.login, Actor: rq.se.login,
		Started: func(backend.ExportResult) {
			hd := w.Header()
			hd.Set("Content-Type", ctype)
			hd.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
		}}
	cw := &countWriter{w: w}
	if _, err := rq.t.Export(r.Context(), req, cw); err != nil {
		switch {
		case cw.n > 0:
			// A cut archive must not pass for a whole one.
			h.log.Error("web: export broken off", "tenant", rq.t.Name, "err", err)
			panic(http.ErrAbortHandler)
		case errors.Is(err, backend.ErrDenied):
			http.Error(w, text(rq.lang, "notfound"), http.StatusForbidden)
		default:
			h.log.Error("web: export", "err", err)
			http.Error(w, "export failed", http.StatusServiceUnavailable)
		}
	}
}

type countWriter struct {
	w http.ResponseWriter
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// mayExport: backend lets admins and compliance users export. An auditor
// account exports its whole scope through the API (ExportScope.Auditor);
// the page's folder and filters are not that scope, so it is not offered
// here.
func mayExport(rq *request) bool {
	u, err := rq.t.User(rq.se.login)
	return err == nil && u.Scope == nil && rq.t.MayExport(rq.se.login)
}
