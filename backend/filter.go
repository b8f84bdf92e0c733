package backend

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailvault/mailvault/index"
)

// Filter is a decoded filter in the JMAP Email/query filter language
// (RFC 8621 4.4.1): an operator over filters, or one condition. JMAP's
// Email/query and SearchSnippet/get speak it, and so do the queries of
// retention policies, legal holds and deletion selections.
type Filter struct {
	op   string // "AND", "OR", "NOT"; "" for a condition
	subs []*Filter
	cond *filterCondition
}

// filterCondition is an RFC 8621 4.4.1 FilterCondition; the keyword and
// thread-keyword conditions are not supported.
type filterCondition struct {
	InMailbox          *string    `json:"inMailbox"`
	InMailboxOtherThan []string   `json:"inMailboxOtherThan"`
	Before             *time.Time `json:"before"`
	After              *time.Time `json:"after"`
	MinSize            *int64     `json:"minSize"`
	MaxSize            *int64     `json:"maxSize"`
	HasAttachment      *bool      `json:"hasAttachment"`
	Text               *string    `json:"text"`
	From               *string    `json:"from"`
	To                 *string    `json:"to"`
	Cc                 *string    `json:"cc"`
	Bcc                *string    `json:"bcc"`
	Subject            *string    `json:"subject"`
	Body               *string    `json:"body"`
	Header             []string   `json:"header"`
}

// FilterError is a filter that cannot run. Unsupported: the filter
// language has it but the archive does not (JMAP's unsupportedFilter);
// otherwise the filter is malformed (JMAP's invalidArguments).
type FilterError struct {
	Unsupported bool
	Msg         string
}

func (e *FilterError) Error() string { return e.Msg }

func malformedFilter(format string, args ...any) *FilterError {
	return &FilterError{Msg: fmt.Sprintf(format, args...)}
}

func unsupportedFilter(format string, args ...any) *FilterError {
	return &FilterError{Unsupported: true, Msg: fmt.Sprintf(format, args...)}
}

const maxFilterDepth = 32

// MaxFilterMailboxTerms bounds the messages a mailbox condition under OR
// or NOT may stand for: the index cannot scope those by folder, so they
// become sets of messages.
const MaxFilterMailboxTerms = 100000

// ParseFilter decodes a filter; empty or null is nil, which matches
// everything. Errors are *FilterError.
func ParseFilter(raw json.RawMessage) (*Filter, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
		return nil, nil
	}
	return parseFilter(raw, 0)
}

func parseFilter(raw json.RawMessage, depth int) (*Filter, error) {
	if depth > maxFilterDepth {
		return nil, unsupportedFilter("filter nested deeper than %d", maxFilterDepth)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil || probe == nil {
		return nil, malformedFilter("a filter must be an object")
	}
	if _, ok := probe["operator"]; ok {
		var op struct {
			Operator   string            `json:"operator"`
			Conditions []json.RawMessage `json:"conditions"`
		}
		// Strict: a misspelt "conditions" would otherwise be an AND of
		// nothing, which matches every message.
		if err := decodeStrict(raw, &op); err != nil {
			return nil, malformedFilter("%v", err)
		}
		switch op.Operator {
		case "AND", "OR", "NOT":
		default:
			return nil, unsupportedFilter("unknown operator %q", op.Operator)
		}
		f := &Filter{op: op.Operator}
		for _, c := range op.Conditions {
			sub, err := parseFilter(c, depth+1)
			if err != nil {
				return nil, err
			}
			f.subs = append(f.subs, sub)
		}
		return f, nil
	}
	var c filterCondition
	if err := decodeStrict(raw, &c); err != nil {
		return nil, unsupportedFilter("%v", err)
	}
	if c.Header != nil && (len(c.Header) < 1 || len(c.Header) > 2 || c.Header[0] == "") {
		return nil, malformedFilter("header must be [name] or [name, value]")
	}
	// The index holds only the presence of such a header: its value would
	// be ignored and the condition match every message that has it.
	if len(c.Header) == 2 && c.Header[1] != "" && !index.HeaderValueIndexed(strings.ToLower(strings.TrimSpace(c.Header[0]))) {
		return nil, unsupportedFilter("the values of header %q are not indexed, only its presence: filter on [%q] alone", c.Header[0], c.Header[0])
	}
	for _, n := range []*int64{c.MinSize, c.MaxSize} {
		if n != nil && *n < 0 {
			return nil, malformedFilter("sizes must not be negative")
		}
	}
	return &Filter{cond: &c}, nil
}

func decodeStrict(raw json.RawMessage, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// FilterScope is the set of folders a query runs over: All are the
// account's folders, Folders those left once inMailbox and
// inMailboxOtherThan at the top level of the filter have narrowed them.
type FilterScope struct {
	Folders, All []uint64
}

func (s *FilterScope) only(folder uint64) {
	s.Folders = slices.DeleteFunc(s.Folders, func(f uint64) bool { return f != folder })
}

func (s *FilterScope) without(folders []uint64) {
	s.Folders = slices.DeleteFunc(s.Folders, func(f uint64) bool { return slices.Contains(folders, f) })
}

// FolderMIDs gives the messages of a folder, for mailbox conditions under
// OR and NOT.
type FolderMIDs func(folder uint64) ([]uint64, error)

// Query turns the filter into an index query. Mailbox conditions at the
// top level narrow sc; deeper down they become the message sets of mids,
// and with mids nil they are ignored (for snippets, which only need the
// text conditions). folderID resolves a mailbox id of the filter to a
// folder of sc.All. With sc nil the filter may not name mailboxes (the
// queries of policies, holds and selections, which name them otherwise).
func (f *Filter) Query(sc *FilterScope, mids FolderMIDs, folderID func(string) (uint64, bool)) (index.Query, error) {
	if f == nil {
		return index.All(), nil
	}
	return f.query(true, sc, mids, folderID)
}

func (f *Filter) query(top bool, sc *FilterScope, mids FolderMIDs, folderID func(string) (uint64, bool)) (index.Query, error) {
	if f.cond != nil {
		return f.cond.query(top, sc, mids, folderID)
	}
	subs := make([]index.Query, 0, len(f.subs))
	for _, c := range f.subs {
		q, err := c.query(top && f.op == "AND", sc, mids, folderID)
		if err != nil {
			return index.Query{}, err
		}
		subs = append(subs, q)
	}
	switch f.op {
	case "AND":
		return index.And(subs...), nil
	case "OR":
		return index.Or(subs...), nil
	}
	// NOT: none of the conditions.
	return index.Not(index.Or(subs...)), nil
}

func (c *filterCondition) query(top bool, sc *FilterScope, mids FolderMIDs, folderID func(string) (uint64, bool)) (index.Query, error) {
	var qs []index.Query
	if sc == nil && (c.InMailbox != nil || c.InMailboxOtherThan != nil) {
		return index.Query{}, unsupportedFilter("inMailbox and inMailboxOtherThan are not supported here: name mailboxes and folders instead")
	}
	if c.InMailbox != nil {
		f, ok := folderID(*c.InMailbox)
		switch {
		case top:
			if !ok {
				sc.Folders = nil
			} else {
				sc.only(f)
			}
		case mids == nil:
		case !ok:
			qs = append(qs, index.MIDs())
		default:
			set, err := mids(f)
			if err != nil {
				return index.Query{}, err
			}
			if len(set) > MaxFilterMailboxTerms {
				return index.Query{}, unsupportedFilter("inMailbox under OR or NOT: the mailbox has too many messages; put it at the top level")
			}
			qs = append(qs, index.MIDs(set...))
		}
	}
	if c.InMailboxOtherThan != nil {
		var fs []uint64
		for _, id := range c.InMailboxOtherThan {
			if f, ok := folderID(id); ok {
				fs = append(fs, f)
			}
		}
		switch {
		case top:
			sc.without(fs)
		case mids != nil:
			// In a folder other than these: in any of the rest.
			var set []uint64
			for _, f := range sc.All {
				if slices.Contains(fs, f) {
					continue
				}
				m, err := mids(f)
				if err != nil {
					return index.Query{}, err
				}
				set = append(set, m...)
				if len(set) > MaxFilterMailboxTerms {
					return index.Query{}, unsupportedFilter("inMailboxOtherThan under OR or NOT covers too many messages")
				}
			}
			qs = append(qs, index.MIDs(set...))
		}
	}
	if c.Before != nil || c.After != nil {
		var from, to time.Time
		if c.After != nil {
			from = *c.After
		}
		if c.Before != nil {
			to = *c.Before
		}
		qs = append(qs, index.ReceivedRange(from, to))
	}
	if c.MinSize != nil || c.MaxSize != nil {
		lo, hi := int64(-1), int64(-1)
		if c.MinSize != nil {
			lo = *c.MinSize
		}
		if c.MaxSize != nil {
			hi = *c.MaxSize
		}
		qs = append(qs, index.SizeRange(lo, hi))
	}
	if c.HasAttachment != nil {
		qs = append(qs, index.HasAttachment(*c.HasAttachment))
	}
	for _, t := range []struct {
		s     *string
		field index.Field
	}{{c.Text, index.FieldText}, {c.From, index.FieldFrom}, {c.To, index.FieldTo}, {c.Cc, index.FieldCc},
		{c.Bcc, index.FieldBcc}, {c.Subject, index.FieldSubject}, {c.Body, index.FieldBody}} {
		if t.s != nil {
			qs = append(qs, index.Text(t.field, *t.s))
		}
	}
	if c.Header != nil {
		v := ""
		if len(c.Header) == 2 {
			v = c.Header[1]
		}
		qs = append(qs, index.Header(c.Header[0], v))
	}
	if len(qs) == 1 {
		return qs[0], nil
	}
	return index.And(qs...), nil
}

// compileFilter turns the query of a policy, hold or selection into an
// index query; empty or null matches everything.
func compileFilter(raw json.RawMessage) (index.Query, error) {
	f, err := ParseFilter(raw)
	if err != nil {
		return index.Query{}, err
	}
	return f.Query(nil, nil, nil)
}
