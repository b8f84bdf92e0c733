package jmap

import (
	"bytes"
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/mailparse"
)

// serveDownload serves /jmap/download/{accountId}/{blobId}/{name}?type=:
// the whole message ("B<MID>") or a transfer-decoded body part
// ("B<MID>-<part>"), with Range support. A blob is found only through an
// account holding its message.
func (h *Handler) serveDownload(w http.ResponseWriter, r *http.Request, u *user) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, downloadPrefix), "/", 3)
	if len(parts) != 3 {
		http.NotFound(w, r)
		return
	}
	rq := &request{h: h, ctx: r.Context(), u: u}
	acct, err := rq.account(parts[0])
	if err != nil {
		http.NotFound(w, r)
		return
	}
	mid, path, ok := parseBlobID(parts[1])
	if !ok {
		http.NotFound(w, r)
		return
	}
	in, err := u.t.Memberships(u.login, acct.ID, []uint64{mid})
	if err != nil || in[0] == nil {
		http.NotFound(w, r)
		return
	}
	info, err := u.t.Message(mid)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	data, err := u.t.RawMessage(r.Context(), mid)
	if err == nil && path != nil {
		var s *mailparse.Summary
		if s, err = u.t.Summary(r.Context(), mid); err == nil {
			p := partAt(s.Structure, path)
			if p == nil || p.End > int64(len(data)) {
				http.NotFound(w, r)
				return
			}
			data, _ = transferDecode(data[p.BodyStart:p.End], p.Encoding)
		}
	}
	if err != nil {
		h.log.Error("jmap download", "blob", parts[1], "user", u.key(), "err", err)
		status := http.StatusInternalServerError
		if errors.Is(err, backend.ErrNotFound) {
			status = http.StatusNotFound
		}
		http.Error(w, http.StatusText(status), status)
		return
	}
	ctype := "application/octet-stream"
	if t := r.URL.Query().Get("type"); t != "" {
		if mt, params, err := mime.ParseMediaType(t); err == nil {
			ctype = mime.FormatMediaType(mt, params)
		}
	}
	hd := w.Header()
	hd.Set("Content-Type", ctype)
	hd.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": parts[2]}))
	// Blobs never change; mail content must not run as a page of ours.
	hd.Set("Cache-Control", "private, max-age=31536000, immutable")
	hd.Set("ETag", `"`+parts[1]+`"`)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	if r.Method == http.MethodGet {
		u.audit(r.Context(), "jmap-download", acct.Address+" "+parts[1])
	}
	http.ServeContent(w, r, "", info.Received, bytes.NewReader(data))
}

// partAt finds the leaf part a blob path names; nil if there is none.
func partAt(root *mailparse.Part, path []int) *mailparse.Part {
	if root == nil {
		return nil
	}
	if root.Type != "multipart" {
		if len(path) == 1 && path[0] == 1 {
			return root
		}
		return nil
	}
	p := root
	for _, n := range path {
		if p.Type != "multipart" || n > len(p.Children) {
			return nil
		}
		p = p.Children[n-1]
	}
	if p.Type == "multipart" {
		return nil
	}
	return p
}
