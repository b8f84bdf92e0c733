package jmap

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/mailvault/mailvault/backend"
)

// capRetention is mailvault's vendor capability: Retention/get answers a
// message's effective retention (RFC 8620 allows vendor capabilities named
// by a URL the vendor owns).
const capRetention = "https://mailvault.org/jmap/retention"

// retentionObject is one Email's effective retention as Retention/get
// returns it: its placements in the account's mailboxes, and for the
// message as a whole the date until which its bytes are kept (the longest
// minimum of any placement) and the legal holds on it.
type retentionObject struct {
	ID           string               `json:"id"` // the Email id
	MinUntil     time.Time            `json:"minUntil"`
	MaxUntil     *time.Time           `json:"maxUntil"`
	Holds        []string             `json:"holds"`
	IndexPending bool                 `json:"indexPending"`
	Placements   []retentionPlacement `json:"placements"`
	Policy       string               `json:"policy"` // of the first placement in this account
}

type retentionPlacement struct {
	MailboxID string     `json:"mailboxId"`
	Policy    string     `json:"policy"`
	MinUntil  time.Time  `json:"minUntil"`
	MaxUntil  *time.Time `json:"maxUntil"`
	MaxAction *string    `json:"maxAction"`
	Holds     []string   `json:"holds"`
	Deletable bool       `json:"deletable"`
}

func (rq *request) retentionGet(raw json.RawMessage) (any, error) {
	var args getArgs
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	acct, err := rq.account(args.AccountID)
	if err != nil {
		return nil, err
	}
	if args.IDs == nil {
		return nil, &methodError{Type: "requestTooLarge", Description: "Retention/get needs ids"}
	}
	if len(*args.IDs) > maxObjectsInGet {
		return nil, &methodError{Type: "requestTooLarge", Description: "too many ids"}
	}
	resp := getResponse{AccountID: args.AccountID, List: []any{}, NotFound: []string{}}
	t := rq.u.t
	for _, id := range *args.IDs {
		mid, ok := parseID('M', id)
		var in [][]backend.FolderUID
		if ok {
			if in, err = t.Memberships(rq.u.login, acct.ID, []uint64{mid}); err != nil {
				return nil, backendError(err)
			}
		}
		if !ok || in[0] == nil {
			resp.NotFound = append(resp.NotFound, id)
			continue
		}
		ret, err := t.EffectiveRetention(rq.ctx, mid)
		if errors.Is(err, backend.ErrNotFound) {
			resp.NotFound = append(resp.NotFound, id)
			continue
		}
		if err != nil {
			return nil, err
		}
		obj := retentionObject{ID: id, MinUntil: ret.MinUntil, MaxUntil: ret.MaxUntil, Holds: []string{}, IndexPending: ret.IndexPending, Placements: []retentionPlacement{}}
		for _, h := range ret.Holds {
			obj.Holds = append(obj.Holds, h.ID)
		}
		// Placements in other accounts are not the user's to see.
		for _, fu := range in[0] {
			for _, p := range ret.Placements {
				if p.Mailbox != acct.Address || p.UID != fu.UID || !rq.folderNamed(acct.ID, fu.Folder, p.Folder) {
					continue
				}
				rp := retentionPlacement{MailboxID: mailboxID(fu.Folder), Policy: p.Policy, MinUntil: p.MinUntil, MaxUntil: p.MaxUntil, Holds: p.Holds, Deletable: p.Deletable}
				if rp.Holds == nil {
					rp.Holds = []string{}
				}
				if p.MaxAction != "" {
					a := p.MaxAction
					rp.MaxAction = &a
				}
				obj.Placements = append(obj.Placements, rp)
				if obj.Policy == "" {
					obj.Policy = p.Policy
				}
			}
		}
		resp.List = append(resp.List, obj)
	}
	return resp, nil
}

// folderNamed reports whether folder of the account has the given name.
func (rq *request) folderNamed(account, folder uint64, name string) bool {
	fs, err := rq.u.t.Folders(rq.u.login, account)
	if err != nil {
		return false
	}
	for _, f := range fs {
		if f.ID == folder {
			return f.Name == name
		}
	}
	return false
}
