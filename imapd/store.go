package imapd

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailvault/mailvault/backend"
)

// Store changes the user's flag overlay (\Seen, \Flagged, keywords); the
// archived messages never change. \Deleted is refused.
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	t, sel, err := s.current()
	if err != nil {
		return err
	}
	if sel.readOnly {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "The folder was opened read-only (EXAMINE); open it with SELECT to change your own flags"}
	}
	var list []string
	for _, f := range flags.Flags {
		switch {
		case strings.EqualFold(string(f), string(imap.FlagDeleted)):
			return readOnlyError(`messages cannot be deleted, the message stays in the archive; \Seen, \Flagged, \Answered, \Draft and keywords can be set`)
		case strings.EqualFold(string(f), `\Recent`):
			continue // set by the server only
		}
		list = append(list, canonicalFlag(f))
	}
	spans := s.spans(sel, numSet)
	var uids []uint32
	for _, sp := range spans {
		uids = append(uids, sel.uids[sp.lo:sp.hi]...)
	}
	if len(uids) == 0 {
		return nil
	}
	op := backend.FlagsSet
	switch flags.Op {
	case imap.StoreFlagsAdd:
		op = backend.FlagsAdd
	case imap.StoreFlagsDel:
		op = backend.FlagsRemove
	}
	res, err := t.StoreFlagsCond(s.ctx, s.login, sel.ref.info.ID, uids, op, list, options.UnchangedSince)
	if err != nil {
		return s.fail("store", err)
	}
	// Once CONDSTORE is in use, every message stored is reported with its
	// MODSEQ, .SILENT or not (RFC 7162 3.1.3); those UNCHANGEDSINCE left
	// alone are not, but named in MODIFIED.
	condStore := s.enabled().Has(imap.CapCondStore)
	qresync := s.enabled().Has(imap.CapQResync)
	if flags.Silent && !condStore {
		return nil
	}
	// UID STORE answers with UIDs (RFC 9051 6.4.9); STORE as Dovecot does.
	_, byUID := numSet.(imap.UIDSet)
	var modified []uint32
	i, k := 0, 0 // res.Modified is in the order of uids
	for _, sp := range spans {
		for pos := sp.lo; pos < sp.hi; pos++ {
			uid := uids[i]
			i++
			if k < len(res.Modified) && res.Modified[k] == uid {
				k++
				if byUID {
					modified = append(modified, uid)
				} else {
					modified = append(modified, uint32(pos+1))
				}
				continue
			}
			r := w.CreateMessage(uint32(pos + 1))
			// With QRESYNC every FETCH response carries the UID (RFC 7162
			// 3.2.4).
			if byUID || qresync {
				r.WriteUID(imap.UID(uid))
			}
			if !flags.Silent {
				r.WriteFlags(imapFlags(res.Flags[uid]))
			}
			if condStore {
				r.WriteModSeq(res.ModSeqs[uid])
			}
			if err := r.Close(); err != nil {
				return err
			}
		}
	}
	if len(modified) > 0 {
		set := imap.SeqSetNum(modified...).String()
		return &imap.Error{Type: imap.StatusResponseTypeOK, Code: imap.ResponseCode("MODIFIED " + set), Text: "Conditional STORE failed for these messages: changed since"}
	}
	return nil
}

// canonicalFlag spells system flags as RFC 9051 does, so the overlay never
// holds \seen and \Seen side by side.
func canonicalFlag(f imap.Flag) string {
	for _, sys := range []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDraft} {
		if strings.EqualFold(string(f), string(sys)) {
			return string(sys)
		}
	}
	return string(f)
}
