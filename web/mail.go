package web

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/index"
	"github.com/mailvault/mailvault/mailparse"
)

// mailboxTree is one readable archive mailbox with its folders.
type mailboxTree struct {
	ID      uint64
	Address string
	Own     bool
	Folders []backend.FolderInfo
}

// row is one line of a message list.
type row struct {
	Folder   uint64
	UID      uint32
	Date     time.Time
	From     []mailparse.Address
	To       []mailparse.Address
	Subject  string
	Size     int64
	Received time.Time
	Err      bool
	// Snippet is the body around the search's words, HTML-escaped by the
	// index with the words in <mark>.
	Snippet template.HTML
	Place   string // mailbox and folder, in a search of every folder
}

// filters is the search form.
type filters struct {
	Q, From, To, Subject, After, Before string
	Attachment                          bool
}

func (f filters) empty() bool {
	return f.Q == "" && f.From == "" && f.To == "" && f.Subject == "" && f.After == "" && f.Before == "" && !f.Attachment
}

// query builds the index query of the form; the same query tree IMAP
// SEARCH and JMAP Email/query compile to.
func (f filters) query() (index.Query, bool) {
	var qs []index.Query
	for _, c := range []struct {
		field index.Field
		s     string
	}{{index.FieldText, f.Q}, {index.FieldFrom, f.From}, {index.FieldTo, f.To}, {index.FieldSubject, f.Subject}} {
		if s := strings.TrimSpace(c.s); s != "" {
			qs = append(qs, index.Text(c.field, s))
		}
	}
	var since, before time.Time
	var err error
	if f.After != "" {
		if since, err = time.Parse(time.DateOnly, f.After); err != nil {
			return index.Query{}, false
		}
	}
	if f.Before != "" {
		if before, err = time.Parse(time.DateOnly, f.Before); err != nil {
			return index.Query{}, false
		}
	}
	if !since.IsZero() || !before.IsZero() {
		qs = append(qs, index.SentDays(since, before))
	}
	if f.Attachment {
		qs = append(qs, index.HasAttachment(true))
	}
	if len(qs) == 0 {
		return index.All(), true
	}
	return index.And(qs...), true
}

func (f filters) values() string {
	v := make([]string, 0, 6)
	for _, kv := range [][2]string{{"q", f.Q}, {"from", f.From}, {"to", f.To}, {"subject", f.Subject}, {"after", f.After}, {"before", f.Before}} {
		if kv[1] != "" {
			v = append(v, kv[0]+"="+url.QueryEscape(kv[1]))
		}
	}
	if f.Attachment {
		v = append(v, "att=1")
	}
	return strings.Join(v, "&")
}

// mail is the main page: the folder tree, and a folder's messages or the
// hits of a search in it, newest first, one page at a time.
func (h *Handler) mail(w http.ResponseWriter, r *http.Request, rq *request) {
	login := rq.se.login
	var tree []mailboxTree
	for _, mb := range rq.t.Readable(login) {
		fs, err := rq.t.Folders(login, mb.ID)
		if err != nil {
			continue
		}
		tree = append(tree, mailboxTree{ID: mb.ID, Address: mb.Address, Own: mb.Own, Folders: fs})
	}
	q := r.URL.Query()
	f := filters{Q: q.Get("q"), From: q.Get("from"), To: q.Get("to"), Subject: q.Get("subject"), After: q.Get("after"), Before: q.Get("before"), Attachment: q.Get("att") != ""}
	data := h.page(rq, map[string]any{"Tree": tree, "F": f, "Back": r.URL.RequestURI()})
	folder := atoi(q.Get("folder"))
	if folder == 0 {
		if !f.empty() {
			h.searchAll(w, r, rq, tree, f, data)
			return
		}
		h.render(w, "mail.html", data)
		return
	}
	snap, err := rq.t.Snapshot(login, folder)
	if err != nil {
		w.WriteHeader(http.StatusNotFound)
		data["NotFound"] = true
		h.render(w, "mail.html", data)
		return
	}
	data["Folder"] = snap.FolderInfo
	data["MayExport"] = mayExport(rq)
	var hits []uint32
	var iq index.Query
	searching := !f.empty()
	if searching {
		var ok bool
		iq, ok = f.query()
		if !ok {
			http.Error(w, "bad date", http.StatusBadRequest)
			return
		}
		hits, err = rq.t.SearchFolder(r.Context(), login, folder, iq)
		if err != nil {
			h.log.Error("web: search", "err", err)
			http.Error(w, "search failed", http.StatusServiceUnavailable)
			return
		}
		data["Searching"] = true
	}
	total := len(snap.UIDs)
	if searching {
		total = len(hits)
	}
	pages := max(1, (total+pageSize-1)/pageSize)
	pg := min(max(int(atoi(q.Get("page"))), 1), pages)
	// Page 1 is the newest pageSize messages.
	hi := total - (pg-1)*pageSize
	lo := max(0, hi-pageSize)
	mids := make([]uint64, 0, hi-lo)
	uids := make([]uint32, 0, hi-lo)
	for i := hi - 1; i >= lo; i-- {
		if !searching {
			uids = append(uids, snap.UIDs[i])
			mids = append(mids, snap.MIDs[i])
			continue
		}
		k, ok := slices.BinarySearch(snap.UIDs, hits[i])
		if !ok {
			continue // expunged since the search
		}
		uids = append(uids, hits[i])
		mids = append(mids, snap.MIDs[k])
	}
	listed, err := rq.t.ListMessages(r.Context(), mids)
	if err != nil {
		http.Error(w, "listing failed", http.StatusServiceUnavailable)
		return
	}
	rows := make([]row, len(listed))
	for i, m := range listed {
		rows[i] = row{Folder: folder, UID: uids[i], Size: m.Size, Received: m.Received, Err: m.Err != nil}
		if e := m.Envelope; e != nil {
			rows[i].Date, rows[i].From, rows[i].To, rows[i].Subject = e.Date, e.From, e.To, e.Subject
		}
		if searching && (f.Q != "" || f.Subject != "") {
			// One page of hits, each read and parsed again: the body text
			// is not stored.
			if _, preview, err := rq.t.Snippet(r.Context(), login, snap.Mailbox, m.MID, iq); err == nil {
				rows[i].Snippet = template.HTML(preview)
			}
		}
	}
	data["Rows"] = rows
	data["Total"] = total
	data["Page"] = pg
	data["Pages"] = pages
	base := "/web/mail?folder=" + q.Get("folder")
	if v := f.values(); v != "" {
		base += "&" + v
	}
	data["Base"] = base
	h.render(w, "mail.html", data)
}

// searchAll searches every folder of every mailbox the user reads, newest
// first, one page at a time, through the same index query as a folder
// search.
func (h *Handler) searchAll(w http.ResponseWriter, r *http.Request, rq *request, tree []mailboxTree, f filters, data map[string]any) {
	login := rq.se.login
	iq, ok := f.query()
	if !ok {
		http.Error(w, "bad date", http.StatusBadRequest)
		return
	}
	var folders []uint64
	for _, mb := range tree {
		for _, fi := range mb.Folders {
			folders = append(folders, fi.ID)
		}
	}
	pg := max(int(atoi(r.URL.Query().Get("page"))), 1)
	var mids []uint64
	total := 0
	if len(folders) > 0 {
		var err error
		mids, total, err = rq.t.Find(r.Context(), login, folders, iq, []index.Sort{{Field: index.SortReceived, Desc: true}}, (pg-1)*pageSize, pageSize)
		if err != nil {
			h.log.Error("web: search", "err", err)
			http.Error(w, "search failed", http.StatusServiceUnavailable)
			return
		}
	}
	// Where each hit lies: its first placement in a mailbox the user reads.
	where := make([]backend.FolderUID, len(mids))
	for _, mb := range tree {
		ms, err := rq.t.Memberships(login, mb.ID, mids)
		if err != nil {
			continue
		}
		for i, in := range ms {
			if where[i].Folder == 0 && len(in) > 0 {
				where[i] = in[0]
			}
		}
	}
	listed, err := rq.t.ListMessages(r.Context(), mids)
	if err != nil {
		http.Error(w, "listing failed", http.StatusServiceUnavailable)
		return
	}
	names := map[uint64]string{}
	mailboxOf := map[uint64]uint64{}
	for _, mb := range tree {
		for _, fi := range mb.Folders {
			names[fi.ID] = mb.Address + "/" + fi.Name
			mailboxOf[fi.ID] = mb.ID
		}
	}
	rows := make([]row, 0, len(listed))
	for i, m := range listed {
		if where[i].Folder == 0 {
			continue
		}
		rw := row{Folder: where[i].Folder, UID: where[i].UID, Size: m.Size, Received: m.Received, Err: m.Err != nil, Place: names[where[i].Folder]}
		if e := m.Envelope; e != nil {
			rw.Date, rw.From, rw.To, rw.Subject = e.Date, e.From, e.To, e.Subject
		}
		if f.Q != "" || f.Subject != "" {
			if _, preview, err := rq.t.Snippet(r.Context(), login, mailboxOf[rw.Folder], m.MID, iq); err == nil {
				rw.Snippet = template.HTML(preview)
			}
		}
		rows = append(rows, rw)
	}
	pages := max(1, (total+pageSize-1)/pageSize)
	data["Everywhere"] = true
	data["Searching"] = true
	data["Rows"] = rows
	data["Total"] = total
	data["Page"] = min(pg, pages)
	data["Pages"] = pages
	data["Base"] = "/web/mail?" + f.values()
	h.render(w, "mail.html", data)
}
