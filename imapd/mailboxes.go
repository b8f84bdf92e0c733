package imapd

import (
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailvault/mailvault/backend"
)

// Folder names: the user's own archive mailbox is the root ("INBOX",
// "Sent", imported "Projects/2019"); every other archive mailbox the user
// may read is under "Archive/<address>/".
const (
	delim        = '/'
	sharedPrefix = "Archive"
)

// The shared namespace prefix is reserved: an own folder whose first level
// is called "Archive" (imported from a client's archive folder, say) is
// shown as "Archive_", one called "Archive_" as "Archive__", and so on, so
// that every IMAP name means one folder whatever the user may read, and an
// own "Archive/<address>/INBOX" is never hidden behind a shared mailbox.

// escapedLevel reports whether a first level is "Archive" followed by one
// or more "_".
func escapedLevel(s string) bool {
	rest, ok := strings.CutPrefix(s, sharedPrefix)
	return ok && rest != "" && strings.Trim(rest, "_") == ""
}

// ownName is the IMAP name of an own folder.
func ownName(folder string) string {
	first, _, _ := strings.Cut(folder, string(delim))
	if first == sharedPrefix || escapedLevel(first) {
		return first + "_" + folder[len(first):]
	}
	return folder
}

// ownFolder is the own folder an IMAP name outside the shared namespace
// stands for; false for a name in the shared namespace.
func ownFolder(name string) (string, bool) {
	first, _, _ := strings.Cut(name, string(delim))
	switch {
	case first == sharedPrefix:
		return "", false
	case escapedLevel(first):
		return first[:len(first)-1] + name[len(first):], true
	}
	return name, true
}

// folderRef is a folder with its IMAP name.
type folderRef struct {
	name    string // IMAP name
	address string // of the archive mailbox
	info    backend.FolderInfo
}

// display names the folder in the audit log.
func (r folderRef) display() string { return r.address + "/" + r.info.Name }

// rootMailbox returns the index in readable of the mailbox shown at the
// root, or -1.
func rootMailbox(readable []backend.MailboxView) int {
	for i, mb := range readable {
		if mb.Own {
			return i
		}
	}
	return -1
}

// resolve finds the folder an IMAP name refers to, among those the user may
// read. Names under Archive/ are folders of other archive mailboxes;
// anything else is a folder of the root mailbox.
func (s *session) resolve(t *backend.Tenant, name string) (folderRef, error) {
	readable := t.Readable(s.login)
	root := rootMailbox(readable)
	own, isOwn := ownFolder(name)
	if rest, ok := strings.CutPrefix(name, sharedPrefix+string(delim)); ok {
		addr, folder, _ := strings.Cut(rest, string(delim))
		addr = strings.ToLower(addr)
		if folder != "" {
			if first, after, _ := strings.Cut(folder, string(delim)); strings.EqualFold(first, backend.FolderInbox) {
				folder = backend.FolderInbox
				if after != "" {
					folder += string(delim) + after
				}
			}
			for i, mb := range readable {
				if i == root || mb.Address != addr {
					continue
				}
				if fi, err := t.FolderByName(s.login, mb.ID, folder); err == nil {
					return folderRef{name: sharedPrefix + string(delim) + addr + string(delim) + folder, address: addr, info: fi}, nil
				}
			}
		}
	}
	if root >= 0 && isOwn {
		if fi, err := t.FolderByName(s.login, readable[root].ID, own); err == nil {
			return folderRef{name: name, address: readable[root].Address, info: fi}, nil
		}
	}
	return folderRef{}, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such folder, or you may not read it"}
}

// listEntry is a LIST line: a folder, or a hierarchy level without one.
type listEntry struct {
	name     string
	ref      *folderRef // nil: \Noselect placeholder
	children bool
	special  imap.MailboxAttr
}

// tree returns every folder the user may read with the hierarchy levels
// between them: own folders first (INBOX first), then Archive/.
func (s *session) tree(t *backend.Tenant) []listEntry {
	readable := t.Readable(s.login)
	root := rootMailbox(readable)
	var out []listEntry
	byName := map[string]int{}
	add := func(e listEntry) {
		if i, ok := byName[e.name]; ok {
			if e.ref != nil {
				out[i].ref, out[i].special = e.ref, e.special
			}
			return
		}
		byName[e.name] = len(out)
		out = append(out, e)
	}
	for i, mb := range readable {
		folders, err := t.Folders(s.login, mb.ID)
		if err != nil {
			continue // access changed in between
		}
		for _, f := range folders {
			name := ownName(f.Name)
			if i != root {
				name = sharedPrefix + string(delim) + mb.Address + string(delim) + f.Name
			}
			ref := &folderRef{name: name, address: mb.Address, info: f}
			e := listEntry{name: ref.name, ref: ref}
			if i == root && f.Special != "" {
				e.special = imap.MailboxAttr(f.Special)
			}
			add(e)
		}
	}
	// Hierarchy levels without a folder of their own.
	for i := 0; i < len(out); i++ {
		name := out[i].name
		for j := strings.LastIndexByte(name, delim); j > 0; j = strings.LastIndexByte(name[:j], delim) {
			add(listEntry{name: name[:j]})
		}
	}
	for i := range out {
		if j := strings.LastIndexByte(out[i].name, delim); j > 0 {
			out[byName[out[i].name[:j]]].children = true
		}
	}
	group := func(e listEntry) int {
		switch {
		case e.name == backend.FolderInbox:
			return 0
		case e.name == sharedPrefix || strings.HasPrefix(e.name, sharedPrefix+string(delim)):
			return 2
		}
		return 1
	}
	slices.SortFunc(out, func(a, b listEntry) int {
		if ga, gb := group(a), group(b); ga != gb {
			return ga - gb
		}
		return strings.Compare(a.name, b.name)
	})
	return out
}

// canonicalInbox writes a leading "inbox" of a LIST pattern or reference as
// INBOX, which is case-insensitive.
func canonicalInbox(s string) string {
	if len(s) >= 5 && strings.EqualFold(s[:5], backend.FolderInbox) && (len(s) == 5 || s[5] == delim) {
		return backend.FolderInbox + s[5:]
	}
	return s
}

// List lists the folders matching any of patterns.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		// LIST "" "": the hierarchy delimiter.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	t, err := s.tenantHandle()
	if err != nil {
		return err
	}
	entries := s.tree(t)
	ref = canonicalInbox(ref)
	for i := range patterns {
		patterns[i] = canonicalInbox(patterns[i])
	}
	for _, e := range entries {
		if !slices.ContainsFunc(patterns, func(p string) bool { return imapserver.MatchList(e.name, delim, ref, p) }) {
			continue
		}
		if options.SelectSpecialUse && e.special == "" {
			continue
		}
		if options.SelectSubscribed && e.ref == nil && !options.SelectRecursiveMatch {
			continue
		}
		data := &imap.ListData{Delim: delim, Mailbox: e.name}
		if e.ref == nil {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		} else if options.SelectSubscribed || options.ReturnSubscribed {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if e.children {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if e.special != "" {
			data.Attrs = append(data.Attrs, e.special)
		}
		if options.ReturnStatus != nil && e.ref != nil {
			st, err := s.status(t, *e.ref, options.ReturnStatus)
			if err != nil {
				return err
			}
			data.Status = st
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

// Status reports on a folder; every requested item is filled, as the
// library dereferences them.
func (s *session) Status(mailbox string, options *imap.StatusOptions) (*imap.StatusData, error) {
	t, err := s.tenantHandle()
	if err != nil {
		return nil, err
	}
	ref, err := s.resolve(t, mailbox)
	if err != nil {
		return nil, err
	}
	return s.status(t, ref, options)
}

func (s *session) status(t *backend.Tenant, ref folderRef, options *imap.StatusOptions) (*imap.StatusData, error) {
	info := ref.info
	n := uint32(info.Messages)
	var zero uint32
	var zero64 int64
	data := &imap.StatusData{
		Mailbox:        ref.name,
		NumMessages:    &n,
		NumRecent:      &zero,
		UIDNext:        imap.UID(max(info.UIDNext, 1)),
		UIDValidity:    info.UIDValidity,
		NumDeleted:     &zero,
		Size:           &info.Size,
		DeletedStorage: &zero64,
	}
	unseen := uint32(0)
	if options.NumUnseen {
		overlay, err := t.FlagOverlay(s.login, info.ID)
		if err != nil {
			return nil, s.fail("status", err)
		}
		unseen = uint32(countUnseen(overlay, info.Messages))
	}
	data.NumUnseen = &unseen
	if options.HighestModSeq {
		var err error
		if data.HighestModSeq, err = t.HighestModSeq(s.login, info.ID); err != nil {
			return nil, s.fail("status", err)
		}
	}
	return data, nil
}

// countUnseen counts the messages without \Seen of a folder of n messages
// with the given flag overlay.
func countUnseen(overlay map[uint32][]string, n int) int {
	unseen := 0
	if !slices.Contains(backend.DefaultFlags(), backend.FlagSeen) {
		unseen = n - len(overlay)
	}
	for _, fl := range overlay {
		if !slices.Contains(fl, backend.FlagSeen) {
			unseen++
		}
	}
	return unseen
}
