package imapd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailvault/mailvault/backend"
)

// session is one IMAP connection. The library calls its methods from the
// connection's goroutine only (Idle from a second one while the first
// waits), so it needs no lock.
type session struct {
	srv    *Server
	conn   *imapserver.Conn
	remote net.Addr
	ctx    context.Context
	cancel context.CancelFunc

	tenant     string
	login      string
	compliance bool // every access is audited

	sel   *selection
	saved []uint32 // SEARCHRES result ($), as UIDs
}

// selection is the selected folder as the client knows it: the view grows
// only when the client was told (EXISTS) and shrinks only when it was told
// (EXPUNGE, for mail retention deleted).
type selection struct {
	ref      folderRef
	readOnly bool
	uids     []uint32 // ascending
	mids     []uint64 // parallel to uids
	notify   chan struct{}
	unwatch  func()
}

var (
	_ imapserver.SessionIMAP4rev2 = (*session)(nil)
	_ imapserver.SessionNamespace = (*session)(nil)
	_ imapserver.SessionID        = (*session)(nil)
)

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s.met.Load().Sessions.Inc()
	return &session{srv: s, conn: c, remote: c.NetConn().RemoteAddr(), ctx: ctx, cancel: cancel}, nil, nil
}

// enabled returns the capabilities the client turned on with ENABLE.
func (s *session) enabled() imap.CapSet { return s.conn.EnabledCaps() }

// Close ends the session.
func (s *session) Close() error {
	s.srv.met.Load().Sessions.Dec()
	s.unselect()
	s.cancel()
	return nil
}

// Login authenticates name@domain through the backend's login gate.
// The library has already refused plaintext off loopback (see Server).
func (s *session) Login(username, password string) error {
	ctx, cancel := context.WithTimeout(backend.WithRemote(s.ctx, remoteAddr(s.remote)), 30*time.Second)
	defer cancel()
	t, u, err := s.srv.p.MailLogin(ctx, username, password)
	var te *backend.ThrottledError
	switch {
	case err == nil:
	case errors.Is(err, backend.ErrAuthFailed):
		s.srv.log.Info("imap login failed", "login", username, "remote", s.remote.String())
		s.srv.met.Load().LoginsFailed.Inc()
		return imapserver.ErrAuthFailed
	case errors.As(err, &te):
		s.srv.log.Info("imap login throttled", "login", username, "remote", s.remote.String())
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
			Text: fmt.Sprintf("Too many failed logins for this account; try again in %d seconds", int(te.RetryAfter/time.Second)+1)}
	case errors.Is(err, backend.ErrLoginBusy):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Too many logins at once; try again in a moment"}
	default:
		s.srv.log.Error("imap login", "login", username, "err", err)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "The archive cannot check logins right now, try again later"}
	}
	s.tenant, s.login = t.Name, u.Login
	s.compliance = t.IsCompliance(u.Login)
	s.audit(t, "imap-login", "from "+s.remote.String())
	return nil
}

// remoteAddr is the client's IP address, which logins are throttled by.
func remoteAddr(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr()
	}
	return netip.Addr{}
}

// tenantHandle returns the user's tenant, reopening it if it was closed
// while idle.
func (s *session) tenantHandle() (*backend.Tenant, error) {
	t, err := s.srv.p.Tenant(s.ctx, s.tenant)
	if err != nil {
		return nil, s.fail("open tenant", err)
	}
	return t, nil
}

// audit records an access of a compliance user in the tenant's audit log.
func (s *session) audit(t *backend.Tenant, action, detail string) {
	if s.compliance {
		t.Audit(s.ctx, s.login, action, detail)
	}
}

// fail maps a backend error to an IMAP answer.
func (s *session) fail(what string, err error) error {
	var ie *imap.Error
	switch {
	case errors.As(err, &ie):
		return err
	case errors.Is(err, backend.ErrNotFound):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such folder, or you may not read it"}
	case errors.Is(err, backend.ErrDenied):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNoPerm, Text: err.Error()}
	case errors.Is(err, backend.ErrTenantClosed), errors.Is(err, context.Canceled):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "The archive is shutting down, try again later"}
	}
	s.srv.log.Error("imap "+what, "login", s.login, "err", err)
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: fmt.Sprintf("%s failed; the administrator finds the reason in the log", what)}
}

// readOnlyError is the answer to every write: NO [CANNOT], never
// [TRYCREATE] (which makes clients create the folder and try again), with a
// text that clients show the user (Thunderbird in an alert) and that says
// the archive kept everything, since a client may already have removed the
// message from its own view.
func readOnlyError(text string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "The archive is read-only: " + text}
}

// Create refuses: archive folders come from ingest and import only.
func (s *session) Create(mailbox string, options *imap.CreateOptions) error {
	return readOnlyError("folders cannot be created here; keep Trash, Drafts and Archives folders in another account")
}

// Delete refuses.
func (s *session) Delete(mailbox string) error {
	return readOnlyError("folders cannot be deleted; the folder and its messages stay in the archive")
}

// Rename refuses.
func (s *session) Rename(mailbox, newName string, options *imap.RenameOptions) error {
	return readOnlyError("folders cannot be renamed; the folder keeps its name")
}

// Subscribe accepts existing folders: every readable folder counts as
// subscribed.
func (s *session) Subscribe(mailbox string) error {
	t, err := s.tenantHandle()
	if err != nil {
		return err
	}
	_, err = s.resolve(t, mailbox)
	return err
}

// Unsubscribe refuses, as the list of subscribed folders is fixed.
func (s *session) Unsubscribe(mailbox string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "The archive is read-only: every archive folder you may read stays subscribed"}
}

// Append refuses: mail enters the archive by journaling or import only.
func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	return nil, readOnlyError("messages cannot be added here; mail enters the archive by journaling or import")
}

// Copy refuses.
func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	return nil, readOnlyError("messages cannot be copied into archive folders; copy them to a folder of another account")
}

// Move refuses.
func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	return readOnlyError("messages cannot be moved or deleted; the message stays in the archive (copy it to a folder of another account)")
}

// Expunge does nothing and succeeds: no message can carry \Deleted, so
// there is nothing to expunge, and CLOSE (which the library turns into
// Expunge even after EXAMINE) must succeed.
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	return nil
}

// ID answers RFC 2971's ID with the server's name and version; what the
// client says of itself goes to the debug log.
func (s *session) ID(client *imap.IDData) *imap.IDData {
	if client != nil {
		s.srv.log.Debug("imap client", "name", client.Name, "version", client.Version, "remote", s.remote.String())
	}
	return &imap.IDData{Name: "mailvault", Version: s.srv.version, Vendor: "mailvault"}
}

// Namespace: the own archive mailbox is the personal namespace, other
// archive mailboxes are shared.
func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{
		Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}},
		Shared:   []imap.NamespaceDescriptor{{Prefix: sharedPrefix + string(delim), Delim: delim}},
	}, nil
}

// Unselect closes the selected folder.
func (s *session) Unselect() error {
	s.unselect()
	return nil
}

func (s *session) unselect() {
	if s.sel != nil {
		s.sel.unwatch()
		s.sel = nil
	}
}

// Poll tells the client about messages that arrived or were deleted since
// its last command.
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	return s.update(w, allowExpunge)
}

// Idle waits for new messages in the selected folder and announces them.
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if s.sel == nil {
		<-stop
		return nil
	}
	for {
		select {
		case <-stop:
			return nil
		case <-s.ctx.Done():
			return nil
		case <-s.sel.notify:
			if err := s.update(w, true); err != nil {
				return err
			}
		}
	}
}

func (s *session) update(w *imapserver.UpdateWriter, allowExpunge bool) error {
	sel := s.sel
	if sel == nil {
		return nil
	}
	t, err := s.tenantHandle()
	if err != nil {
		return err
	}
	snap, err := t.Snapshot(s.login, sel.ref.info.ID)
	if err != nil {
		// Read access was withdrawn: the view stays, commands on it fail.
		return nil
	}
	gone := expunged(sel.uids, snap.UIDs)
	if len(gone) > 0 {
		if !allowExpunge {
			// Not after FETCH, STORE or SEARCH (RFC 9051 7.5.1): the
			// view stays as it is until a command that allows them.
			return nil
		}
		if s.enabled().Has(imap.CapQResync) {
			// VANISHED instead of EXPUNGE (RFC 7162 3.2.10).
			uids := make([]imap.UID, len(gone))
			for i, pos := range gone {
				uids[i] = imap.UID(sel.uids[pos])
			}
			if err := w.WriteVanished(imap.UIDSetNum(uids...)); err != nil {
				return err
			}
		} else {
			// Highest first, so no announced number shifts the ones after.
			for i := len(gone) - 1; i >= 0; i-- {
				if err := w.WriteExpunge(uint32(gone[i] + 1)); err != nil {
					return err
				}
			}
		}
		kept := len(sel.uids) - len(gone)
		sel.uids, sel.mids = snap.UIDs[:kept:kept], snap.MIDs[:kept:kept]
	}
	if len(snap.UIDs) > len(sel.uids) {
		if err := w.WriteNumMessages(uint32(len(snap.UIDs))); err != nil {
			return err
		}
		sel.uids, sel.mids = snap.UIDs, snap.MIDs
	}
	return nil
}

// expunged returns the positions in view (ascending UIDs) of the UIDs now
// missing from cur, ascending. UIDs only ever come after the view's, so
// cur's first entries are the survivors of view.
func expunged(view, cur []uint32) []int {
	var out []int
	j := 0
	for i, u := range view {
		for j < len(cur) && cur[j] < u {
			j++
		}
		if j == len(cur) || cur[j] != u {
			out = append(out, i)
		}
	}
	return out
}

// current checks that the user may still read the selected folder and
// returns the tenant.
func (s *session) current() (*backend.Tenant, *selection, error) {
	sel := s.sel
	if sel == nil {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "No folder selected"}
	}
	t, err := s.tenantHandle()
	if err != nil {
		return nil, nil, err
	}
	if _, err := t.Snapshot(s.login, sel.ref.info.ID); err != nil {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNoPerm, Text: "You may no longer read this folder"}
	}
	return t, sel, nil
}
