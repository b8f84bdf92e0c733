package backend

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailvault/mailvault/index"
	"github.com/mailvault/mailvault/mailfile"
	"github.com/mailvault/mailvault/mailparse"
)

// ExportFormat is how an export is written.
type ExportFormat string

// Export formats.
const (
	// ExportEML is a ZIP archive of one .eml file per message, in
	// <mailbox>/<folder path>/<uid>.eml.
	ExportEML ExportFormat = "eml"
	// ExportMbox is one mboxrd stream of every message of the scope.
	ExportMbox ExportFormat = "mbox"
	// ExportZ3 is a GoBD Z3 data carrier: a ZIP of the EML files, index.xml
	// in the GDPdU Beschreibungsstandard with its DTD, the message table and
	// the scope's audit log entries as CSV, and a SHA-256 manifest of every
	// file with a detached CMS signature by the tenant's signing key.
	ExportZ3 ExportFormat = "z3"
)

// ParseExportFormat checks a format name.
func ParseExportFormat(s string) (ExportFormat, error) {
	switch f := ExportFormat(strings.ToLower(s)); f {
	case ExportEML, ExportMbox, ExportZ3:
		return f, nil
	}
	return "", fmt.Errorf("%w export format %q: want eml, mbox or z3", ErrInvalid, s)
}

// ExportScope selects what an export holds: the messages of the named
// archive mailboxes (or of every mailbox), optionally of one folder,
// received within [Since, Until) and matching a search.
type ExportScope struct {
	Mailboxes []string  `json:"mailboxes,omitempty"` // addresses; empty with All
	All       bool      `json:"all,omitempty"`       // every archive mailbox
	Folder    string    `json:"folder,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	Until     time.Time `json:"until,omitzero"`
	// Search terms; all given must match (as the IMAP SEARCH TEXT, FROM,
	// TO and SUBJECT keys do).
	Text    string `json:"text,omitempty"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Subject string `json:"subject,omitempty"`
	// Auditor takes the mailboxes and period of this auditor account's
	// scope (Mailboxes, All, Since and Until must then be empty).
	Auditor string `json:"auditor,omitempty"`
}

// String is the scope as the audit log records it.
func (s ExportScope) String() string {
	var b strings.Builder
	if s.Auditor != "" {
		b.WriteString("auditor=" + s.Auditor + " ")
	}
	if s.All {
		b.WriteString("mailboxes=*")
	} else {
		b.WriteString("mailboxes=" + strings.Join(s.Mailboxes, ","))
	}
	add := func(k, v string) {
		if v != "" {
			b.WriteString(" " + k + "=" + strconv.Quote(v))
		}
	}
	add("folder", s.Folder)
	if !s.Since.IsZero() {
		add("since", s.Since.UTC().Format(time.RFC3339))
	}
	if !s.Until.IsZero() {
		add("until", s.Until.UTC().Format(time.RFC3339))
	}
	add("text", s.Text)
	add("from", s.From)
	add("to", s.To)
	add("subject", s.Subject)
	return b.String()
}

func (s ExportScope) query() (index.Query, bool) {
	var qs []index.Query
	for _, c := range []struct {
		f index.Field
		v string
	}{{index.FieldText, s.Text}, {index.FieldFrom, s.From}, {index.FieldTo, s.To}, {index.FieldSubject, s.Subject}} {
		if strings.TrimSpace(c.v) != "" {
			qs = append(qs, index.Text(c.f, c.v))
		}
	}
	return index.And(qs...), len(qs) > 0
}

// ExportRequest is one export.
type ExportRequest struct {
	Scope  ExportScope
	Format ExportFormat
	// By is the login of the tenant user asking, who must hold the admin or
	// compliance role; empty for the provider (the server's operator).
	By string
	// Actor is who the audit log names.
	Actor string
	// Started, if not nil, is called with the scope's totals once it is
	// resolved, before anything is written.
	Started func(total ExportResult)
}

// ExportResult counts what an export wrote.
type ExportResult struct {
	Messages int   `json:"messages"`
	Bytes    int64 `json:"bytes"` // archived bytes of the messages
}

// exportItem is one placement of the scope; the list of them is the only
// part of an export that grows with its size (16 bytes a message).
type exportItem struct {
	mid    uint64
	folder uint32 // index into exportPlan.folders
	uid    uint32
}

type exportPlan struct {
	folders []exportFolder
	items   []exportItem
	bytes   int64
	mboxes  []uint64
}

type exportFolder struct {
	prefix  string // archive path prefix: "<mailbox>/<folder>/"
	mailbox string
	name    string
}

// MayExport reports whether login may run exports: admins and compliance
// users of the tenant.
func (t *Tenant) MayExport(login string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	u := t.users[login]
	if u == nil || u.Disabled {
		return false
	}
	roles := t.rolesLocked(login)
	return slices.Contains(roles, RoleAdmin) || slices.Contains(roles, RoleCompliance)
}

// plan resolves a scope to its placements, in mailbox, folder and UID
// order.
func (t *Tenant) plan(ctx context.Context, s ExportScope) (*exportPlan, error) {
	if s.Auditor != "" {
		var err error
		if s, err = t.auditorScope(s); err != nil {
			return nil, err
		}
	}
	if !s.All && len(s.Mailboxes) == 0 {
		return nil, fmt.Errorf("%w export scope: name archive mailboxes or all", ErrInvalid)
	}
	if !s.Since.IsZero() && !s.Until.IsZero() && !s.Until.After(s.Since) {
		return nil, fmt.Errorf("%w export scope: until must be after since", ErrInvalid)
	}
	q, search := s.query()
	type folderRef struct {
		id     uint64
		folder exportFolder
		uids   []uint32
		mids   []uint64
	}
	var refs []folderRef
	p := &exportPlan{}
	t.mu.RLock()
	var ids []uint64
	if s.All {
		for id := range t.mailboxes {
			ids = append(ids, id)
		}
	} else {
		for _, a := range s.Mailboxes {
			addr, err := NormalizeAddress(a)
			id, ok := t.addrs[addr]
			if err != nil || !ok {
				t.mu.RUnlock()
				return nil, fmt.Errorf("archive mailbox %s: %w", a, ErrNotFound)
			}
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	slices.SortFunc(ids, func(a, b uint64) int { return strings.Compare(t.mailboxes[a].Address, t.mailboxes[b].Address) })
	p.mboxes = ids
	for _, id := range ids {
		mb := t.mailboxes[id]
		for _, f := range t.sortedFolders(id) {
			if s.Folder != "" && f.Name != s.Folder {
				continue
			}
			n := len(f.uids)
			refs = append(refs, folderRef{f.ID, exportFolder{zipPath(mb.Address) + "/" + zipPath(f.Name) + "/", mb.Address, f.Name}, f.uids[:n:n], f.mids[:n:n]})
		}
	}
	since, until := int64(-1<<63), int64(1<<63-1)
	if !s.Since.IsZero() {
		since = s.Since.Unix()
	}
	if !s.Until.IsZero() {
		until = s.Until.Unix()
	}
	t.mu.RUnlock()
	if s.Folder != "" && len(refs) == 0 {
		return nil, fmt.Errorf("folder %q in the export scope: %w", s.Folder, ErrNotFound)
	}
	for _, r := range refs {
		var hits []uint32
		if search {
			var err error
			if hits, err = t.ix.SearchFolder(ctx, r.id, q); err != nil {
				return nil, fmt.Errorf("export search in folder %d: %w", r.id, err)
			}
		}
		fi := uint32(len(p.folders))
		p.folders = append(p.folders, r.folder)
		t.mu.RLock()
		for i, uid := range r.uids {
			if search {
				if _, ok := slices.BinarySearch(hits, uid); !ok {
					continue
				}
			}
			m := &t.msgs[r.mids[i]-1]
			if m.missing || m.deleted || m.received < since || m.received >= until {
				continue
			}
			p.items = append(p.items, exportItem{mid: r.mids[i], folder: fi, uid: uid})
			p.bytes += m.size
		}
		t.mu.RUnlock()
	}
	return p, nil
}

// Export writes the messages of a scope to w as the request's format,
// streaming: memory does not grow with the messages' bytes. Every
// message is the archived bytes, checked against their hash on the way
// out. The export is audited with its actor, scope and count, also when
// it fails part way.
func (t *Tenant) Export(ctx context.Context, req ExportRequest, w io.Writer) (res ExportResult, err error) {
	t.touch()
	if req.By != "" && !t.MayExport(req.By) {
		return res, fmt.Errorf("%w: exports need the admin or compliance role", ErrDenied)
	}
	p, err := t.plan(ctx, req.Scope)
	if err != nil {
		return res, err
	}
	if req.Started != nil {
		req.Started(ExportResult{Messages: len(p.items), Bytes: p.bytes})
	}
	release := t.Hold()
	defer release()
	defer func() {
		detail := fmt.Sprintf("format=%s %s messages=%d bytes=%d", req.Format, req.Scope, res.Messages, res.Bytes)
		if err != nil {
			detail += fmt.Sprintf(" of %d: failed: %v", len(p.items), err)
		}
		t.Audit(ctx, req.Actor, "export", detail)
	}()
	switch req.Format {
	case ExportEML:
		err = t.exportZip(ctx, p, w, &res)
	case ExportMbox:
		err = t.exportMbox(ctx, p, w, &res)
	case ExportZ3:
		err = t.exportZ3(ctx, p, req.Scope, w, &res)
	default:
		err = fmt.Errorf("%w export format %q", ErrInvalid, req.Format)
	}
	return res, err
}

func (t *Tenant) exportZip(ctx context.Context, p *exportPlan, w io.Writer, res *ExportResult) error {
	zw, err := newZipWriter(w, true)
	if err != nil {
		return err
	}
	defer zw.abort()
	var name []byte
	err = t.eachMessage(ctx, p.items, func(it exportItem, raw []byte, info MessageInfo) error {
		name = strconv.AppendUint(append(name[:0], p.folders[it.folder].prefix...), uint64(it.uid), 10)
		name = append(name, ".eml"...)
		if err := zw.add(string(name), info.Received, raw); err != nil {
			return fmt.Errorf("write export: %w", err)
		}
		res.Messages++
		res.Bytes += int64(len(raw))
		return nil
	})
	if err != nil {
		return err
	}
	if err := zw.close(); err != nil {
		return fmt.Errorf("write export: %w", err)
	}
	return nil
}

func (t *Tenant) exportMbox(ctx context.Context, p *exportPlan, w io.Writer, res *ExportResult) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	err := t.eachMessage(ctx, p.items, func(it exportItem, raw []byte, info MessageInfo) error {
		sender := ""
		if s, err := t.Summary(ctx, it.mid); err == nil {
			sender = firstAddress(s.Envelope.From)
		}
		if err := mailfile.WriteMboxrd(bw, raw, sender, info.Received); err != nil {
			return err
		}
		res.Messages++
		res.Bytes += int64(len(raw))
		return nil
	})
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write export: %w", err)
	}
	return nil
}

func firstAddress(as []mailparse.Address) string {
	for _, a := range as {
		if a.Mailbox != "" {
			if a.Host == "" {
				return a.Mailbox
			}
			return a.Mailbox + "@" + a.Host
		}
	}
	return ""
}

// exportRaw reads a message for an export; a message that cannot be read
// whole ends the export, as an export must never silently lack one.
func (t *Tenant) exportRaw(ctx context.Context, mid uint64) ([]byte, MessageInfo, error) {
	info, err := t.Message(mid)
	if err != nil {
		return nil, info, err
	}
	raw, err := t.RawMessage(ctx, mid)
	if err != nil {
		return nil, info, fmt.Errorf("export: %w (run verify)", err)
	}
	return raw, info, nil
}

// auditorScope fills in the mailboxes and period of the auditor account
// s names.
func (t *Tenant) auditorScope(s ExportScope) (ExportScope, error) {
	if s.All || len(s.Mailboxes) > 0 || !s.Since.IsZero() || !s.Until.IsZero() {
		return s, fmt.Errorf("%w export scope: an auditor's scope replaces mailboxes, all, since and until", ErrInvalid)
	}
	u, err := t.User(s.Auditor)
	if err != nil || u.Scope == nil {
		return s, fmt.Errorf("auditor account %s: %w", s.Auditor, ErrNotFound)
	}
	s.Mailboxes, s.All, s.Since, s.Until = u.Scope.Mailboxes, u.Scope.All, u.Scope.Since, u.Scope.Until
	return s, nil
}

// exportReaders read messages ahead of the writer: blob reads (disk),
// decryption and decompression overlap with the writer's compression.
const exportReaders = 4

// eachMessage calls fn for every item in order with its archived bytes,
// read by exportReaders goroutines into a ring of as many slots, so that
// at most that many messages are in memory and nothing is allocated per
// message beyond what reading it takes. fn must not keep raw.
func (t *Tenant) eachMessage(ctx context.Context, items []exportItem, fn func(it exportItem, raw []byte, info MessageInfo) error) error {
	type slot struct {
		raw  []byte
		info MessageInfo
		err  error
		done chan struct{}
	}
	w := min(exportReaders, len(items))
	slots := make([]slot, w)
	for i := range slots {
		slots[i].done = make(chan struct{}, 1)
	}
	jobs := make(chan int, w)
	var wg sync.WaitGroup
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				s := &slots[i%w]
				s.raw, s.info, s.err = t.exportRaw(ctx, items[i].mid)
				s.done <- struct{}{}
			}
		}()
	}
	defer wg.Wait()
	defer close(jobs)
	for i := range w {
		jobs <- i
	}
	for i, it := range items {
		s := &slots[i%w]
		<-s.done
		if s.err != nil {
			return s.err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(it, s.raw, s.info); err != nil {
			return err
		}
		s.raw = nil
		if i+w < len(items) {
			jobs <- i + w
		}
	}
	return nil
}
