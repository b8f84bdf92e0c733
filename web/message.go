package web

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/microcosm-cc/bluemonday"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/mailparse"
)

// frameCSP is the policy of a message's HTML body: nothing is fetched
// (remote images, fonts, styles), nothing runs, and the document is in a
// unique origin; only inline styles and data: images show.
const frameCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"

// attachment is one downloadable part.
type attachment struct {
	Path string
	Name string
	Type string
	Size int64
}

// opened is a message a user may read, resolved from folder and UID.
type opened struct {
	folder uint64
	uid    uint32
	mid    uint64
	sum    *mailparse.Summary
	info   backend.FolderInfo
}

// open resolves the folder and UID of the URL through the user's snapshot
// of the folder, which is where backend checks the right to read it: a
// folder of another mailbox or tenant is simply not found.
func (h *Handler) open(w http.ResponseWriter, r *http.Request, rq *request) (*opened, bool) {
	folder := atoi(r.PathValue("folder"))
	uid := atoi(r.PathValue("uid"))
	snap, err := rq.t.Snapshot(rq.se.login, folder)
	var k int
	ok := err == nil && uid > 0 && uid <= 1<<32-1
	if ok {
		k, ok = slices.BinarySearch(snap.UIDs, uint32(uid))
	}
	if !ok {
		http.Error(w, text(rq.lang, "notfound"), http.StatusNotFound)
		return nil, false
	}
	mid := snap.MIDs[k]
	sum, err := rq.t.Summary(r.Context(), mid)
	if err != nil {
		h.log.Error("web: summary", "mid", mid, "err", err)
		http.Error(w, "message unavailable", http.StatusServiceUnavailable)
		return nil, false
	}
	if rq.t.IsCompliance(rq.se.login) {
		rq.t.Audit(r.Context(), rq.se.login, "web-read", fmt.Sprintf("folder %d uid %d", folder, uid))
	}
	return &opened{folder: folder, uid: uint32(uid), mid: mid, sum: sum, info: snap.FolderInfo}, true
}

// bodies finds the first plain and the first HTML body part and the
// attachments, with their paths ("1.2": children numbered from 1).
func bodies(root *mailparse.Part) (plain, html *mailparse.Part, atts []attachment) {
	var walk func(p *mailparse.Part, path string)
	walk = func(p *mailparse.Part, path string) {
		if p.Type == "multipart" {
			for i, c := range p.Children {
				walk(c, strings.TrimPrefix(path+"."+strconv.Itoa(i+1), "."))
			}
			return
		}
		if p.Type == "text" && !p.IsAttachment() {
			switch {
			case p.Subtype == "plain" && plain == nil:
				plain = p
				return
			case p.Subtype == "html" && html == nil:
				html = p
				return
			}
		}
		if path == "" {
			path = "1"
		}
		name := p.FileName()
		if name == "" {
			name = "part-" + path
		}
		atts = append(atts, attachment{Path: path, Name: name, Type: p.Type + "/" + p.Subtype, Size: p.DecodedSize})
	}
	walk(root, "")
	return plain, html, atts
}

// partAt finds the leaf part of a path from bodies.
func partAt(root *mailparse.Part, path string) *mailparse.Part {
	p := root
	if root.Type != "multipart" {
		if path == "1" {
			return root
		}
		return nil
	}
	for _, s := range strings.Split(path, ".") {
		i, err := strconv.Atoi(s)
		if err != nil || p.Type != "multipart" || i < 1 || i > len(p.Children) {
			return nil
		}
		p = p.Children[i-1]
	}
	return p
}

// decoded is a part's body, transfer-decoded, as UTF-8 when it is text.
func (h *Handler) decoded(ctx context.Context, t *backend.Tenant, mid uint64, p *mailparse.Part, raw []byte) []byte {
	if p.End > int64(len(raw)) || p.BodyStart > p.End {
		return nil
	}
	b, _, _ := mailparse.AppendTransferDecoded(nil, raw[p.BodyStart:p.End], p.Encoding)
	if p.Type == "text" {
		s, _ := mailparse.ToUTF8(b, p.Params["charset"])
		return []byte(s)
	}
	return b
}

func (h *Handler) message(w http.ResponseWriter, r *http.Request, rq *request) {
	m, ok := h.open(w, r, rq)
	if !ok {
		return
	}
	data := h.page(rq, map[string]any{"Env": m.sum.Envelope, "Folder": m.folder, "UID": m.uid, "Back": r.URL.RequestURI()})
	if m.sum.Structure != nil {
		plain, html, atts := bodies(m.sum.Structure)
		data["Attachments"] = atts
		data["HasHTML"] = html != nil
		if plain != nil {
			raw, err := rq.t.RawMessage(r.Context(), m.mid)
			if err != nil {
				http.Error(w, "message unavailable", http.StatusServiceUnavailable)
				return
			}
			data["Plain"] = string(h.decoded(r.Context(), rq.t, m.mid, plain, raw))
		}
	}
	info, err := rq.t.Message(m.mid)
	if err == nil {
		data["Size"] = info.Size
		data["Received"] = info.Received
	}
	h.render(w, "message.html", data)
}

// htmlBody is the sanitised HTML body, for the sandboxed frame of the
// message page.
func (h *Handler) htmlBody(w http.ResponseWriter, r *http.Request, rq *request) {
	m, ok := h.open(w, r, rq)
	if !ok {
		return
	}
	var html *mailparse.Part
	if m.sum.Structure != nil {
		_, html, _ = bodies(m.sum.Structure)
	}
	if html == nil {
		http.Error(w, text(rq.lang, "notfound"), http.StatusNotFound)
		return
	}
	raw, err := rq.t.RawMessage(r.Context(), m.mid)
	if err != nil {
		http.Error(w, "message unavailable", http.StatusServiceUnavailable)
		return
	}
	clean := h.policy.SanitizeBytes(h.decoded(r.Context(), rq.t, m.mid, html, raw))
	hd := w.Header()
	hd.Set("Content-Security-Policy", frameCSP)
	hd.Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte("<!doctype html><meta charset=utf-8><base target=_blank>"))
	w.Write(clean)
}

// sanitizer keeps the formatting of mail (tables, inline styles, images)
// and drops scripts, handlers, forms and frames. Images keep their source:
// the frame's policy blocks every remote one.
func sanitizer() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowStyling()
	p.AllowAttrs("style").Globally()
	p.AllowAttrs("bgcolor", "color", "align", "valign", "width", "height", "border", "cellpadding", "cellspacing").Globally()
	p.AllowElements("font", "center")
	p.AllowAttrs("face", "size").OnElements("font")
	p.RequireNoReferrerOnLinks(true)
	return p
}

// raw is the message as archived: shown as text ("show original") or,
// with ?download=1, as an .eml file.
func (h *Handler) raw(w http.ResponseWriter, r *http.Request, rq *request) {
	m, ok := h.open(w, r, rq)
	if !ok {
		return
	}
	raw, err := rq.t.RawMessage(r.Context(), m.mid)
	if err != nil {
		http.Error(w, "message unavailable", http.StatusServiceUnavailable)
		return
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if r.URL.Query().Get("download") != "" {
		hd.Set("Content-Type", "message/rfc822")
		hd.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": fmt.Sprintf("message-%d-%d.eml", m.folder, m.uid)}))
	} else {
		hd.Set("Content-Type", "text/plain; charset=utf-8")
	}
	hd.Set("Content-Length", strconv.Itoa(len(raw)))
	w.Write(raw)
}

// part downloads one attachment, decoded; always as a download, so that
// no attachment renders in the archive's origin.
func (h *Handler) part(w http.ResponseWriter, r *http.Request, rq *request) {
	m, ok := h.open(w, r, rq)
	if !ok {
		return
	}
	var p *mailparse.Part
	if m.sum.Structure != nil {
		p = partAt(m.sum.Structure, r.PathValue("path"))
	}
	if p == nil || p.Type == "multipart" {
		http.Error(w, text(rq.lang, "notfound"), http.StatusNotFound)
		return
	}
	raw, err := rq.t.RawMessage(r.Context(), m.mid)
	if err != nil {
		http.Error(w, "message unavailable", http.StatusServiceUnavailable)
		return
	}
	body := h.decoded(r.Context(), rq.t, m.mid, p, raw)
	name := p.FileName()
	if name == "" {
		name = "part-" + r.PathValue("path")
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// retention shows the retention and holds of the message as it lies in
// this folder; its placements elsewhere are not the user's to see.
func (h *Handler) retention(w http.ResponseWriter, r *http.Request, rq *request) {
	m, ok := h.open(w, r, rq)
	if !ok {
		return
	}
	ret, err := rq.t.EffectiveRetention(r.Context(), m.mid)
	if err != nil {
		http.Error(w, text(rq.lang, "notfound"), http.StatusNotFound)
		return
	}
	var address string
	for _, mb := range rq.t.Readable(rq.se.login) {
		if mb.ID == m.info.Mailbox {
			address = mb.Address
		}
	}
	data := h.page(rq, map[string]any{"Env": m.sum.Envelope, "Folder": m.folder, "UID": m.uid, "Back": r.URL.RequestURI(),
		"Received": ret.Received, "Archived": ret.Archived, "IndexPending": ret.IndexPending})
	for _, p := range ret.Placements {
		if p.Mailbox == address && p.Folder == m.info.Name && p.UID == m.uid {
			data["P"] = p
		}
	}
	h.render(w, "retention.html", data)
}
