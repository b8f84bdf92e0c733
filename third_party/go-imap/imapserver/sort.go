package imapserver

// SORT and THREAD (RFC 5256) and the extended SORT of ESORT (RFC 5267).
// mailvault patch, see third_party/README.md.

import (
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// SessionSort is an IMAP session that supports SORT (RFC 5256). The server
// then also answers ESORT's RETURN options (RFC 5267) from the sorted list.
type SessionSort interface {
	Session

	// Sort returns the numbers (sequence numbers or UIDs, as kind says) of
	// the messages that match search, in the order criteria give.
	Sort(kind NumKind, criteria []imap.SortCriterion, search *imap.SearchCriteria) ([]uint32, error)
}

// SessionThread is an IMAP session that supports THREAD (RFC 5256).
type SessionThread interface {
	Session

	// ThreadAlgorithms lists the algorithms Thread accepts, advertised as
	// THREAD=<algorithm>.
	ThreadAlgorithms() []imap.ThreadAlgorithm
	// Thread returns the threads of the messages that match search.
	Thread(kind NumKind, algorithm imap.ThreadAlgorithm, search *imap.SearchCriteria) ([]imap.ThreadData, error)
}

// sortReturn holds the RETURN options of an extended SORT.
type sortReturn struct {
	min, max, all, count bool
	partial              *[2]uint32
}

func (c *Conn) handleSort(tag string, dec *imapwire.Decoder, numKind NumKind) error {
	if !dec.ExpectSP() {
		return dec.Err()
	}
	var ret *sortReturn
	var atom string
	if dec.Atom(&atom) {
		if !strings.EqualFold(atom, "RETURN") || !dec.ExpectSP() {
			return newClientBugError("expected RETURN or sort criteria")
		}
		ret = &sortReturn{}
		if err := readSortReturn(dec, ret); err != nil {
			return err
		}
		if !dec.ExpectSP() {
			return dec.Err()
		}
	}
	var criteria []imap.SortCriterion
	err := dec.ExpectList(func() error {
		var key string
		if !dec.ExpectAtom(&key) {
			return dec.Err()
		}
		var crit imap.SortCriterion
		if strings.EqualFold(key, "REVERSE") {
			crit.Reverse = true
			if !dec.ExpectSP() || !dec.ExpectAtom(&key) {
				return dec.Err()
			}
		}
		crit.Key = imap.SortKey(strings.ToUpper(key))
		switch crit.Key {
		case imap.SortKeyArrival, imap.SortKeyCc, imap.SortKeyDate, imap.SortKeyFrom, imap.SortKeySize, imap.SortKeySubject, imap.SortKeyTo:
		default:
			return newClientBugError("unknown sort key " + key)
		}
		criteria = append(criteria, crit)
		return nil
	})
	if err != nil {
		return err
	}
	if len(criteria) == 0 {
		return newClientBugError("empty sort criteria")
	}
	if err := readCharset(dec); err != nil {
		return err
	}
	search, err := readSearchCriteria(dec, "")
	if err != nil {
		return err
	}
	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}
	sess, ok := c.session.(SessionSort)
	if !ok {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unknown command"}
	}
	nums, err := sess.Sort(numKind, criteria, search)
	if err != nil {
		return err
	}

	enc := newResponseEncoder(c)
	defer enc.end()
	if ret == nil {
		enc.Atom("*").SP().Atom("SORT")
		for _, n := range nums {
			enc.SP().Number(n)
		}
		return enc.CRLF()
	}
	enc.Atom("*").SP().Atom("ESEARCH").SP().Special('(').Atom("TAG").SP().String(tag).Special(')')
	if numKind == NumKindUID {
		enc.SP().Atom("UID")
	}
	if len(nums) > 0 {
		lo, hi := nums[0], nums[0]
		for _, n := range nums {
			if n < lo {
				lo = n
			}
			if n > hi {
				hi = n
			}
		}
		if ret.min {
			enc.SP().Atom("MIN").SP().Number(lo)
		}
		if ret.max {
			enc.SP().Atom("MAX").SP().Number(hi)
		}
	}
	if ret.all && len(nums) > 0 {
		enc.SP().Atom("ALL").SP()
		writeOrderedSet(enc.Encoder, nums)
	}
	if ret.count {
		enc.SP().Atom("COUNT").SP().Number(uint32(len(nums)))
	}
	if p := ret.partial; p != nil {
		enc.SP().Atom("PARTIAL").SP().Special('(').Number(p[0]).Special(':').Number(p[1]).SP()
		lo, hi := int(p[0])-1, int(p[1])
		if hi > len(nums) {
			hi = len(nums)
		}
		if lo < hi {
			writeOrderedSet(enc.Encoder, nums[lo:hi])
		} else {
			enc.NIL()
		}
		enc.Special(')')
	}
	return enc.CRLF()
}

// readSortReturn reads ESORT's sort-return-opts: MIN, MAX, ALL, COUNT and
// PARTIAL (RFC 5267 section 4.4); none means ALL.
func readSortReturn(dec *imapwire.Decoder, ret *sortReturn) error {
	err := dec.ExpectList(func() error {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		switch strings.ToUpper(name) {
		case "MIN":
			ret.min = true
		case "MAX":
			ret.max = true
		case "ALL":
			ret.all = true
		case "COUNT":
			ret.count = true
		case "PARTIAL":
			var lo, hi uint32
			if !dec.ExpectSP() || !dec.ExpectNumber(&lo) || !dec.ExpectSpecial(':') || !dec.ExpectNumber(&hi) {
				return dec.Err()
			}
			if lo == 0 || hi == 0 {
				return newClientBugError("PARTIAL range starts at 1")
			}
			if lo > hi {
				lo, hi = hi, lo
			}
			ret.partial = &[2]uint32{lo, hi}
		default:
			return newClientBugError("unknown SORT RETURN option")
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !ret.min && !ret.max && !ret.count && ret.partial == nil {
		ret.all = true
	}
	return nil
}

// writeOrderedSet writes nums as a sequence set in their order, ascending
// runs as ranges.
func writeOrderedSet(enc *imapwire.Encoder, nums []uint32) {
	for i := 0; i < len(nums); {
		j := i + 1
		for j < len(nums) && nums[j] == nums[j-1]+1 {
			j++
		}
		if i > 0 {
			enc.Special(',')
		}
		enc.Number(nums[i])
		if j-i > 1 {
			enc.Special(':').Number(nums[j-1])
		}
		i = j
	}
}

// readCharset reads SP charset SP: SORT and THREAD name one, which must
// be UTF-8 or US-ASCII here.
func readCharset(dec *imapwire.Decoder) error {
	var charset string
	if !dec.ExpectSP() || !dec.ExpectAString(&charset) || !dec.ExpectSP() {
		return dec.Err()
	}
	switch strings.ToUpper(charset) {
	case "US-ASCII", "UTF-8":
		return nil
	}
	return &imap.Error{
		Type: imap.StatusResponseTypeNo,
		Code: imap.ResponseCodeBadCharset,
		Text: "Only US-ASCII and UTF-8 are supported charsets",
	}
}

func (c *Conn) handleThread(dec *imapwire.Decoder, numKind NumKind) error {
	var name string
	if !dec.ExpectSP() || !dec.ExpectAtom(&name) {
		return dec.Err()
	}
	if err := readCharset(dec); err != nil {
		return err
	}
	search, err := readSearchCriteria(dec, "")
	if err != nil {
		return err
	}
	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}
	sess, ok := c.session.(SessionThread)
	if !ok {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unknown command"}
	}
	algorithm := imap.ThreadAlgorithm(strings.ToUpper(name))
	known := false
	for _, alg := range sess.ThreadAlgorithms() {
		known = known || alg == algorithm
	}
	if !known {
		return newClientBugError(fmt.Sprintf("unknown threading algorithm %s", name))
	}
	threads, err := sess.Thread(numKind, algorithm, search)
	if err != nil {
		return err
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("THREAD")
	if len(threads) > 0 {
		enc.SP()
	}
	for i := range threads {
		writeThread(enc.Encoder, &threads[i])
	}
	return enc.CRLF()
}

// writeThread writes one thread-list. A single subthread continues the
// chain, as the grammar wants nested lists only for two or more.
func writeThread(enc *imapwire.Encoder, t *imap.ThreadData) {
	enc.Special('(')
	wrote := false
	for {
		for _, n := range t.Chain {
			if wrote {
				enc.SP()
			}
			enc.Number(n)
			wrote = true
		}
		if len(t.SubThreads) != 1 {
			break
		}
		t = &t.SubThreads[0]
	}
	if len(t.SubThreads) > 1 {
		if wrote {
			enc.SP()
		}
		for i := range t.SubThreads {
			writeThread(enc, &t.SubThreads[i])
		}
	}
	enc.Special(')')
}
