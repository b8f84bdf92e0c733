package imapd

import (
	"bytes"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/index"
	"github.com/mailvault/mailvault/mailparse"
)

// Search answers SEARCH and UID SEARCH. Text keys go to the tenant's
// full-text index, scoped to the folder; sequence numbers, UIDs, internal
// dates and sizes come from metadata; flags from the user's overlay. Each
// criteria level is one set of positions in the client's view, combined
// with AND, NOT and OR.
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	t, sel, err := s.current()
	if err != nil {
		return nil, err
	}
	m := &matcher{s: s, t: t, sel: sel, n: len(sel.uids)}
	res, err := m.eval(criteria)
	if err != nil {
		return nil, err
	}
	data := &imap.SearchData{}
	var uidSet imap.UIDSet
	var seqSet imap.SeqSet
	var matched []uint32 // UIDs, for SAVE
	first, last := -1, -1
	count := 0
	res.each(func(lo, hi int) {
		if first < 0 {
			first = lo
		}
		last = hi - 1
		count += hi - lo
		seqSet = append(seqSet, imap.SeqRange{Start: uint32(lo + 1), Stop: uint32(hi)})
		uidSet = append(uidSet, uidSetOf(sel.uids, []span{{lo, hi}})...)
		if options.ReturnSave {
			matched = append(matched, sel.uids[lo:hi]...)
		}
	})
	data.Count = uint32(count)
	if criteria.ModSeq != nil && count > 0 {
		// The highest mod-sequence of the messages found (RFC 7162 3.1.5).
		if err := m.loadModSeqs(); err != nil {
			return nil, err
		}
		res.each(func(lo, hi int) {
			for _, ms := range m.modSeqs[lo:hi] {
				data.ModSeq = max(data.ModSeq, ms)
			}
		})
	}
	// Searching reveals content as reading does: audited like JMAP's
	// Email/query.
	s.audit(t, "imap-search", fmt.Sprintf("%s %.500s hits=%d", sel.ref.display(), criteriaText(criteria), count))
	if kind == imapserver.NumKindUID {
		data.All = uidSet
		if count > 0 {
			data.Min, data.Max = sel.uids[first], sel.uids[last]
		}
	} else {
		data.All = seqSet
		if count > 0 {
			data.Min, data.Max = uint32(first+1), uint32(last+1)
		}
	}
	if options.ReturnSave {
		// RFC 5182: with only MIN and/or MAX requested, just those are saved.
		if !options.ReturnAll && !options.ReturnCount && (options.ReturnMin || options.ReturnMax) && count > 0 {
			var mm []uint32
			if options.ReturnMin {
				mm = append(mm, sel.uids[first])
			}
			if options.ReturnMax && last != first {
				mm = append(mm, sel.uids[last])
			}
			matched = mm
		}
		s.saved = matched
	}
	return data, nil
}

// matcher evaluates search criteria over the selected folder's view,
// loading metadata and flags only when a key needs them.
type matcher struct {
	s       *session
	t       *backend.Tenant
	sel     *selection
	n       int
	infos   []backend.MessageInfo
	overlay map[uint32][]string
	loaded  bool
	modSeqs []uint64 // by position; nil until a MODSEQ key needs them
}

func (m *matcher) loadModSeqs() error {
	if m.modSeqs != nil {
		return nil
	}
	_, per, err := m.t.ModSeqs(m.s.login, m.sel.ref.info.ID, m.sel.uids, m.sel.mids)
	if err != nil {
		return m.s.fail("search", err)
	}
	m.modSeqs = per
	return nil
}

func (m *matcher) eval(c *imap.SearchCriteria) (bitset, error) {
	res := newBitset(m.n, true)
	for _, set := range c.SeqNum {
		res.and(m.positions(set))
	}
	for _, set := range c.UID {
		res.and(m.positions(set))
	}
	if !c.Since.IsZero() || !c.Before.IsZero() || c.Larger > 0 || c.Smaller > 0 {
		if err := m.loadInfos(); err != nil {
			return nil, err
		}
		for i := range m.n {
			if !res.has(i) {
				continue
			}
			info := &m.infos[i]
			day := info.Received.UTC()
			if !c.Since.IsZero() && day.Before(c.Since) ||
				!c.Before.IsZero() && !day.Before(c.Before) ||
				c.Larger > 0 && info.IMAPSize <= c.Larger ||
				c.Smaller > 0 && info.IMAPSize >= c.Smaller {
				res.clear(i)
			}
		}
	}
	if c.ModSeq != nil {
		// The user's mod-sequences of the folder: all flags share one,
		// whatever entry name the client gives (RFC 7162 3.1.5).
		if err := m.loadModSeqs(); err != nil {
			return nil, err
		}
		for i := range m.n {
			if res.has(i) && m.modSeqs[i] < c.ModSeq.ModSeq {
				res.clear(i)
			}
		}
	}
	if len(c.Flag) > 0 || len(c.NotFlag) > 0 {
		if err := m.loadFlags(); err != nil {
			return nil, err
		}
		defaults := backend.DefaultFlags()
		for i := range m.n {
			if !res.has(i) {
				continue
			}
			fl, ok := m.overlay[m.sel.uids[i]]
			if !ok {
				fl = defaults
			}
			for _, f := range c.Flag {
				if !hasFlag(fl, f) {
					res.clear(i)
				}
			}
			for _, f := range c.NotFlag {
				if hasFlag(fl, f) {
					res.clear(i)
				}
			}
		}
	}
	if q, ok := textQuery(c); ok && !res.empty() {
		uids, err := m.t.SearchFolder(m.s.ctx, m.s.login, m.sel.ref.info.ID, q)
		if err != nil {
			return nil, m.s.fail("search", err)
		}
		res.and(m.fromUIDs(uids))
	}
	for _, h := range c.Header {
		if !verifiedHeader(h) || res.empty() {
			continue
		}
		// The index found the messages that have the header; its value
		// is checked in the stored headers, as a substring.
		if err := m.headerValue(res, h.Key, h.Value); err != nil {
			return nil, err
		}
	}
	for _, b := range c.Body {
		if hasWord(b) || res.empty() {
			continue
		}
		if err := m.rawContains(res, b, true); err != nil {
			return nil, err
		}
	}
	for _, x := range c.Text {
		if hasWord(x) || res.empty() {
			continue
		}
		if err := m.rawContains(res, x, false); err != nil {
			return nil, err
		}
	}
	for i := range c.Not {
		if res.empty() {
			break
		}
		sub, err := m.eval(&c.Not[i])
		if err != nil {
			return nil, err
		}
		res.andNot(sub)
	}
	for i := range c.Or {
		if res.empty() {
			break
		}
		a, err := m.eval(&c.Or[i][0])
		if err != nil {
			return nil, err
		}
		b, err := m.eval(&c.Or[i][1])
		if err != nil {
			return nil, err
		}
		a.or(b)
		res.and(a)
	}
	return res, nil
}

// hasFlag compares like IMAP: system flags case-insensitively. \Recent is
// never set: an archive has no new mail of this session.
func hasFlag(l []string, f imap.Flag) bool {
	return slices.ContainsFunc(l, func(x string) bool { return strings.EqualFold(x, string(f)) })
}

// textQuery translates the keys of one criteria level that the index
// answers: text keys with IMAP's substring semantics (index.Substring) and
// the sent date. For a
// header whose value is verified afterwards, the index gives the messages
// that have the header; a BODY or TEXT string without a word is left to
// rawContains.
func textQuery(c *imap.SearchCriteria) (index.Query, bool) {
	var qs []index.Query
	for _, h := range c.Header {
		switch {
		case verifiedHeader(h):
			qs = append(qs, index.Header(h.Key, ""))
		case substringField(h.Key) != 0 && strings.TrimSpace(h.Value) != "":
			qs = append(qs, index.Substring(substringField(h.Key), h.Value))
		default:
			qs = append(qs, index.Header(h.Key, h.Value))
		}
	}
	for _, b := range c.Body {
		if hasWord(b) {
			qs = append(qs, index.Substring(index.FieldBody, b))
		}
	}
	for _, x := range c.Text {
		if hasWord(x) {
			qs = append(qs, index.Substring(index.FieldText, x))
		}
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		// The index keeps the calendar day of Date: as written in its
		// own time zone, which is what SENTSINCE and SENTBEFORE compare.
		qs = append(qs, index.SentDays(c.SentSince, c.SentBefore))
	}
	if len(qs) == 0 {
		return index.Query{}, false
	}
	return index.And(qs...), true
}

// substringField is the index field of the headers with one (FROM, TO, CC,
// BCC, SUBJECT), else 0.
func substringField(name string) index.Field {
	switch strings.ToLower(name) {
	case "from":
		return index.FieldFrom
	case "to":
		return index.FieldTo
	case "cc":
		return index.FieldCc
	case "bcc":
		return index.FieldBcc
	case "subject":
		return index.FieldSubject
	}
	return 0
}

// verifiedHeader reports whether a header key is decided by a substring
// check of the stored headers (RFC 9051 6.4.4) rather than by the index:
// the index does not hold the value, compares message ids only whole, or
// would match every message for a string without a word ("!!!"). An empty
// string matches every message with the header, which the index answers.
func verifiedHeader(h imap.SearchCriteriaHeaderField) bool {
	if strings.TrimSpace(h.Value) == "" {
		return false
	}
	name := strings.ToLower(h.Key)
	return !index.HeaderValueIndexed(name) || isMessageIDHeader(name) || !hasWord(h.Value)
}

// isMessageIDHeader names the headers the index keeps as whole message ids.
func isMessageIDHeader(lowerName string) bool {
	switch lowerName {
	case "message-id", "in-reply-to", "references", "resent-message-id":
		return true
	}
	return false
}

// hasWord reports whether the index finds a word in s: a letter, a digit
// or a connector such as "_" (the word classes of its tokenizer). Telling
// a wordless string wrongly only makes the search slower, never wrong, as
// such strings are checked as substrings.
func hasWord(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Pc, r)
	})
}

// rawContains keeps the messages of res whose archived bytes (the body
// only, with bodyOnly) contain s, case-insensitively. It serves BODY and
// TEXT strings without a word, which the index cannot answer; the bytes
// are compared as archived, not decoded.
func (m *matcher) rawContains(res bitset, s string, bodyOnly bool) error {
	want := bytes.ToLower([]byte(s))
	out := newBitset(m.n, false)
	var ferr error
	res.each(func(lo, hi int) {
		for i := lo; i < hi && ferr == nil; i++ {
			raw, err := m.t.RawMessage(m.s.ctx, m.sel.mids[i])
			if err != nil {
				ferr = m.s.fail("search", err)
				return
			}
			if bodyOnly {
				// The body as BODY[TEXT] has it.
				sum, err := m.t.Summary(m.s.ctx, m.sel.mids[i])
				if err != nil {
					ferr = m.s.fail("search", err)
					return
				}
				start, end, ok := sum.Section(nil, "TEXT")
				if !ok || end > int64(len(raw)) {
					continue
				}
				raw = raw[start:end]
			}
			if bytes.Contains(bytes.ToLower(raw), want) {
				out.set(i)
			}
		}
	})
	res.and(out)
	return ferr
}

// headerValue keeps the messages of res that have a header name whose value
// contains value, case-insensitively.
func (m *matcher) headerValue(res bitset, name, value string) error {
	value = strings.ToLower(value)
	keep, err := m.bySummary(res, func(sum *mailparse.Summary) bool {
		return slices.ContainsFunc(sum.Headers, func(h mailparse.Header) bool {
			return strings.EqualFold(h.Name, name) && strings.Contains(strings.ToLower(h.Value), value)
		})
	})
	res.and(keep)
	return err
}

// bySummary returns the messages of cand whose stored summary satisfies
// match.
func (m *matcher) bySummary(cand bitset, match func(*mailparse.Summary) bool) (bitset, error) {
	out := newBitset(m.n, false)
	var ferr error
	cand.each(func(lo, hi int) {
		for i := lo; i < hi && ferr == nil; i++ {
			sum, err := m.t.Summary(m.s.ctx, m.sel.mids[i])
			if err != nil {
				ferr = m.s.fail("search", err)
				return
			}
			if match(sum) {
				out.set(i)
			}
		}
	})
	return out, ferr
}

// positions returns the view positions of a sequence or UID set.
func (m *matcher) positions(set imap.NumSet) bitset {
	b := newBitset(m.n, false)
	for _, sp := range m.s.spans(m.sel, set) {
		for i := sp.lo; i < sp.hi; i++ {
			b.set(i)
		}
	}
	return b
}

// fromUIDs maps ascending UIDs (of the whole folder) to view positions.
func (m *matcher) fromUIDs(uids []uint32) bitset {
	b := newBitset(m.n, false)
	view := m.sel.uids
	i := 0
	for _, u := range uids {
		for i < len(view) && view[i] < u {
			i++
		}
		if i == len(view) {
			break
		}
		if view[i] == u {
			b.set(i)
		}
	}
	return b
}

func (m *matcher) loadInfos() error {
	if m.infos != nil {
		return nil
	}
	infos, err := m.t.MessageInfos(m.sel.mids)
	if err != nil {
		return m.s.fail("search", err)
	}
	m.infos = infos
	return nil
}

func (m *matcher) loadFlags() error {
	if m.loaded {
		return nil
	}
	overlay, err := m.t.FlagOverlay(m.s.login, m.sel.ref.info.ID)
	if err != nil {
		return m.s.fail("search", err)
	}
	m.overlay, m.loaded = overlay, true
	return nil
}

// bitset is a set of view positions.
type bitset []uint64

func newBitset(n int, full bool) bitset {
	b := make(bitset, (n+63)/64)
	if full {
		for i := range b {
			b[i] = ^uint64(0)
		}
		if r := n % 64; r != 0 {
			b[len(b)-1] = 1<<r - 1
		}
	}
	return b
}

func (b bitset) has(i int) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitset) set(i int)      { b[i/64] |= 1 << (i % 64) }
func (b bitset) clear(i int)    { b[i/64] &^= 1 << (i % 64) }

func (b bitset) and(o bitset) {
	for i := range b {
		b[i] &= o[i]
	}
}

func (b bitset) andNot(o bitset) {
	for i := range b {
		b[i] &^= o[i]
	}
}

func (b bitset) or(o bitset) {
	for i := range b {
		b[i] |= o[i]
	}
}

func (b bitset) empty() bool {
	for _, w := range b {
		if w != 0 {
			return false
		}
	}
	return true
}

// each calls fn for every run [lo,hi) of consecutive members, ascending.
func (b bitset) each(fn func(lo, hi int)) {
	lo, hi := -1, -1
	for wi, w := range b {
		for w != 0 {
			tz := bits.TrailingZeros64(w)
			ones := bits.TrailingZeros64(^(w >> tz))
			start := wi*64 + tz
			if start == hi {
				hi = start + ones
			} else {
				if lo >= 0 {
					fn(lo, hi)
				}
				lo, hi = start, start+ones
			}
			if tz+ones == 64 {
				break
			}
			w &^= (uint64(1)<<ones - 1) << tz
		}
	}
	if lo >= 0 {
		fn(lo, hi)
	}
}

// criteriaText writes search criteria back in IMAP syntax, for the audit
// log.
func criteriaText(c *imap.SearchCriteria) string {
	var keys []string
	add := func(format string, args ...any) { keys = append(keys, fmt.Sprintf(format, args...)) }
	for _, set := range c.SeqNum {
		add("%s", set)
	}
	for _, set := range c.UID {
		add("UID %s", set)
	}
	date := func(key string, t time.Time) {
		if !t.IsZero() {
			add("%s %s", key, t.Format("2-Jan-2006"))
		}
	}
	date("SINCE", c.Since)
	date("BEFORE", c.Before)
	date("SENTSINCE", c.SentSince)
	date("SENTBEFORE", c.SentBefore)
	for _, h := range c.Header {
		add("HEADER %q %q", h.Key, h.Value)
	}
	for _, b := range c.Body {
		add("BODY %q", b)
	}
	for _, x := range c.Text {
		add("TEXT %q", x)
	}
	for _, f := range c.Flag {
		add("KEYWORD %s", f)
	}
	for _, f := range c.NotFlag {
		add("UNKEYWORD %s", f)
	}
	if c.Larger > 0 {
		add("LARGER %d", c.Larger)
	}
	if c.Smaller > 0 {
		add("SMALLER %d", c.Smaller)
	}
	for i := range c.Not {
		add("NOT (%s)", criteriaText(&c.Not[i]))
	}
	for i := range c.Or {
		add("OR (%s) (%s)", criteriaText(&c.Or[i][0]), criteriaText(&c.Or[i][1]))
	}
	if len(keys) == 0 {
		return "ALL"
	}
	return strings.Join(keys, " ")
}
