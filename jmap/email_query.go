package jmap

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/index"
)

var sortFields = map[string]string{
	"receivedAt": index.SortReceived, "sentAt": index.SortSent, "size": index.SortSize,
	"from": index.SortFrom, "subject": index.SortSubject,
}

type emailQueryArgs struct {
	AccountID       string          `json:"accountId"`
	Filter          json.RawMessage `json:"filter"`
	Sort            []comparator    `json:"sort"`
	Position        int             `json:"position"`
	Anchor          *string         `json:"anchor"`
	AnchorOffset    int             `json:"anchorOffset"`
	Limit           *int            `json:"limit"`
	CalculateTotal  bool            `json:"calculateTotal"`
	CollapseThreads bool            `json:"collapseThreads"`
}

// compiledQuery is an Email/query filter and sort ready for the index.
type compiledQuery struct {
	folders []uint64
	q       index.Query
	sort    []index.Sort
}

// compileQuery checks filter and sort against the account's folders.
func (rq *request) compileQuery(folders []backend.FolderInfo, filterRaw json.RawMessage, sort []comparator) (compiledQuery, error) {
	var cq compiledQuery
	for _, c := range sort {
		field, ok := sortFields[c.Property]
		if !ok || c.Keyword != nil {
			return cq, &methodError{Type: "unsupportedSort", Description: fmt.Sprintf("cannot sort by %q; the server sorts by %v", c.Property, sortOptions)}
		}
		cq.sort = append(cq.sort, index.Sort{Field: field, Desc: c.IsAscending != nil && !*c.IsAscending})
	}
	f, err := decodeFilter(filterRaw)
	if err != nil {
		return cq, err
	}
	sc := &backend.FilterScope{}
	for _, fi := range folders {
		sc.All = append(sc.All, fi.ID)
	}
	sc.Folders = slices.Clone(sc.All)
	folderID := func(id string) (uint64, bool) {
		n, ok := parseID('F', id)
		return n, ok && slices.Contains(sc.All, n)
	}
	mids := func(folder uint64) ([]uint64, error) {
		snap, err := rq.u.t.Snapshot(rq.u.login, folder)
		if err != nil {
			return nil, backendError(err)
		}
		return snap.MIDs, nil
	}
	if cq.q, err = compileFilter(f, sc, mids, folderID); err != nil {
		return cq, err
	}
	cq.folders = sc.Folders
	return cq, nil
}

// find runs the query; limit < 0 means all.
func (rq *request) find(cq compiledQuery, offset, limit int) ([]uint64, int, error) {
	mids, total, err := rq.u.t.Find(rq.ctx, rq.u.login, cq.folders, cq.q, cq.sort, offset, limit)
	if err != nil {
		return nil, 0, backendError(err)
	}
	return mids, total, nil
}

func (rq *request) emailQuery(raw json.RawMessage) (any, error) {
	var args emailQueryArgs
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	acct, err := rq.account(args.AccountID)
	if err != nil {
		return nil, err
	}
	if args.Limit != nil && *args.Limit < 0 {
		return nil, invalidArguments("limit must not be negative")
	}
	st, folders, err := rq.state(acct)
	if err != nil {
		return nil, err
	}
	cq, err := rq.compileQuery(folders, args.Filter, args.Sort)
	if err != nil {
		return nil, err
	}
	limit := maxQueryLimit
	resp := &queryResponse{AccountID: args.AccountID, QueryState: st.query(), CanCalculateChanges: !args.CollapseThreads, IDs: []string{}}
	if args.Limit == nil || *args.Limit > maxQueryLimit {
		resp.Limit = &limit
	} else {
		limit = *args.Limit
	}
	var mids []uint64
	var total int
	if !args.CollapseThreads && args.Anchor == nil {
		pos := args.Position
		if pos < 0 {
			if _, total, err = rq.find(cq, 0, 0); err != nil {
				return nil, err
			}
			pos = max(total+pos, 0)
		}
		found := false
		if !args.CalculateTotal && newestFirst(cq.sort) {
			if mids, found, err = rq.findNewest(cq, pos, limit); err != nil {
				return nil, err
			}
		}
		if !found {
			if mids, total, err = rq.find(cq, pos, limit); err != nil {
				return nil, err
			}
		}
		resp.Position = pos
	} else {
		all, _, err := rq.find(cq, 0, -1)
		if err != nil {
			return nil, err
		}
		if args.CollapseThreads {
			if all, err = rq.collapse(all); err != nil {
				return nil, err
			}
		}
		total = len(all)
		ids := make([]string, len(all))
		for i, mid := range all {
			ids[i] = emailID(mid)
		}
		page, pos, err := window(ids, args.Position, args.Anchor, args.AnchorOffset, &limit)
		if err != nil {
			return nil, err
		}
		resp.IDs, resp.Position = page, pos
	}
	for _, mid := range mids {
		resp.IDs = append(resp.IDs, emailID(mid))
	}
	if args.CalculateTotal {
		resp.Total = &total
	}
	if rq.u.compliance {
		rq.u.audit(rq.ctx, "jmap-email-query", fmt.Sprintf("%s filter=%.500s hits=%d", acct.Address, args.Filter, total))
	}
	return resp, nil
}

// Windows of arrival time for findNewest: the first holds firstWindow
// times the messages needed (if the account's mail arrived evenly), each
// further one windowGrowth times more.
const (
	firstWindow  = 16
	windowGrowth = 8
)

func newestFirst(sort []index.Sort) bool {
	return len(sort) == 0 || len(sort) == 1 && sort[0].Field == index.SortReceived && sort[0].Desc
}

// findNewest answers a newest-first query for a page near the top without
// visiting every match, which costs time in proportion to the matches: it
// searches windows of arrival time back from the newest message, growing
// them until one holds enough matches. Whatever lies outside a window
// arrived earlier than everything in it, so the window's top is the
// overall top. ok is false when no window was enough (or worth trying);
// the caller then searches everything.
func (rq *request) findNewest(cq compiledQuery, offset, limit int) (mids []uint64, ok bool, err error) {
	need := offset + limit
	members := 0
	var oldest, newest int64
	for _, f := range cq.folders {
		m, err := rq.h.mark(rq.u.t, rq.u.login, f)
		if err != nil {
			return nil, false, backendError(err)
		}
		if m.Members == 0 {
			continue
		}
		if members == 0 {
			oldest, newest = m.MinReceived, m.MaxReceived
		}
		members += m.Members
		oldest, newest = min(oldest, m.MinReceived), max(newest, m.MaxReceived)
	}
	span := float64(newest - oldest)
	for frac := float64(firstWindow*need) / float64(max(members, 1)); frac < 1 && span > 0; frac *= windowGrowth {
		from := time.Unix(newest-int64(frac*span), 0)
		q := index.And(cq.q, index.ReceivedRange(from, time.Time{}))
		mids, total, err := rq.u.t.Find(rq.ctx, rq.u.login, cq.folders, q, cq.sort, offset, limit)
		if err != nil {
			return nil, false, backendError(err)
		}
		if total >= need {
			return mids, true, nil
		}
	}
	return nil, false, nil
}

// collapse keeps the first message of each thread.
func (rq *request) collapse(mids []uint64) ([]uint64, error) {
	tt, err := rq.h.threadsOf(rq.ctx, rq.u.t)
	if err != nil {
		return nil, err
	}
	roots := tt.threadsOfAll(mids)
	seen := make(map[uint64]bool, len(mids))
	out := mids[:0:0]
	for i, mid := range mids {
		if !seen[roots[i]] {
			seen[roots[i]] = true
			out = append(out, mid)
		}
	}
	return out, nil
}

type addedItem struct {
	ID    string `json:"id"`
	Index int    `json:"index"`
}

// emailQueryChanges relies on the archive: messages never leave an
// account and the filters and sorts see immutable properties only, so the
// old results are the new ones without the messages that are new or
// changed since; those are reported as removed (if they are old) and added
// at their position.
func (rq *request) emailQueryChanges(raw json.RawMessage) (any, error) {
	var args struct {
		AccountID       string          `json:"accountId"`
		Filter          json.RawMessage `json:"filter"`
		Sort            []comparator    `json:"sort"`
		SinceQueryState string          `json:"sinceQueryState"`
		MaxChanges      *int            `json:"maxChanges"`
		UpToID          *string         `json:"upToId"`
		CalculateTotal  bool            `json:"calculateTotal"`
		CollapseThreads bool            `json:"collapseThreads"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	acct, err := rq.account(args.AccountID)
	if err != nil {
		return nil, err
	}
	since, ok := parseState('q', args.SinceQueryState, 2)
	if !ok || args.CollapseThreads {
		return nil, errCannotCalculate
	}
	st, folders, err := rq.state(acct)
	if err != nil {
		return nil, err
	}
	oldM, oldN := since[0], since[1]
	if oldM > st.modseq || oldN > st.maxMID || st.lostSince(oldM) {
		return nil, errCannotCalculate
	}
	cq, err := rq.compileQuery(folders, args.Filter, args.Sort)
	if err != nil {
		return nil, err
	}
	all, total, err := rq.find(cq, 0, -1)
	if err != nil {
		return nil, err
	}
	if args.UpToID != nil {
		if n, ok := parseID('M', *args.UpToID); ok {
			if i := slices.Index(all, n); i >= 0 {
				all = all[:i+1]
			}
		}
	}
	infos, err := rq.u.t.MessageInfos(all)
	if err != nil {
		return nil, err
	}
	resp := struct {
		AccountID     string      `json:"accountId"`
		OldQueryState string      `json:"oldQueryState"`
		NewQueryState string      `json:"newQueryState"`
		Total         *int        `json:"total,omitempty"`
		Removed       []string    `json:"removed"`
		Added         []addedItem `json:"added"`
	}{AccountID: args.AccountID, OldQueryState: args.SinceQueryState, NewQueryState: st.query(),
		Removed: []string{}, Added: []addedItem{}}
	for i, info := range infos {
		if info.MID <= oldN && info.ModSeq <= oldM {
			continue
		}
		if info.MID <= oldN {
			resp.Removed = append(resp.Removed, emailID(info.MID))
		}
		resp.Added = append(resp.Added, addedItem{ID: emailID(info.MID), Index: i})
	}
	if args.MaxChanges != nil && len(resp.Removed)+len(resp.Added) > *args.MaxChanges {
		return nil, &methodError{Type: "tooManyChanges"}
	}
	if args.CalculateTotal {
		resp.Total = &total
	}
	return &resp, nil
}

// accountChanges returns the messages of the account created and updated
// since the Email state (M, N, K), and the flag sequence read.
func (rq *request) accountChanges(acct backend.MailboxView, oldM, oldN, oldK uint64, withFlags bool) (created, updated []uint64, err error) {
	t, login := rq.u.t, rq.u.login
	changes, err := t.MailboxChanges(login, acct.ID, oldN, oldM)
	if err != nil {
		return nil, nil, backendError(err)
	}
	seen := map[uint64]bool{}
	for _, c := range changes {
		seen[c.MID] = true
		if c.MID > oldN {
			created = append(created, c.MID)
		} else {
			updated = append(updated, c.MID)
		}
	}
	if !withFlags {
		return created, updated, nil
	}
	flagged, _, ok, err := t.FlagChanges(login, oldK)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, errCannotCalculate
	}
	slices.Sort(flagged)
	flagged = slices.Compact(flagged)
	in, err := t.Memberships(login, acct.ID, flagged)
	if err != nil {
		return nil, nil, backendError(err)
	}
	for i, mid := range flagged {
		if in[i] != nil && !seen[mid] && mid <= oldN {
			updated = append(updated, mid)
		}
	}
	slices.Sort(updated)
	return created, updated, nil
}

func (rq *request) emailChanges(raw json.RawMessage) (any, error) {
	args, acct, err := rq.changesSetup(raw)
	if err != nil {
		return nil, err
	}
	since, ok := parseState('e', args.SinceState, 3)
	if !ok {
		return nil, errCannotCalculate
	}
	st, _, err := rq.state(acct)
	if err != nil {
		return nil, err
	}
	oldM, oldN, oldK := since[0], since[1], since[2]
	if oldM > st.modseq || oldN > st.maxMID || oldK > st.flagSeq || st.lostSince(oldM) {
		return nil, errCannotCalculate
	}
	created, updated, err := rq.accountChanges(acct, oldM, oldN, oldK, true)
	if err != nil {
		return nil, err
	}
	resp := &changesResponse{AccountID: args.AccountID, OldState: args.SinceState, NewState: st.email(),
		Created: idList(created, emailID), Updated: idList(updated, emailID), Destroyed: []string{}}
	if args.MaxChanges != nil && len(created)+len(updated) > *args.MaxChanges {
		// Send the oldest new messages with every update; the state in
		// between has N at the last message sent.
		room := *args.MaxChanges - len(updated)
		if room <= 0 {
			return nil, errCannotCalculate
		}
		created = created[:room]
		resp.Created = idList(created, emailID)
		resp.NewState = joinState('e', st.modseq, created[len(created)-1], st.flagSeq)
		resp.HasMoreChanges = true
	}
	return resp, nil
}

func idList(mids []uint64, format func(uint64) string) []string {
	out := make([]string, len(mids))
	for i, mid := range mids {
		out[i] = format(mid)
	}
	return out
}
