package imapd

import (
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/mailvault/mailvault/backend"
)

// The system flags a client may store (the per-user overlay), besides any
// keyword; \Deleted is never accepted.
var mailboxFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDraft}

// Select opens a folder. SELECT allows changing the user's own flags;
// EXAMINE nothing.
func (s *session) Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.unselect()
	t, err := s.tenantHandle()
	if err != nil {
		return nil, err
	}
	ref, err := s.resolve(t, mailbox)
	if err != nil {
		return nil, err
	}
	sel := &selection{ref: ref, readOnly: options.ReadOnly, notify: make(chan struct{}, 1)}
	// Watch before the snapshot, so no arrival falls in between.
	id := ref.info.ID
	sel.unwatch = t.Watch(func(folder uint64, _ int) {
		if folder == id {
			select {
			case sel.notify <- struct{}{}:
			default:
			}
		}
	})
	snap, err := t.Snapshot(s.login, id)
	if err != nil {
		sel.unwatch()
		return nil, s.fail("select", err)
	}
	overlay, err := t.FlagOverlay(s.login, id)
	if err != nil {
		sel.unwatch()
		return nil, s.fail("select", err)
	}
	highest, err := t.HighestModSeq(s.login, id)
	if err != nil {
		sel.unwatch()
		return nil, s.fail("select", err)
	}
	sel.uids, sel.mids = snap.UIDs, snap.MIDs
	s.sel = sel
	s.audit(t, "imap-open", ref.display())

	keywords := folderKeywords(overlay)
	data := &imap.SelectData{
		Flags:       append(slices.Clip(mailboxFlags), keywords...),
		NumMessages: uint32(len(snap.UIDs)),
		UIDNext:     imap.UID(max(snap.UIDNext, 1)),
		UIDValidity: snap.UIDValidity,
		// The user's own: flags are the only thing that changes.
		HighestModSeq: highest,
	}
	if !options.ReadOnly {
		data.PermanentFlags = append(append(slices.Clip(mailboxFlags), keywords...), imap.FlagWildcard)
	}
	if seq := firstUnseen(sel.uids, overlay); seq > 0 {
		data.FirstUnseenSeqNum = uint32(seq)
	}
	if _, rev2 := s.enabled()[imap.CapIMAP4rev2]; rev2 {
		data.List = &imap.ListData{Delim: delim, Mailbox: ref.name}
	}
	return data, nil
}

// folderKeywords are the keywords the user has set in the folder, which
// FLAGS and PERMANENTFLAGS list after the system flags.
func folderKeywords(overlay map[uint32][]string) []imap.Flag {
	var keywords []imap.Flag
	for _, fl := range overlay {
		for _, f := range fl {
			if !strings.HasPrefix(f, `\`) && !slices.Contains(keywords, imap.Flag(f)) {
				keywords = append(keywords, imap.Flag(f))
			}
		}
	}
	slices.Sort(keywords)
	return keywords
}

// firstUnseen returns the sequence number of the first message without
// \Seen, 0 if there is none.
func firstUnseen(uids []uint32, overlay map[uint32][]string) int {
	if !slices.Contains(backend.DefaultFlags(), backend.FlagSeen) {
		if len(uids) > 0 {
			return 1
		}
		return 0
	}
	first := 0
	for uid, fl := range overlay {
		if slices.Contains(fl, backend.FlagSeen) {
			continue
		}
		if i, ok := slices.BinarySearch(uids, uid); ok && (first == 0 || i+1 < first) {
			first = i + 1
		}
	}
	return first
}

// span is a half-open range of positions in a selection's view.
type span struct{ lo, hi int }

// spans returns the positions numSet names in the view, ascending and
// merged. It never enumerates the client's set, which may be 1:4294967295.
func (s *session) spans(sel *selection, numSet imap.NumSet) []span {
	n := len(sel.uids)
	if n == 0 {
		return nil
	}
	var out []span
	switch set := numSet.(type) {
	case imap.SeqSet:
		for _, r := range set {
			lo, hi := resolveRange(r.Start, r.Stop, uint32(n))
			if lo > uint32(n) {
				continue
			}
			out = append(out, span{int(lo) - 1, int(min(hi, uint32(n)))})
		}
	case imap.UIDSet:
		if imap.IsSearchRes(set) {
			for _, uid := range s.saved {
				if i, ok := slices.BinarySearch(sel.uids, uid); ok {
					out = append(out, span{i, i + 1})
				}
			}
			break
		}
		last := sel.uids[n-1]
		for _, r := range set {
			lo, hi := resolveRange(uint32(r.Start), uint32(r.Stop), last)
			i := sort.Search(n, func(k int) bool { return sel.uids[k] >= lo })
			j := sort.Search(n, func(k int) bool { return sel.uids[k] > hi })
			if i < j {
				out = append(out, span{i, j})
			}
		}
	}
	return mergeSpans(out)
}

// resolveRange turns a set range into lo <= hi; 0 stands for "*", the
// largest number, and a range is taken in either direction (RFC 9051
// 6.4.4: "559:*" includes the last message even if it is below 559).
func resolveRange(start, stop, largest uint32) (lo, hi uint32) {
	if start == 0 {
		start = largest
	}
	if stop == 0 {
		stop = largest
	}
	if start > stop {
		start, stop = stop, start
	}
	return start, stop
}

func mergeSpans(in []span) []span {
	if len(in) < 2 {
		return in
	}
	slices.SortFunc(in, func(a, b span) int { return a.lo - b.lo })
	out := in[:1]
	for _, sp := range in[1:] {
		last := &out[len(out)-1]
		if sp.lo <= last.hi {
			last.hi = max(last.hi, sp.hi)
		} else {
			out = append(out, sp)
		}
	}
	return out
}

// uidSetOf returns the UIDs at the positions of spans as a compact set.
func uidSetOf(uids []uint32, spans []span) imap.UIDSet {
	var set imap.UIDSet
	for _, sp := range spans {
		for i := sp.lo; i < sp.hi; {
			j := i + 1
			for j < sp.hi && uids[j] == uids[j-1]+1 {
				j++
			}
			set = append(set, imap.UIDRange{Start: imap.UID(uids[i]), Stop: imap.UID(uids[j-1])})
			i = j
		}
	}
	return set
}
