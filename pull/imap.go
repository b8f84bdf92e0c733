package pull

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailvault/mailvault/backend"
)

// Fetch sizes: UIDs per FETCH command and messages being ingested at once.
const (
	fetchChunk = 500
	ingestJobs = 32
)

func (s *Puller) dialIMAP(prof *Profile) (*imapclient.Client, error) {
	addr := net.JoinHostPort(prof.Host, strconv.Itoa(prof.port()))
	opts := &imapclient.Options{Dialer: &net.Dialer{Timeout: s.dialWait}}
	if prof.Security != SecurityNone {
		cfg, err := tlsConfig(prof)
		if err != nil {
			return nil, err
		}
		opts.TLSConfig = cfg
	}
	var c *imapclient.Client
	var err error
	switch prof.Security {
	case SecurityTLS:
		c, err = imapclient.DialTLS(addr, opts)
	case SecuritySTARTTLS:
		c, err = imapclient.DialStartTLS(addr, opts)
	default:
		c, err = imapclient.DialInsecure(addr, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to %s (%s): %w", addr, prof.Security, err)
	}
	return c, nil
}

func tlsConfig(prof *Profile) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: prof.Host, MinVersion: tls.VersionTLS12}
	if prof.CAFile != "" {
		pem, err := os.ReadFile(prof.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", prof.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

type target struct {
	id    uint64
	owner string
}

func findMailbox(t *backend.Tenant, addr string) (target, bool) {
	for _, m := range t.Mailboxes() {
		for _, a := range m.Addresses() {
			if strings.EqualFold(a, addr) {
				return target{m.ID, m.Owner}, true
			}
		}
	}
	return target{}, false
}

// sourceFolder is a folder of the source server to pull.
type sourceFolder struct {
	name, archive string
}

func (s *Puller) runIMAP(ctx context.Context, t *backend.Tenant, prof *Profile, pass string, st *State, rep *Report, pr *Progress) error {
	mb, ok := findMailbox(t, prof.Mailbox)
	if !ok {
		return fmt.Errorf("archive mailbox %s: %w", prof.Mailbox, backend.ErrNotFound)
	}
	c, err := s.dialIMAP(prof)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Login(prof.user(), pass).Wait(); err != nil {
		return fmt.Errorf("log in to %s as %s: %w", prof.Host, prof.user(), err)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return fmt.Errorf("list folders of %s: %w", prof.user(), err)
	}
	var folders []sourceFolder
	for _, l := range list {
		if slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) || slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		name := l.Mailbox
		if strings.EqualFold(name, "INBOX") {
			name = "INBOX"
		}
		if l.Delim != 0 && l.Delim != '/' {
			name = strings.ReplaceAll(name, string(l.Delim), "/")
		}
		archive, err := backend.CleanFolderName(name)
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("folder %q: %v", l.Mailbox, err))
			continue
		}
		junk := slices.Contains(l.Attrs, imap.MailboxAttrTrash) || slices.Contains(l.Attrs, imap.MailboxAttrJunk)
		if prof.wanted(archive, junk) {
			folders = append(folders, sourceFolder{l.Mailbox, archive})
		}
	}
	slices.SortFunc(folders, func(a, b sourceFolder) int { return strings.Compare(a.archive, b.archive) })
	for _, f := range folders {
		pr.Folder.Store(&f.archive)
		fr, err := s.pullFolder(ctx, c, t, prof, mb, f, st, pr)
		rep.Folders = append(rep.Folders, fr.FolderReport)
		rep.Fetched += fr.Fetched
		rep.Archived += fr.Archived
		rep.Duplicates += fr.Duplicates
		rep.Errors = append(rep.Errors, fr.errs...)
		if err != nil {
			return err
		}
	}
	if err := c.Logout().Wait(); err != nil && ctx.Err() == nil {
		s.log.Debug("pull logout", "err", err)
	}
	return ctx.Err()
}

type folderResult struct {
	FolderReport
	errs []string
}

// pullFolder fetches the folder's messages above its last archived UID in
// UID order, ingests them in that order and moves the folder's state on
// after every chunk that was archived whole.
func (s *Puller) pullFolder(ctx context.Context, c *imapclient.Client, t *backend.Tenant, prof *Profile, mb target, f sourceFolder, st *State, pr *Progress) (folderResult, error) {
	fr := folderResult{FolderReport: FolderReport{Source: f.name, Archive: f.archive}}
	sel, err := c.Select(f.name, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return fr, fmt.Errorf("select %q: %w", f.name, err)
	}
	fs := st.Folders[f.name]
	if fs.UIDValidity != sel.UIDValidity {
		// A new folder, or one the server renumbered: from the start; dedup
		// keeps the messages archived before from being stored again.
		fr.Restarted = fs.UIDValidity != 0
		fs = FolderState{UIDValidity: sel.UIDValidity}
	}
	if sel.NumMessages == 0 || (sel.UIDNext != 0 && uint32(sel.UIDNext) <= fs.LastUID+1) {
		st.Folders[f.name] = fs
		return fr, nil
	}
	var set imap.UIDSet
	set.AddRange(imap.UID(fs.LastUID+1), 0)
	sd, err := c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{set}}, nil).Wait()
	if err != nil {
		return fr, fmt.Errorf("search %q: %w", f.name, err)
	}
	uids := sd.AllUIDs()
	// "n:*" always matches the last message, archived or not.
	uids = slices.DeleteFunc(uids, func(u imap.UID) bool { return uint32(u) <= fs.LastUID })
	slices.Sort(uids)
	for len(uids) > 0 {
		n := min(len(uids), fetchChunk)
		chunk := uids[:n]
		uids = uids[n:]
		last, err := s.pullChunk(ctx, c, t, prof, mb, f, chunk, &fr, pr)
		if last > fs.LastUID {
			fs.LastUID = last
			st.Folders[f.name] = fs
			if err := saveState(context.WithoutCancel(ctx), t, prof.Name, st); err != nil {
				return fr, err
			}
		}
		if err != nil {
			return fr, err
		}
		if last < uint32(chunk[len(chunk)-1]) {
			// A message failed: later runs try it again, so the state
			// stays before it.
			break
		}
	}
	st.Folders[f.name] = fs
	return fr, nil
}

// pullChunk fetches and ingests the given UIDs and returns the highest UID
// below which every message is durably archived.
func (s *Puller) pullChunk(ctx context.Context, c *imapclient.Client, t *backend.Tenant, prof *Profile, mb target, f sourceFolder, uids []imap.UID, fr *folderResult, pr *Progress) (uint32, error) {
	cmd := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	type outcome struct {
		uid   uint32
		res   backend.IngestResult
		flags []string
		err   error
	}
	results := make([]outcome, 0, len(uids))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, ingestJobs)
	turns := backend.NewTurns()
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		buf, err := msg.Collect()
		if err != nil {
			break // the command's error comes from Close
		}
		if len(buf.BodySection) == 0 {
			continue
		}
		raw := buf.BodySection[0].Bytes
		pr.Fetched.Add(1)
		fr.Fetched++
		flags := keptFlags(buf.Flags)
		src := backend.Source{Mailbox: prof.Mailbox, Folder: f.archive, Received: buf.InternalDate, Intake: backend.IntakeImport}
		turn := turns.Next()
		sem <- struct{}{}
		wg.Add(1)
		go func(uid uint32) {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := t.IngestInTurn(ctx, raw, src, turn)
			mu.Lock()
			results = append(results, outcome{uid, res, flags, err})
			mu.Unlock()
		}(uint32(buf.UID))
	}
	fetchErr := cmd.Close()
	wg.Wait()
	slices.SortFunc(results, func(a, b outcome) int { return int(a.uid) - int(b.uid) })
	if mb.owner != "" {
		// One metadata transaction per set of flags, not one per message.
		byFlags := map[string][]backend.Placement{}
		for _, r := range results {
			if r.err == nil {
				key := strings.Join(r.flags, " ")
				byFlags[key] = append(byFlags[key], r.res.Placed...)
			}
		}
		for key, pls := range byFlags {
			if err := setFlags(ctx, t, mb, pls, strings.Fields(key)); err != nil {
				return 0, fmt.Errorf("flags of %q: %w", f.name, err)
			}
		}
	}
	var last uint32
	failed := false
	for _, r := range results {
		switch {
		case r.err != nil:
			fr.Errors++
			fr.errs = append(fr.errs, fmt.Sprintf("%s UID %d: %v", f.name, r.uid, r.err))
			failed = true
		case r.res.Duplicate && len(r.res.Placed) == 0:
			fr.Duplicates++
		default:
			fr.Archived++
			pr.Archived.Add(1)
		}
		if !failed && r.err == nil {
			last = r.uid
		}
	}
	if fetchErr != nil {
		return last, fmt.Errorf("fetch from %q: %w", f.name, fetchErr)
	}
	if !failed && len(results) > 0 && results[len(results)-1].uid < uint32(uids[len(uids)-1]) {
		// Messages expunged on the source meanwhile are not waited for.
		last = uint32(uids[len(uids)-1])
	}
	return last, ctx.Err()
}

// keptFlags are the source's flags an archive keeps: not \Recent (a
// session's), not \Deleted (the archive deletes nothing).
func keptFlags(in []imap.Flag) []string {
	out := make([]string, 0, len(in))
	for _, f := range in {
		if strings.EqualFold(string(f), `\Recent`) || strings.EqualFold(string(f), backend.FlagDeleted) {
			continue
		}
		out = append(out, string(f))
	}
	return out
}

// setFlags gives the owner of the archive mailbox the source's flags on
// the folder copies the messages were newly placed in.
func setFlags(ctx context.Context, t *backend.Tenant, mb target, pls []backend.Placement, flags []string) error {
	uids := map[string][]uint32{}
	for _, pl := range pls {
		uids[pl.Folder] = append(uids[pl.Folder], pl.UID)
	}
	for folder, us := range uids {
		fi, err := t.FolderByName(mb.owner, mb.id, folder)
		if errors.Is(err, backend.ErrNotFound) {
			continue // not this mailbox's folder (journal copy)
		}
		if err != nil {
			return err
		}
		slices.Sort(us)
		if _, err := t.StoreFlags(ctx, mb.owner, fi.ID, us, backend.FlagsSet, flags); err != nil {
			return err
		}
	}
	return nil
}
