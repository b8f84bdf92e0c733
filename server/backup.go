package server

import (
	"fmt"
	"net/http"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/backup"
	"github.com/mailvault/mailvault/server/answer"
)

// backupStream answers GET /api/v1/backup[?tenant=T&compress=zstd] with a
// consistent snapshot as a tar stream (see package backup). The stream
// ends with its manifest; one cut short by an error has none, which is how
// the reader tells.
func (a *API) backupStream(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	opt := backup.Options{Actor: backend.ActorOf(r.Context())}
	if t := q.Get("tenant"); t != "" {
		if _, err := a.p.TenantInfo(t); err != nil {
			return err
		}
		opt.Tenants = []string{t}
	}
	switch q.Get("compress") {
	case "", "none":
		w.Header().Set("Content-Type", "application/x-tar")
	case "zstd":
		opt.Zstd = true
		w.Header().Set("Content-Type", "application/zstd")
	default:
		return fmt.Errorf("%w: compress must be zstd or none", answer.ErrBadRequest)
	}
	w.WriteHeader(http.StatusOK)
	m, err := backup.Write(r.Context(), w, a.p, opt)
	if err != nil {
		// The status is sent: the missing manifest tells the client.
		a.log.Error("backup failed", "tenants", opt.Tenants, "err", err)
		return nil
	}
	var msgs uint64
	for _, t := range m.Tenants {
		msgs += t.Messages
	}
	a.log.Info("backup written", "tenants", len(m.Tenants), "files", len(m.Files), "messages", msgs)
	return nil
}
