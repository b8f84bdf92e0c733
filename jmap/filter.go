package jmap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailvault/mailvault/index"
)

// filterNode is a decoded Email/query filter: an operator with conditions,
// or a condition. go-jmap's email.Filter is an interface without a decoder.
type filterNode struct {
	op    string // "AND", "OR", "NOT"; "" for a condition
	nodes []*filterNode
	cond  *filterCondition
}

// filterCondition is an RFC 8621 4.4.1 FilterCondition; the keyword and
// thread-keyword conditions are not supported (unsupportedFilter).
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

const maxFilterDepth = 32

func unsupportedFilter(format string, args ...any) *methodError {
	return &methodError{Type: "unsupportedFilter", Description: fmt.Sprintf(format, args...)}
}

// decodeFilter decodes a filter; null or absent is nil (everything).
func decodeFilter(raw json.RawMessage) (*filterNode, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	return decodeFilterNode(raw, 0)
}

func decodeFilterNode(raw json.RawMessage, depth int) (*filterNode, error) {
	if depth > maxFilterDepth {
		return nil, unsupportedFilter("filter nested deeper than %d", maxFilterDepth)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil || probe == nil {
		return nil, invalidArguments("a filter must be an object")
	}
	if _, ok := probe["operator"]; ok {
		var op struct {
			Operator   string            `json:"operator"`
			Conditions []json.RawMessage `json:"conditions"`
		}
		if err := decodeArgs(raw, &op); err != nil {
			return nil, err
		}
		switch op.Operator {
		case "AND", "OR", "NOT":
		default:
			return nil, unsupportedFilter("unknown operator %q", op.Operator)
		}
		n := &filterNode{op: op.Operator}
		for _, c := range op.Conditions {
			sub, err := decodeFilterNode(c, depth+1)
			if err != nil {
				return nil, err
			}
			n.nodes = append(n.nodes, sub)
		}
		return n, nil
	}
	var c filterCondition
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return nil, unsupportedFilter("%v", err)
	}
	if c.Header != nil && (len(c.Header) < 1 || len(c.Header) > 2 || c.Header[0] == "") {
		return nil, invalidArguments("header must be [name] or [name, value]")
	}
	if len(c.Header) == 2 && c.Header[1] != "" && !index.HeaderValueIndexed(strings.ToLower(strings.TrimSpace(c.Header[0]))) {
		return nil, unsupportedFilter("the values of header %q are not indexed, only its presence: filter on [%q] alone", c.Header[0], c.Header[0])
	}
	for _, n := range []*int64{c.MinSize, c.MaxSize} {
		if n != nil && *n < 0 {
			return nil, invalidArguments("sizes must not be negative")
		}
	}
	return &filterNode{cond: &c}, nil
}

// scope is the set of folders a query runs over, narrowed by inMailbox
// and inMailboxOtherThan at the top level of the filter; all are the
// account's folders.
type scope struct {
	folders, all []uint64
}

func (s *scope) only(folder uint64) {
	s.folders = slices.DeleteFunc(s.folders, func(f uint64) bool { return f != folder })
}

func (s *scope) without(folders []uint64) {
	s.folders = slices.DeleteFunc(s.folders, func(f uint64) bool { return slices.Contains(folders, f) })
}

// folderMIDs gives the messages of a folder, for mailbox conditions under
// OR and NOT, which the index cannot scope by folder.
type folderMIDs func(folder uint64) ([]uint64, error)

// maxMailboxTerms bounds the messages a mailbox condition under OR or NOT
// may stand for.
const maxMailboxTerms = 100000

// compileFilter turns a filter into an index query, narrowing sc by the
// mailbox conditions that apply to the whole filter. Mailbox conditions
// deeper down become MID sets from mids; with mids nil they are ignored
// (for snippets, which only need the text conditions).
func compileFilter(n *filterNode, sc *scope, mids folderMIDs, folderID func(string) (uint64, bool)) (index.Query, error) {
	if n == nil {
		return index.All(), nil
	}
	return compileNode(n, true, sc, mids, folderID)
}

func compileNode(n *filterNode, top bool, sc *scope, mids folderMIDs, folderID func(string) (uint64, bool)) (index.Query, error) {
	if n.cond != nil {
		return compileCondition(n.cond, top, sc, mids, folderID)
	}
	subs := make([]index.Query, 0, len(n.nodes))
	for _, c := range n.nodes {
		q, err := compileNode(c, top && n.op == "AND", sc, mids, folderID)
		if err != nil {
			return index.Query{}, err
		}
		subs = append(subs, q)
	}
	switch n.op {
	case "AND":
		return index.And(subs...), nil
	case "OR":
		return index.Or(subs...), nil
	}
	// NOT: none of the conditions.
	return index.Not(index.Or(subs...)), nil
}

func compileCondition(c *filterCondition, top bool, sc *scope, mids folderMIDs, folderID func(string) (uint64, bool)) (index.Query, error) {
	var qs []index.Query
	if c.InMailbox != nil {
		f, ok := folderID(*c.InMailbox)
		switch {
		case top:
			if !ok {
				sc.folders = nil
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
			for _, f := range sc.all {
				if slices.Contains(fs, f) {
					continue
				}
				m, err := mids(f)
				if err != nil {
					return index.Query{}, err
				}
				set = append(set, m...)
				if len(set) > maxMailboxTerms {
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
