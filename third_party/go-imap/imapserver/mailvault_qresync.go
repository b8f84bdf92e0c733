package imapserver

import (
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// QRESYNC (RFC 7162 section 3.2) in the server: ENABLE QRESYNC, the
// SELECT/EXAMINE parameter, the VANISHED modifier of UID FETCH and the
// VANISHED response. They are available only when Options.Caps has QRESYNC.
// A SELECT with QRESYNC is answered, after the mailbox's state, as
// "UID FETCH known-uids (FLAGS) (CHANGEDSINCE modseq VANISHED)" through
// Session.Fetch, which RFC 7162 describes as its equivalent; the session
// writes VANISHED (EARLIER) with FetchWriter.WriteVanished and, once the
// client enabled QRESYNC, reports expunges with UpdateWriter.WriteVanished
// instead of EXPUNGE. (mailvault patch, see third_party/README.md)

func (c *Conn) qresyncAvailable() bool {
	return c.server.options.caps().Has(imap.CapQResync)
}

func (c *Conn) qresyncEnabled() bool {
	c.mutex.Lock()
	defer c.mutex.Unlock()
	return c.enabled.Has(imap.CapQResync)
}

// readSelectQResync reads the value of the QRESYNC SELECT parameter:
// "(" uidvalidity SP mod-sequence-value [SP known-uids]
// [SP "(" known-sequence-set SP known-uid-set ")"] ")".
func (c *Conn) readSelectQResync(dec *imapwire.Decoder) (*imap.SelectQResync, error) {
	if !c.qresyncAvailable() {
		return nil, newClientBugError("Unknown SELECT parameter")
	}
	if !c.qresyncEnabled() {
		// RFC 7162 3.2.5: BAD unless the client enabled QRESYNC.
		return nil, newClientBugError("QRESYNC must be enabled first")
	}
	var q imap.SelectQResync
	if !dec.ExpectSP() || !dec.ExpectSpecial('(') || !dec.ExpectNumber(&q.UIDValidity) || !dec.ExpectSP() || !dec.ExpectModSeq(&q.ModSeq) {
		return nil, dec.Err()
	}
	if q.UIDValidity == 0 {
		return nil, newClientBugError("UIDVALIDITY must not be zero")
	}
	if dec.SP() {
		seqMatch := dec.Special('(')
		if !seqMatch {
			if !dec.ExpectUIDSet(&q.KnownUIDs) {
				return nil, dec.Err()
			}
			if dec.SP() {
				if !dec.ExpectSpecial('(') {
					return nil, dec.Err()
				}
				seqMatch = true
			}
		}
		if seqMatch {
			var seqs imap.NumSet
			if !dec.ExpectNumSet(imapwire.NumKindSeq, &seqs) || !dec.ExpectSP() || !dec.ExpectUIDSet(&q.SeqMatchUIDs) || !dec.ExpectSpecial(')') {
				return nil, dec.Err()
			}
			q.SeqMatchSeqNums, _ = seqs.(imap.SeqSet)
		}
	}
	if !dec.ExpectSpecial(')') {
		return nil, dec.Err()
	}
	return &q, nil
}

// readFetchModifiers reads the modifiers of FETCH: CHANGEDSINCE (CONDSTORE)
// and VANISHED (QRESYNC, UID FETCH only, with CHANGEDSINCE).
func (c *Conn) readFetchModifiers(dec *imapwire.Decoder, numKind NumKind, options *imap.FetchOptions) error {
	isList, err := dec.List(func() error {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		switch {
		case strings.EqualFold(name, "CHANGEDSINCE") && c.condStoreAvailable():
			if !dec.ExpectSP() || !dec.ExpectModSeq(&options.ChangedSince) {
				return dec.Err()
			}
			options.ModSeq = true
		case strings.EqualFold(name, "VANISHED") && c.qresyncAvailable():
			options.Vanished = true
		default:
			return newClientBugError("Unknown modifier " + name)
		}
		return nil
	})
	if err != nil {
		return err
	} else if !isList {
		return newClientBugError("Expected FETCH modifiers")
	}
	if options.Vanished {
		// RFC 7162 3.2.6: BAD without CHANGEDSINCE, in FETCH, or before
		// ENABLE QRESYNC.
		switch {
		case numKind != NumKindUID:
			return newClientBugError("VANISHED is for UID FETCH only")
		case !options.ModSeq:
			return newClientBugError("VANISHED needs CHANGEDSINCE")
		case !c.qresyncEnabled():
			return newClientBugError("QRESYNC must be enabled first")
		}
	}
	return nil
}

// resyncSelected answers the QRESYNC parameter of a SELECT whose
// UIDVALIDITY is the one the client knew: VANISHED (EARLIER) and the flags
// of the messages changed since, as UID FETCH would.
func (c *Conn) resyncSelected(q *imap.SelectQResync, data *imap.SelectData) error {
	if q == nil || q.UIDValidity != data.UIDValidity {
		return nil // the client's cache is void: it starts over
	}
	uids := q.KnownUIDs
	if uids == nil {
		uids = imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	}
	options := &imap.FetchOptions{UID: true, Flags: true, ModSeq: true, ChangedSince: q.ModSeq, Vanished: true}
	w := &FetchWriter{conn: c, buffered: true}
	return c.session.Fetch(w, uids, options)
}

// WriteVanished writes "VANISHED (EARLIER) uids" in answer to the VANISHED
// modifier of UID FETCH or the QRESYNC parameter of SELECT: these UIDs of
// the set the client asked about were expunged after the mod-sequence it
// gave. Write it before the FETCH responses, and not for an empty set.
func (w *FetchWriter) WriteVanished(uids imap.UIDSet) error {
	return w.conn.writeVanished(uids, true, w.buffered)
}

// WriteVanished writes "VANISHED uids", which replaces EXPUNGE for a
// client that enabled QRESYNC (RFC 7162 3.2.10); like EXPUNGE it is not
// allowed after FETCH, STORE and SEARCH.
func (w *UpdateWriter) WriteVanished(uids imap.UIDSet) error {
	if !w.allowExpunge {
		return fmt.Errorf("imapserver: VANISHED updates are not allowed in this context")
	}
	return w.conn.writeVanished(uids, false, false)
}

func (c *Conn) writeVanished(uids imap.UIDSet, earlier, buffered bool) error {
	enc := newResponseEncoderDeadline(c, buffered)
	defer enc.end()
	enc.Atom("*").SP().Atom("VANISHED").SP()
	if earlier {
		enc.Special('(').Atom("EARLIER").Special(')').SP()
	}
	enc.NumSet(uids)
	if buffered {
		return enc.CRLFNoFlush()
	}
	return enc.CRLF()
}
