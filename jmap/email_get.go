package jmap

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/mailparse"
)

var emailProperties = []string{"id", "blobId", "threadId", "mailboxIds", "keywords", "size",
	"receivedAt", "headers", "messageId", "inReplyTo", "references", "sender", "from", "to", "cc",
	"bcc", "replyTo", "subject", "sentAt", "bodyStructure", "bodyValues", "textBody", "htmlBody",
	"attachments", "hasAttachment", "preview"}

var defaultEmailProperties = []string{"id", "blobId", "threadId", "mailboxIds", "keywords", "size",
	"receivedAt", "messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc",
	"replyTo", "subject", "sentAt", "hasAttachment", "preview", "bodyValues", "textBody",
	"htmlBody", "attachments"}

// summaryProperties are served from the summary stored at ingest.
var summaryProperties = []string{"messageId", "inReplyTo", "references", "sender", "from", "to",
	"cc", "bcc", "replyTo", "subject", "sentAt", "bodyStructure", "bodyValues", "textBody",
	"htmlBody", "attachments", "hasAttachment", "preview"}

const utcDate = "2006-01-02T15:04:05Z"

type emailGetArgs struct {
	AccountID           string    `json:"accountId"`
	IDs                 *[]string `json:"ids"`
	Properties          *[]string `json:"properties"`
	BodyProperties      *[]string `json:"bodyProperties"`
	FetchTextBodyValues bool      `json:"fetchTextBodyValues"`
	FetchHTMLBodyValues bool      `json:"fetchHTMLBodyValues"`
	FetchAllBodyValues  bool      `json:"fetchAllBodyValues"`
	MaxBodyValueBytes   int       `json:"maxBodyValueBytes"`
}

// emailPlan is what Email/get must produce for each message.
type emailPlan struct {
	args    emailGetArgs
	want    map[string]bool
	headers []headerProp
	parts   *partProps
}

func (ep *emailPlan) needSummary() bool {
	return slices.ContainsFunc(summaryProperties, func(p string) bool { return ep.want[p] })
}

func (ep *emailPlan) needRaw() bool {
	fetch := ep.args.FetchAllBodyValues || ep.args.FetchTextBodyValues || ep.args.FetchHTMLBodyValues
	bodies := ep.want["bodyStructure"] || ep.want["textBody"] || ep.want["htmlBody"] || ep.want["attachments"]
	return ep.want["headers"] || len(ep.headers) > 0 || ep.want["bodyValues"] && fetch || bodies && ep.parts.needRaw()
}

func (rq *request) emailGet(raw json.RawMessage) (any, error) {
	var ep emailPlan
	if err := decodeArgs(raw, &ep.args); err != nil {
		return nil, err
	}
	acct, err := rq.account(ep.args.AccountID)
	if err != nil {
		return nil, err
	}
	if ep.args.MaxBodyValueBytes < 0 {
		return nil, invalidArguments("maxBodyValueBytes must not be negative")
	}
	ep.want = map[string]bool{"id": true}
	props := defaultEmailProperties
	if ep.args.Properties != nil {
		props = *ep.args.Properties
	}
	for _, p := range props {
		if strings.HasPrefix(p, "header:") {
			hp, ok := parseHeaderProp(p)
			if !ok {
				return nil, invalidArguments("invalid header property %q", p)
			}
			ep.headers = append(ep.headers, hp)
			continue
		}
		if !slices.Contains(emailProperties, p) {
			return nil, invalidArguments("unknown property %q", p)
		}
		ep.want[p] = true
	}
	if ep.parts, err = parsePartProps(ep.args.BodyProperties); err != nil {
		return nil, err
	}
	st, folders, err := rq.state(acct)
	if err != nil {
		return nil, err
	}
	var ids []string
	if ep.args.IDs != nil {
		ids = *ep.args.IDs
	} else {
		mids, err := rq.allMIDs(folders, maxObjectsInGet+1)
		if err != nil {
			return nil, err
		}
		for _, mid := range mids {
			ids = append(ids, emailID(mid))
		}
	}
	if len(ids) > maxObjectsInGet {
		return nil, &methodError{Type: "requestTooLarge", Description: fmt.Sprintf("at most %d emails per Email/get", maxObjectsInGet)}
	}
	resp := getResponse{AccountID: ep.args.AccountID, State: st.email(), List: []any{}, NotFound: []string{}}
	mids := make([]uint64, len(ids))
	for i, id := range ids {
		mids[i], _ = parseID('M', id)
	}
	t, login := rq.u.t, rq.u.login
	members, err := t.Memberships(login, acct.ID, mids)
	if err != nil {
		return nil, backendError(err)
	}
	var found []uint64
	var foundMembers [][]backend.FolderUID
	for i, id := range ids {
		if members[i] == nil {
			resp.NotFound = append(resp.NotFound, id)
			continue
		}
		found = append(found, mids[i])
		foundMembers = append(foundMembers, members[i])
	}
	if len(found) == 0 {
		return &resp, nil
	}
	infos, err := t.MessageInfos(found)
	if err != nil {
		return nil, err
	}
	var keywords []map[string]bool
	if ep.want["keywords"] {
		if keywords, err = rq.keywords(foundMembers); err != nil {
			return nil, err
		}
	}
	var tt *threadTable
	if ep.want["threadId"] {
		if tt, err = rq.h.threadsOf(rq.ctx, t); err != nil {
			return nil, err
		}
	}
	for i, mid := range found {
		m := map[string]any{"id": emailID(mid)}
		if ep.want["blobId"] {
			m["blobId"] = blobID(mid)
		}
		if ep.want["threadId"] {
			m["threadId"] = threadID(tt.threadOf(mid))
		}
		if ep.want["mailboxIds"] {
			ids := make(map[string]bool, len(foundMembers[i]))
			for _, fu := range foundMembers[i] {
				ids[mailboxID(fu.Folder)] = true
			}
			m["mailboxIds"] = ids
		}
		if ep.want["keywords"] {
			m["keywords"] = keywords[i]
		}
		if ep.want["size"] {
			m["size"] = infos[i].Size
		}
		if ep.want["receivedAt"] {
			m["receivedAt"] = infos[i].Received.UTC().Format(utcDate)
		}
		var s *mailparse.Summary
		if ep.needSummary() {
			if s, err = t.Summary(rq.ctx, mid); err != nil {
				return nil, err
			}
		}
		var msg []byte
		if ep.needRaw() {
			if msg, err = t.RawMessage(rq.ctx, mid); err != nil {
				return nil, err
			}
		}
		ep.fill(m, mid, s, msg)
		resp.List = append(resp.List, m)
	}
	if rq.u.compliance {
		rq.u.audit(rq.ctx, "jmap-email-get", auditList(acct.Address, found))
	}
	return &resp, nil
}

// auditList names messages for the audit log, briefly.
func auditList(address string, mids []uint64) string {
	var b strings.Builder
	b.WriteString(address)
	for i, mid := range mids {
		if i == 50 {
			fmt.Fprintf(&b, " and %d more", len(mids)-i)
			break
		}
		b.WriteString(" ")
		b.WriteString(emailID(mid))
	}
	return b.String()
}

// allMIDs returns up to limit distinct MIDs of the folders.
func (rq *request) allMIDs(folders []backend.FolderInfo, limit int) ([]uint64, error) {
	var out []uint64
	for _, f := range folders {
		snap, err := rq.u.t.Snapshot(rq.u.login, f.ID)
		if err != nil {
			return nil, backendError(err)
		}
		out = append(out, snap.MIDs...)
		slices.Sort(out)
		out = slices.Compact(out)
		if len(out) >= limit {
			return out[:limit], nil
		}
	}
	return out, nil
}

// keywords returns the user's keywords of each message: the union of its
// flags in the folders of the account.
func (rq *request) keywords(members [][]backend.FolderUID) ([]map[string]bool, error) {
	byFolder := map[uint64][]uint32{}
	for _, ms := range members {
		for _, m := range ms {
			byFolder[m.Folder] = append(byFolder[m.Folder], m.UID)
		}
	}
	flags := map[backend.FolderUID][]string{}
	for folder, uids := range byFolder {
		slices.Sort(uids)
		fl, err := rq.u.t.Flags(rq.u.login, folder, uids)
		if err != nil {
			return nil, backendError(err)
		}
		for uid, f := range fl {
			flags[backend.FolderUID{Folder: folder, UID: uid}] = f
		}
	}
	out := make([]map[string]bool, len(members))
	for i, ms := range members {
		kw := map[string]bool{}
		for _, m := range ms {
			for _, f := range flags[m] {
				if k := flagKeyword(f); k != "" {
					kw[k] = true
				}
			}
		}
		out[i] = kw
	}
	return out, nil
}

// flagKeyword maps an IMAP flag to a JMAP keyword (RFC 8621 4.1.1); ""
// for flags that have none.
func flagKeyword(f string) string {
	switch strings.ToLower(f) {
	case `\seen`:
		return "$seen"
	case `\flagged`:
		return "$flagged"
	case `\answered`:
		return "$answered"
	case `\draft`:
		return "$draft"
	case `\recent`, `\deleted`:
		return ""
	}
	if strings.HasPrefix(f, `\`) {
		return ""
	}
	return strings.ToLower(f)
}

// keywordFlag maps a JMAP keyword to the IMAP flag stored in the overlay.
func keywordFlag(k string) string {
	switch strings.ToLower(k) {
	case "$seen":
		return backend.FlagSeen
	case "$flagged":
		return `\Flagged`
	case "$answered":
		return `\Answered`
	case "$draft":
		return `\Draft`
	}
	return strings.ToLower(k)
}

// fill sets the properties that come from the summary and the raw message.
func (ep *emailPlan) fill(m map[string]any, mid uint64, s *mailparse.Summary, raw []byte) {
	var fields []rawField
	if raw != nil && s != nil && s.Structure != nil && s.Structure.BodyStart <= int64(len(raw)) {
		fields = parseFields(raw[:s.Structure.BodyStart])
	} else if raw != nil {
		fields = parseFields(raw)
	}
	if ep.want["headers"] {
		hs := make([]map[string]string, len(fields))
		for i, f := range fields {
			hs[i] = map[string]string{"name": f.name, "value": strings.ToValidUTF8(f.value, "\uFFFD")}
		}
		m["headers"] = hs
	}
	for _, hp := range ep.headers {
		m[hp.key] = hp.value(fields)
	}
	if s == nil {
		return
	}
	e := &s.Envelope
	present := func(name string) bool {
		return slices.ContainsFunc(s.Headers, func(h mailparse.Header) bool { return strings.EqualFold(h.Name, name) })
	}
	addrs := func(name string, l []mailparse.Address) any {
		if !present(name) {
			return nil
		}
		return emailAddresses(l)
	}
	if ep.want["messageId"] {
		m["messageId"] = nullIf(e.MessageID == "", []string{e.MessageID})
	}
	if ep.want["inReplyTo"] {
		m["inReplyTo"] = nullIf(len(e.InReplyTo) == 0, e.InReplyTo)
	}
	if ep.want["references"] {
		m["references"] = nullIf(len(s.References) == 0, s.References)
	}
	for _, a := range []struct {
		prop, header string
		list         []mailparse.Address
	}{{"sender", "Sender", e.Sender}, {"from", "From", e.From}, {"to", "To", e.To}, {"cc", "Cc", e.Cc},
		{"bcc", "Bcc", e.Bcc}, {"replyTo", "Reply-To", e.ReplyTo}} {
		if ep.want[a.prop] {
			m[a.prop] = addrs(a.header, a.list)
		}
	}
	if ep.want["subject"] {
		m["subject"] = nullIf(!present("Subject"), e.Subject)
	}
	if ep.want["sentAt"] {
		m["sentAt"] = nullIf(e.Date.IsZero(), e.Date.Format(time.RFC3339))
	}
	if ep.want["hasAttachment"] {
		m["hasAttachment"] = s.HasAttachment
	}
	if ep.want["preview"] {
		m["preview"] = s.Preview
	}
	if !(ep.want["bodyStructure"] || ep.want["textBody"] || ep.want["htmlBody"] || ep.want["attachments"] || ep.want["bodyValues"]) {
		return
	}
	root := buildParts(s.Structure)
	pp := *ep.parts
	pp.raw, pp.mid = raw, mid
	if ep.want["bodyStructure"] {
		if root == nil {
			m["bodyStructure"] = nil
		} else {
			m["bodyStructure"] = pp.object(root, true)
		}
	}
	text, html, atts := bodyLists(root)
	list := func(parts []*bodyPart) []any {
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = pp.object(p, false)
		}
		return out
	}
	if ep.want["textBody"] {
		m["textBody"] = list(text)
	}
	if ep.want["htmlBody"] {
		m["htmlBody"] = list(html)
	}
	if ep.want["attachments"] {
		m["attachments"] = list(atts)
	}
	if ep.want["bodyValues"] {
		m["bodyValues"] = ep.bodyValues(root, text, html, raw)
	}
}

type bodyValue struct {
	Value             string `json:"value"`
	IsEncodingProblem bool   `json:"isEncodingProblem"`
	IsTruncated       bool   `json:"isTruncated"`
}

// bodyValues decodes the text parts the fetch arguments ask for.
func (ep *emailPlan) bodyValues(root *bodyPart, text, html []*bodyPart, raw []byte) map[string]bodyValue {
	out := map[string]bodyValue{}
	if raw == nil || root == nil {
		return out
	}
	var parts []*bodyPart
	if ep.args.FetchAllBodyValues {
		parts = root.leaves(nil)
	}
	if ep.args.FetchTextBodyValues {
		parts = append(parts, text...)
	}
	if ep.args.FetchHTMLBodyValues {
		parts = append(parts, html...)
	}
	for _, bp := range parts {
		p := bp.p
		if _, done := out[bp.partID]; done || p.Type != "text" || p.End > int64(len(raw)) {
			continue
		}
		decoded, ok1 := transferDecode(raw[p.BodyStart:p.End], p.Encoding)
		s, ok2 := toUTF8(decoded, p.Params["charset"])
		// RFC 8621 4.1.4: line ends are LF in a body value.
		s = strings.ReplaceAll(s, "\r\n", "\n")
		v := bodyValue{IsEncodingProblem: !ok1 || !ok2}
		v.Value, v.IsTruncated = truncateUTF8(s, ep.args.MaxBodyValueBytes)
		out[bp.partID] = v
	}
	return out
}
