package jmap

import (
	"encoding/json"
	"errors"
	"slices"

	"github.com/mailvault/mailvault/backend"
)

func (rq *request) threadGet(raw json.RawMessage) (any, error) {
	var args getArgs
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	acct, err := rq.account(args.AccountID)
	if err != nil {
		return nil, err
	}
	if _, err := properties(args.Properties, []string{"id", "emailIds"}, []string{"emailIds"}); err != nil {
		return nil, err
	}
	if args.IDs == nil {
		return nil, &methodError{Type: "requestTooLarge", Description: "Thread/get needs ids"}
	}
	if len(*args.IDs) > maxObjectsInGet {
		return nil, &methodError{Type: "requestTooLarge", Description: "too many ids"}
	}
	st, _, err := rq.state(acct)
	if err != nil {
		return nil, err
	}
	tt, err := rq.h.threadsOf(rq.ctx, rq.u.t)
	if err != nil {
		return nil, err
	}
	type thread struct {
		ID       string   `json:"id"`
		EmailIDs []string `json:"emailIds"`
	}
	resp := getResponse{AccountID: args.AccountID, State: st.thread(), List: []any{}, NotFound: []string{}}
	for _, id := range *args.IDs {
		root, _ := parseID('T', id)
		members := tt.members(root)
		in, err := rq.u.t.Memberships(rq.u.login, acct.ID, members)
		if err != nil {
			return nil, backendError(err)
		}
		var visible []uint64
		for i, mid := range members {
			if in[i] != nil {
				visible = append(visible, mid)
			}
		}
		if len(visible) == 0 {
			resp.NotFound = append(resp.NotFound, id)
			continue
		}
		// Oldest received first, as RFC 8621 asks.
		infos, err := rq.u.t.MessageInfos(visible)
		if err != nil {
			return nil, err
		}
		slices.SortStableFunc(infos, func(a, b backend.MessageInfo) int { return a.Received.Compare(b.Received) })
		ids := make([]string, len(infos))
		for i, info := range infos {
			ids[i] = emailID(info.MID)
		}
		resp.List = append(resp.List, thread{ID: threadID(root), EmailIDs: ids})
	}
	return &resp, nil
}

func (rq *request) threadChanges(raw json.RawMessage) (any, error) {
	args, acct, err := rq.changesSetup(raw)
	if err != nil {
		return nil, err
	}
	since, ok := parseState('t', args.SinceState, 2)
	if !ok {
		return nil, errCannotCalculate
	}
	st, _, err := rq.state(acct)
	if err != nil {
		return nil, err
	}
	oldM, oldN := since[0], since[1]
	if oldM > st.modseq || oldN > st.maxMID || st.lostSince(oldM) {
		return nil, errCannotCalculate
	}
	createdMails, updatedMails, err := rq.accountChanges(acct, oldM, oldN, 0, false)
	if err != nil {
		return nil, err
	}
	tt, err := rq.h.threadsOf(rq.ctx, rq.u.t)
	if err != nil {
		return nil, err
	}
	// A thread whose first message is new is new to the account: all its
	// messages are newer still.
	var created, updated []uint64
	for _, r := range tt.threadsOfAll(append(createdMails, updatedMails...)) {
		if r > oldN {
			created = append(created, r)
		} else {
			updated = append(updated, r)
		}
	}
	slices.Sort(created)
	slices.Sort(updated)
	created, updated = slices.Compact(created), slices.Compact(updated)
	if args.MaxChanges != nil && len(created)+len(updated) > *args.MaxChanges {
		return nil, errCannotCalculate
	}
	return &changesResponse{AccountID: args.AccountID, OldState: args.SinceState, NewState: st.thread(),
		Created: idList(created, threadID), Updated: idList(updated, threadID), Destroyed: []string{}}, nil
}

func (rq *request) searchSnippetGet(raw json.RawMessage) (any, error) {
	var args struct {
		AccountID string          `json:"accountId"`
		Filter    json.RawMessage `json:"filter"`
		EmailIDs  *[]string       `json:"emailIds"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	acct, err := rq.account(args.AccountID)
	if err != nil {
		return nil, err
	}
	if args.EmailIDs == nil {
		return nil, invalidArguments("emailIds is required")
	}
	if len(*args.EmailIDs) > maxObjectsInGet {
		return nil, &methodError{Type: "requestTooLarge", Description: "too many emailIds"}
	}
	f, err := decodeFilter(args.Filter)
	if err != nil {
		return nil, err
	}
	// Snippets highlight the text conditions; mailbox conditions do not
	// matter here.
	q, err := compileFilter(f, &backend.FilterScope{}, nil, func(string) (uint64, bool) { return 0, false })
	if err != nil {
		return nil, err
	}
	type snippet struct {
		EmailID string `json:"emailId"`
		Subject any    `json:"subject"`
		Preview any    `json:"preview"`
	}
	resp := struct {
		AccountID string    `json:"accountId"`
		List      []snippet `json:"list"`
		NotFound  []string  `json:"notFound"`
	}{AccountID: args.AccountID, List: []snippet{}, NotFound: []string{}}
	var read []uint64
	for _, id := range *args.EmailIDs {
		mid, _ := parseID('M', id)
		subject, preview, err := rq.u.t.Snippet(rq.ctx, rq.u.login, acct.ID, mid, q)
		switch {
		case errors.Is(err, backend.ErrNotFound):
			resp.NotFound = append(resp.NotFound, id)
			continue
		case errors.Is(err, backend.ErrNotIndexed):
		case err != nil:
			return nil, err
		}
		read = append(read, mid)
		resp.List = append(resp.List, snippet{EmailID: id, Subject: nullIf(subject == "", subject), Preview: nullIf(preview == "", preview)})
	}
	if rq.u.compliance && len(read) > 0 {
		rq.u.audit(rq.ctx, "jmap-search-snippet", auditList(acct.Address, read))
	}
	return &resp, nil
}
