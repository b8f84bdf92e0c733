package imapd

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailvault/mailvault/backend"
)

var (
	_ imapserver.SessionSort   = (*session)(nil)
	_ imapserver.SessionThread = (*session)(nil)
)

// sorted is one message of a SORT or THREAD: its position in the view
// and its keys.
type sorted struct {
	pos int
	key *backend.ThreadKey
}

// matching returns the messages of the view that match search, in view
// order, with their sort and thread keys (see backend.ThreadKeys).
func (s *session) matching(t *backend.Tenant, sel *selection, search *imap.SearchCriteria, what string) ([]sorted, error) {
	m := &matcher{s: s, t: t, sel: sel, n: len(sel.uids)}
	res, err := m.eval(search)
	if err != nil {
		return nil, err
	}
	n := 0
	res.each(func(lo, hi int) { n += hi - lo })
	msgs := make([]sorted, 0, n)
	mids := make([]uint64, 0, n)
	res.each(func(lo, hi int) {
		for i := lo; i < hi; i++ {
			msgs = append(msgs, sorted{pos: i})
			mids = append(mids, sel.mids[i])
		}
	})
	s.audit(t, "imap-"+what, fmt.Sprintf("%s %.500s hits=%d", sel.ref.display(), criteriaText(search), len(msgs)))
	keys, err := t.ThreadKeys(s.ctx, mids)
	if err != nil {
		return nil, s.fail(what, err)
	}
	for i := range msgs {
		msgs[i].key = keys[i]
	}
	return msgs, nil
}

// number is the sequence number or UID of a message, as kind asks.
func number(kind imapserver.NumKind, sel *selection, pos int) uint32 {
	if kind == imapserver.NumKindUID {
		return sel.uids[pos]
	}
	return uint32(pos + 1)
}

// Sort answers SORT and UID SORT (RFC 5256) from the messages' keys:
// ARRIVAL is the internal date, DATE the Date field's (else the internal
// date), FROM, TO and CC the mailbox of the field's first address, SUBJECT
// the base subject, all compared as i;ascii-casemap; messages equal on
// every key keep their order in the folder.
func (s *session) Sort(kind imapserver.NumKind, criteria []imap.SortCriterion, search *imap.SearchCriteria) ([]uint32, error) {
	t, sel, err := s.current()
	if err != nil {
		return nil, err
	}
	msgs, err := s.matching(t, sel, search, "sort")
	if err != nil {
		return nil, err
	}
	// Rows hold the first key as numbers (of a string key its first 16
	// bytes, the rest compared only on a tie; REVERSE as the complement)
	// and the message's index in msgs, which is in folder order. They are
	// sorted by those numbers without comparisons, and only ties touch
	// the keys or strings. (Comparing strings on ties of 8 bytes was most
	// of SORT SUBJECT of a large folder.)
	first, rest := criteria[0], criteria[1:]
	rows := make([]sortRow, len(msgs))
	var strs []string
	for i, m := range msgs {
		rows[i].i = int32(i)
		switch first.Key {
		case imap.SortKeyArrival:
			rows[i].n = ordered(m.key.Received)
		case imap.SortKeyDate:
			rows[i].n = ordered(m.key.Sent)
		case imap.SortKeySize:
			rows[i].n = ordered(m.key.Size)
		default:
			if strs == nil {
				strs = make([]string, len(msgs))
			}
			strs[i] = stringKey(first.Key, m.key)
			rows[i].n, rows[i].m = prefix(strs[i], 0), prefix(strs[i], 8)
		}
	}
	if first.Reverse {
		for i := range rows {
			rows[i].n, rows[i].m = ^rows[i].n, ^rows[i].m
		}
	}
	// A tie in n and m: the rest of the string, the other criteria,
	// the order in the folder.
	tie := func(a, b sortRow) int {
		if strs != nil {
			// Equal in their first 16 bytes (or shorter and padded).
			x, y := strs[a.i], strs[b.i]
			if len(x) >= 16 && len(y) >= 16 {
				x, y = x[16:], y[16:]
			}
			d := strings.Compare(x, y)
			if first.Reverse {
				d = -d
			}
			if d != 0 {
				return d
			}
		}
		for _, c := range rest {
			d := compareKey(c.Key, msgs[a.i].key, msgs[b.i].key)
			if c.Reverse {
				d = -d
			}
			if d != 0 {
				return d
			}
		}
		return cmp.Compare(a.i, b.i)
	}
	rows = radixSort(rows)
	// Rows equal in n and m are in folder order (the sort is stable): only
	// a run of them with more to compare needs a comparison sort.
	for lo := 0; lo < len(rows) && (strs != nil || len(rest) > 0); {
		hi := lo + 1
		for hi < len(rows) && rows[hi].n == rows[lo].n && rows[hi].m == rows[lo].m {
			hi++
		}
		if hi-lo > 1 {
			slices.SortFunc(rows[lo:hi], tie)
		}
		lo = hi
	}
	out := make([]uint32, len(rows))
	for i := range rows {
		out[i] = number(kind, sel, msgs[rows[i].i].pos)
	}
	return out, nil
}

// radixSort sorts rows by n, then m, stably, in passes of 16 bits from
// the lowest (skipping those in which all rows agree): some times cheaper
// than a comparison sort of 100,000 rows.
func radixSort(rows []sortRow) []sortRow {
	if len(rows) < 256 {
		slices.SortStableFunc(rows, func(a, b sortRow) int {
			if a.n != b.n {
				return cmp.Compare(a.n, b.n)
			}
			return cmp.Compare(a.m, b.m)
		})
		return rows
	}
	tmp := make([]sortRow, len(rows))
	var count [1 << 16]int
	for pass := range 8 {
		shift := uint(pass%4) * 16
		digit := func(r *sortRow) int {
			if pass < 4 {
				return int(r.m >> shift & 0xffff)
			}
			return int(r.n >> shift & 0xffff)
		}
		clear(count[:])
		for i := range rows {
			count[digit(&rows[i])]++
		}
		if count[digit(&rows[0])] == len(rows) {
			continue // every row has this digit
		}
		sum := 0
		for d, c := range count {
			count[d] = sum
			sum += c
		}
		for i := range rows {
			d := digit(&rows[i])
			tmp[count[d]] = rows[i]
			count[d]++
		}
		rows, tmp = tmp, rows
	}
	return rows
}

// sortRow is a message being sorted: the first key's value (of a string
// its first bytes in n, the next in m) and the message's index.
type sortRow struct {
	n, m uint64
	i    int32
}

// ordered maps int64 to uint64 keeping the order.
func ordered(v int64) uint64 { return uint64(v) ^ 1<<63 }

// prefix orders strings by 8 bytes from off: if s and t agree before off,
// s < t implies prefix(s, off) <= prefix(t, off).
func prefix(s string, off int) uint64 {
	var b [8]byte
	if off < len(s) {
		copy(b[:], s[off:])
	}
	return binary.BigEndian.Uint64(b[:])
}

func stringKey(k imap.SortKey, key *backend.ThreadKey) string {
	switch k {
	case imap.SortKeySubject:
		return key.Subject
	case imap.SortKeyFrom:
		return key.From
	case imap.SortKeyTo:
		return key.To
	case imap.SortKeyCc:
		return key.Cc
	}
	return ""
}

func compareKey(k imap.SortKey, a, b *backend.ThreadKey) int {
	switch k {
	case imap.SortKeyArrival:
		return cmp.Compare(a.Received, b.Received)
	case imap.SortKeyDate:
		return cmp.Compare(a.Sent, b.Sent)
	case imap.SortKeySize:
		return cmp.Compare(a.Size, b.Size)
	case imap.SortKeySubject:
		return strings.Compare(a.Subject, b.Subject)
	case imap.SortKeyFrom:
		return strings.Compare(a.From, b.From)
	case imap.SortKeyTo:
		return strings.Compare(a.To, b.To)
	case imap.SortKeyCc:
		return strings.Compare(a.Cc, b.Cc)
	}
	return 0
}

// ThreadAlgorithms lists the THREAD algorithms of RFC 5256.
func (s *session) ThreadAlgorithms() []imap.ThreadAlgorithm {
	return []imap.ThreadAlgorithm{imap.ThreadOrderedSubject, imap.ThreadReferences}
}

// Thread answers THREAD and UID THREAD (RFC 5256).
func (s *session) Thread(kind imapserver.NumKind, algorithm imap.ThreadAlgorithm, search *imap.SearchCriteria) ([]imap.ThreadData, error) {
	t, sel, err := s.current()
	if err != nil {
		return nil, err
	}
	msgs, err := s.matching(t, sel, search, "thread")
	if err != nil {
		return nil, err
	}
	num := func(m *sorted) uint32 { return number(kind, sel, m.pos) }
	if algorithm == imap.ThreadOrderedSubject {
		return orderedSubject(msgs, num), nil
	}
	return references(msgs, num), nil
}

// bySent orders messages by sent date, then by their order in the folder.
func bySent(a, b *sorted) int {
	if d := cmp.Compare(a.key.Sent, b.key.Sent); d != 0 {
		return d
	}
	return cmp.Compare(a.pos, b.pos)
}

// orderedSubject is THREAD=ORDEREDSUBJECT: messages grouped by base
// subject, each group a thread whose first message (by sent date) is the
// parent of all the others; threads in the order of their first messages.
func orderedSubject(msgs []sorted, num func(*sorted) uint32) []imap.ThreadData {
	// As in Sort: the subject's first bytes and the date sit in the rows.
	rows := make([]sortRow, len(msgs))
	for i := range msgs {
		rows[i] = sortRow{n: prefix(msgs[i].key.Subject, 0), i: int32(i)}
	}
	slices.SortFunc(rows, func(a, b sortRow) int {
		if a.n != b.n {
			return cmp.Compare(a.n, b.n)
		}
		x, y := &msgs[a.i], &msgs[b.i]
		if d := strings.Compare(x.key.Subject, y.key.Subject); d != 0 {
			return d
		}
		return bySent(x, y)
	})
	ordered := make([]sorted, len(msgs))
	for i, r := range rows {
		ordered[i] = msgs[r.i]
	}
	msgs = ordered
	type group struct{ lo, hi int }
	var groups []group
	for i := range msgs {
		if i == 0 || msgs[i].key.Subject != msgs[i-1].key.Subject {
			groups = append(groups, group{i, i})
		}
		groups[len(groups)-1].hi = i + 1
	}
	slices.SortFunc(groups, func(a, b group) int { return bySent(&msgs[a.lo], &msgs[b.lo]) })
	out := make([]imap.ThreadData, len(groups))
	for i, g := range groups {
		out[i].Chain = []uint32{num(&msgs[g.lo])}
		for k := g.lo + 1; k < g.hi; k++ {
			out[i].SubThreads = append(out[i].SubThreads, imap.ThreadData{Chain: []uint32{num(&msgs[k])}})
		}
	}
	return out
}
