package imapserver

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// CONDSTORE (RFC 7162 section 3) in the server: the SELECT/EXAMINE
// parameter, the FETCH MODSEQ item and CHANGEDSINCE modifier, the STORE
// UNCHANGEDSINCE modifier, STATUS HIGHESTMODSEQ and ENABLE CONDSTORE. They
// are parsed only when Options.Caps has CONDSTORE; the session keeps and
// reports the mod-sequences. (mailvault patch, see third_party/README.md)

func (c *Conn) condStoreAvailable() bool {
	return c.server.options.caps().Has(imap.CapCondStore)
}

// enableCondStore records that the client used CONDSTORE: from then on the
// session should include MODSEQ in FETCH responses about flag changes
// (RFC 7162 section 3.1).
func (c *Conn) enableCondStore() {
	c.mutex.Lock()
	c.enabled[imap.CapCondStore] = struct{}{}
	c.mutex.Unlock()
}

// readSelectParams reads the optional parameter list of SELECT and EXAMINE.
func (c *Conn) readSelectParams(dec *imapwire.Decoder, options *imap.SelectOptions) error {
	if !dec.SP() {
		return nil
	}
	return dec.ExpectList(func() error {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		switch {
		case strings.EqualFold(name, "CONDSTORE") && c.condStoreAvailable():
			options.CondStore = true
		case strings.EqualFold(name, "QRESYNC"):
			q, err := c.readSelectQResync(dec)
			if err != nil {
				return err
			}
			options.QResync = q
		default:
			return newClientBugError("Unknown SELECT parameter")
		}
		return nil
	})
}

// readModifiers reads the optional list of "NAME value" modifiers of FETCH
// or STORE, where the one known name has a mod-sequence value.
func (c *Conn) readModifiers(dec *imapwire.Decoder, known string, ptr *uint64) (isList bool, err error) {
	return dec.List(func() error {
		var name string
		if !dec.ExpectAtom(&name) || !dec.ExpectSP() {
			return dec.Err()
		}
		if !strings.EqualFold(name, known) || !c.condStoreAvailable() {
			return newClientBugError("Unknown modifier " + name)
		}
		if !dec.ExpectModSeq(ptr) {
			return dec.Err()
		}
		return nil
	})
}

// WriteModSeq writes the message's mod-sequence (FETCH MODSEQ).
func (w *FetchResponseWriter) WriteModSeq(modSeq uint64) {
	w.writeItemSep()
	w.enc.Atom("MODSEQ").SP().Special('(').ModSeq(modSeq).Special(')')
}

func (c *Conn) writeHighestModSeq(modSeq uint64) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("OK").SP()
	enc.Special('[').Atom("HIGHESTMODSEQ").SP().ModSeq(modSeq).Special(']')
	enc.SP().Text("Highest")
	return enc.CRLF()
}

// readSearchKeyModSeq reads the arguments of the MODSEQ search key:
// an optional entry name and type, then the mod-sequence (RFC 7162 3.1.5).
func readSearchKeyModSeq(criteria *imap.SearchCriteria, dec *imapwire.Decoder) error {
	var ms imap.SearchCriteriaModSeq
	if !dec.ExpectSP() {
		return dec.Err()
	}
	if dec.Quoted(&ms.MetadataName) {
		var typ string
		if !dec.ExpectSP() || !dec.ExpectAtom(&typ) || !dec.ExpectSP() {
			return dec.Err()
		}
		ms.MetadataType = imap.SearchCriteriaMetadataType(strings.ToLower(typ))
	}
	if !dec.ExpectModSeq(&ms.ModSeq) {
		return dec.Err()
	}
	if criteria.ModSeq == nil || ms.ModSeq > criteria.ModSeq.ModSeq {
		criteria.ModSeq = &ms
	}
	return nil
}

// hasModSeqKey reports whether the criteria use MODSEQ anywhere.
func hasModSeqKey(c *imap.SearchCriteria) bool {
	if c.ModSeq != nil {
		return true
	}
	for i := range c.Not {
		if hasModSeqKey(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if hasModSeqKey(&c.Or[i][0]) || hasModSeqKey(&c.Or[i][1]) {
			return true
		}
	}
	return false
}
