package jmap

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mailvault/mailvault/backend"
)

type setError struct {
	Type        string   `json:"type"`
	Description string   `json:"description,omitempty"`
	Properties  []string `json:"properties,omitempty"`
}

var errSetForbidden = &setError{Type: "forbidden", Description: "The archive is read-only: only keywords can be changed."}

// emailSet changes keywords, which are the user's own flags; anything
// that would change an archived message or its mailboxes is forbidden.
func (rq *request) emailSet(raw json.RawMessage) (any, error) {
	var args struct {
		AccountID string                                `json:"accountId"`
		IfInState *string                               `json:"ifInState"`
		Create    map[string]json.RawMessage            `json:"create"`
		Update    map[string]map[string]json.RawMessage `json:"update"`
		Destroy   []string                              `json:"destroy"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	acct, err := rq.account(args.AccountID)
	if err != nil {
		return nil, err
	}
	if len(args.Create)+len(args.Update)+len(args.Destroy) > maxObjectsInSet {
		return nil, &methodError{Type: "requestTooLarge", Description: fmt.Sprintf("at most %d changes per Email/set", maxObjectsInSet)}
	}
	st, _, err := rq.state(acct)
	if err != nil {
		return nil, err
	}
	if args.IfInState != nil && *args.IfInState != st.email() {
		return nil, &methodError{Type: "stateMismatch"}
	}
	resp := struct {
		AccountID    string               `json:"accountId"`
		OldState     string               `json:"oldState"`
		NewState     string               `json:"newState"`
		Created      map[string]any       `json:"created"`
		Updated      map[string]any       `json:"updated"`
		Destroyed    []string             `json:"destroyed"`
		NotCreated   map[string]*setError `json:"notCreated"`
		NotUpdated   map[string]*setError `json:"notUpdated"`
		NotDestroyed map[string]*setError `json:"notDestroyed"`
	}{AccountID: args.AccountID, OldState: st.email()}
	for id := range args.Create {
		if resp.NotCreated == nil {
			resp.NotCreated = map[string]*setError{}
		}
		resp.NotCreated[id] = errSetForbidden
	}
	for _, id := range args.Destroy {
		if resp.NotDestroyed == nil {
			resp.NotDestroyed = map[string]*setError{}
		}
		resp.NotDestroyed[id] = errSetForbidden
	}
	changed := false
	for id, patch := range args.Update {
		serr, err := rq.updateKeywords(acct, id, patch)
		if err != nil {
			return nil, err
		}
		if serr != nil {
			if resp.NotUpdated == nil {
				resp.NotUpdated = map[string]*setError{}
			}
			resp.NotUpdated[id] = serr
			continue
		}
		if resp.Updated == nil {
			resp.Updated = map[string]any{}
		}
		resp.Updated[id] = nil
		changed = true
	}
	resp.NewState = resp.OldState
	if changed {
		rq.h.notifyFlags(rq.u.key())
		if st, _, err = rq.state(acct); err != nil {
			return nil, err
		}
		resp.NewState = st.email()
	}
	return &resp, nil
}

// updateKeywords applies one update: "keywords" replaces them all,
// "keywords/<keyword>" true or null adds or removes one.
func (rq *request) updateKeywords(acct backend.MailboxView, id string, patch map[string]json.RawMessage) (*setError, error) {
	mid, ok := parseID('M', id)
	if !ok {
		return &setError{Type: "notFound"}, nil
	}
	var set []string
	replace := false
	var add, remove []string
	for k, v := range patch {
		if k == "keywords" {
			var kws map[string]bool
			if err := json.Unmarshal(v, &kws); err != nil {
				return &setError{Type: "invalidProperties", Properties: []string{k}, Description: "keywords must be an object of true values"}, nil
			}
			replace = true
			for kw, on := range kws {
				if !on || !validKeyword(kw) {
					return &setError{Type: "invalidProperties", Properties: []string{k}, Description: fmt.Sprintf("invalid keyword %q", kw)}, nil
				}
				set = append(set, keywordFlag(kw))
			}
			continue
		}
		kw, isKeyword := strings.CutPrefix(k, "keywords/")
		if !isKeyword {
			return &setError{Type: "forbidden", Properties: []string{k}, Description: "The archive is read-only: only keywords can be changed."}, nil
		}
		kw = strings.ReplaceAll(strings.ReplaceAll(kw, "~1", "/"), "~0", "~")
		if !validKeyword(kw) {
			return &setError{Type: "invalidProperties", Properties: []string{k}, Description: fmt.Sprintf("invalid keyword %q", kw)}, nil
		}
		switch string(v) {
		case "true":
			add = append(add, keywordFlag(kw))
		case "null", "false":
			remove = append(remove, keywordFlag(kw))
		default:
			return &setError{Type: "invalidProperties", Properties: []string{k}, Description: "a keyword patch is true or null"}, nil
		}
	}
	if replace && (add != nil || remove != nil) {
		return &setError{Type: "invalidPatch", Description: "keywords and keywords/... in one patch"}, nil
	}
	apply := func(op backend.FlagOp, flags []string) error {
		return rq.u.t.SetMessageFlags(rq.ctx, rq.u.login, acct.ID, mid, op, flags)
	}
	var err error
	switch {
	case replace:
		err = apply(backend.FlagsSet, set)
	default:
		if len(add) > 0 {
			err = apply(backend.FlagsAdd, add)
		}
		if err == nil && len(remove) > 0 {
			err = apply(backend.FlagsRemove, remove)
		}
	}
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return &setError{Type: "notFound"}, nil
	case errors.Is(err, backend.ErrInvalid), errors.Is(err, backend.ErrDenied):
		return &setError{Type: "invalidProperties", Properties: []string{"keywords"}, Description: err.Error()}, nil
	}
	return nil, err
}

// validKeyword checks RFC 8621's keyword syntax: 1-255 characters of
// %x21-%x7e except ( ) { ] % * " \.
func validKeyword(k string) bool {
	if k == "" || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c < 0x21 || c > 0x7e || strings.IndexByte(`(){]%*"\`, c) >= 0 {
			return false
		}
	}
	return true
}
