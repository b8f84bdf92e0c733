package jmap

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/mailvault/mailvault/backend"
)

// Mailboxes are the folders of an archive mailbox. A folder "a/b" is named
// "b" with the folder "a" as parent; when "a" does not exist as a folder,
// "a/b" hangs at the top under its full name.

var mailboxProperties = []string{"id", "name", "parentId", "role", "sortOrder", "totalEmails",
	"unreadEmails", "totalThreads", "unreadThreads", "myRights", "isSubscribed"}

// mailboxRights are the same for every folder: read, and keywords in the
// user's own overlay.
var mailboxRights = map[string]bool{
	"mayReadItems": true, "mayAddItems": false, "mayRemoveItems": false, "maySetSeen": true,
	"maySetKeywords": true, "mayCreateChild": false, "mayRename": false, "mayDelete": false, "maySubmit": false,
}

// countProperties change when mail arrives or keywords change; nothing
// else of a Mailbox ever changes.
var countProperties = []string{"totalEmails", "unreadEmails", "totalThreads", "unreadThreads"}

func folderRole(f backend.FolderInfo) any {
	switch {
	case f.Name == backend.FolderInbox:
		return "inbox"
	case f.Special != "":
		return strings.ToLower(strings.TrimPrefix(f.Special, `\`))
	}
	return nil
}

func folderSortOrder(f backend.FolderInfo) int {
	switch folderRole(f) {
	case "inbox":
		return 1
	case "sent":
		return 2
	}
	return 10
}

// folderTree returns for each folder its parent's id (0: none) and name.
func folderTree(folders []backend.FolderInfo) (parents []uint64, names []string) {
	byName := make(map[string]uint64, len(folders))
	for _, f := range folders {
		byName[f.Name] = f.ID
	}
	parents = make([]uint64, len(folders))
	names = make([]string, len(folders))
	for i, f := range folders {
		names[i] = f.Name
		for j := strings.LastIndexByte(f.Name, '/'); j > 0; j = strings.LastIndexByte(f.Name[:j], '/') {
			if id, ok := byName[f.Name[:j]]; ok {
				parents[i], names[i] = id, f.Name[j+1:]
				break
			}
		}
	}
	return parents, names
}

// properties checks the requested properties against the known ones; nil
// means all of defaults. "id" is always returned.
func properties(raw *[]string, known, defaults []string) (map[string]bool, error) {
	want := map[string]bool{"id": true}
	if raw == nil {
		for _, p := range defaults {
			want[p] = true
		}
		return want, nil
	}
	for _, p := range *raw {
		if !slices.Contains(known, p) {
			return nil, invalidArguments("unknown property %q", p)
		}
		want[p] = true
	}
	return want, nil
}

type getArgs struct {
	AccountID  string    `json:"accountId"`
	IDs        *[]string `json:"ids"`
	Properties *[]string `json:"properties"`
}

type getResponse struct {
	AccountID string   `json:"accountId"`
	State     string   `json:"state"`
	List      []any    `json:"list"`
	NotFound  []string `json:"notFound"`
}

func (rq *request) mailboxGet(raw json.RawMessage) (any, error) {
	var args getArgs
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	acct, err := rq.account(args.AccountID)
	if err != nil {
		return nil, err
	}
	if args.IDs != nil && len(*args.IDs) > maxObjectsInGet {
		return nil, &methodError{Type: "requestTooLarge", Description: "too many ids"}
	}
	want, err := properties(args.Properties, mailboxProperties, mailboxProperties)
	if err != nil {
		return nil, err
	}
	st, folders, err := rq.state(acct)
	if err != nil {
		return nil, err
	}
	resp := getResponse{AccountID: args.AccountID, State: st.mailbox(), List: []any{}, NotFound: []string{}}
	parents, names := folderTree(folders)
	pick := make([]int, 0, len(folders))
	if args.IDs == nil {
		for i := range folders {
			pick = append(pick, i)
		}
	} else {
		for _, id := range *args.IDs {
			n, _ := parseID('F', id)
			i := slices.IndexFunc(folders, func(f backend.FolderInfo) bool { return f.ID == n })
			if i < 0 {
				resp.NotFound = append(resp.NotFound, id)
				continue
			}
			pick = append(pick, i)
		}
	}
	var tt *threadTable
	if want["totalThreads"] || want["unreadThreads"] {
		if tt, err = rq.h.threadsOf(rq.ctx, rq.u.t); err != nil {
			return nil, err
		}
	}
	for _, i := range pick {
		f := folders[i]
		m := map[string]any{"id": mailboxID(f.ID)}
		if want["name"] {
			m["name"] = names[i]
		}
		if want["parentId"] {
			if parents[i] == 0 {
				m["parentId"] = nil
			} else {
				m["parentId"] = mailboxID(parents[i])
			}
		}
		if want["role"] {
			m["role"] = folderRole(f)
		}
		if want["sortOrder"] {
			m["sortOrder"] = folderSortOrder(f)
		}
		if want["totalEmails"] {
			m["totalEmails"] = f.Messages
		}
		if want["myRights"] {
			m["myRights"] = mailboxRights
		}
		if want["isSubscribed"] {
			m["isSubscribed"] = true
		}
		if want["unreadEmails"] || want["totalThreads"] || want["unreadThreads"] {
			if err := rq.folderCounts(f, tt, want, m); err != nil {
				return nil, err
			}
		}
		resp.List = append(resp.List, m)
	}
	return &resp, nil
}

// folderCounts fills unreadEmails, totalThreads and unreadThreads.
// Archived mail starts seen, so the unread messages are those the user
// marked unread: the overlay holds only messages the user ever flagged.
func (rq *request) folderCounts(f backend.FolderInfo, tt *threadTable, want map[string]bool, m map[string]any) error {
	t, login := rq.u.t, rq.u.login
	overlay, err := t.FlagOverlay(login, f.ID)
	if err != nil {
		return backendError(err)
	}
	var unreadUIDs []uint32
	for uid, flags := range overlay {
		if !slices.Contains(flags, backend.FlagSeen) && !slices.Contains(flags, `\Draft`) {
			unreadUIDs = append(unreadUIDs, uid)
		}
	}
	if want["unreadEmails"] {
		m["unreadEmails"] = len(unreadUIDs)
	}
	if tt == nil {
		return nil
	}
	snap, err := t.Snapshot(login, f.ID)
	if err != nil {
		return backendError(err)
	}
	if want["totalThreads"] {
		m["totalThreads"] = rq.h.folderThreads(t, tt, f.ID, snap.MIDs)
	}
	if want["unreadThreads"] {
		unread := map[uint64]bool{}
		for _, uid := range unreadUIDs {
			if i, ok := slices.BinarySearch(snap.UIDs, uid); ok {
				if r := tt.threadOf(snap.MIDs[i]); r != 0 {
					unread[r] = true
				}
			}
		}
		m["unreadThreads"] = len(unread)
	}
	return nil
}

// mailboxFilter is a Mailbox/query FilterCondition; null is a value for
// parentId and role, so those remember whether they were given.
type mailboxFilter struct {
	ParentID     nullable `json:"parentId"`
	Name         *string  `json:"name"`
	Role         nullable `json:"role"`
	HasAnyRole   *bool    `json:"hasAnyRole"`
	IsSubscribed *bool    `json:"isSubscribed"`
}

// nullable is a string argument that may be given as null.
type nullable struct {
	set   bool
	value *string
}

func (n *nullable) UnmarshalJSON(b []byte) error {
	n.set = true
	return json.Unmarshal(b, &n.value)
}

type comparator struct {
	Property    string  `json:"property"`
	IsAscending *bool   `json:"isAscending"`
	Collation   *string `json:"collation"`
	Keyword     *string `json:"keyword"`
}

type queryResponse struct {
	AccountID           string   `json:"accountId"`
	QueryState          string   `json:"queryState"`
	CanCalculateChanges bool     `json:"canCalculateChanges"`
	Position            int      `json:"position"`
	IDs                 []string `json:"ids"`
	Total               *int     `json:"total,omitempty"`
	Limit               *int     `json:"limit,omitempty"`
}

func (rq *request) mailboxQuery(raw json.RawMessage) (any, error) {
	var args struct {
		AccountID      string          `json:"accountId"`
		Filter         json.RawMessage `json:"filter"`
		Sort           []comparator    `json:"sort"`
		Position       int             `json:"position"`
		Anchor         *string         `json:"anchor"`
		AnchorOffset   int             `json:"anchorOffset"`
		Limit          *int            `json:"limit"`
		CalculateTotal bool            `json:"calculateTotal"`
		SortAsTree     bool            `json:"sortAsTree"`
		FilterAsTree   bool            `json:"filterAsTree"`
	}
	if err := decodeArgs(raw, &args); err != nil {
		return nil, err
	}
	acct, err := rq.account(args.AccountID)
	if err != nil {
		return nil, err
	}
	var filter mailboxFilter
	if len(args.Filter) > 0 && string(args.Filter) != "null" {
		if err := decodeArgs(args.Filter, &filter); err != nil {
			return nil, &methodError{Type: "unsupportedFilter", Description: err.Error()}
		}
	}
	st, folders, err := rq.state(acct)
	if err != nil {
		return nil, err
	}
	parents, names := folderTree(folders)
	type row struct {
		f    backend.FolderInfo
		name string
	}
	var rows []row
	for i, f := range folders {
		if pid := filter.ParentID.value; filter.ParentID.set {
			if (pid == nil) != (parents[i] == 0) || pid != nil && *pid != mailboxID(parents[i]) {
				continue
			}
		}
		if filter.Name != nil && !strings.Contains(strings.ToLower(names[i]), strings.ToLower(*filter.Name)) {
			continue
		}
		if role := filter.Role.value; filter.Role.set {
			r, _ := folderRole(f).(string)
			if role == nil && r != "" || role != nil && *role != r {
				continue
			}
		}
		if filter.HasAnyRole != nil && *filter.HasAnyRole != (folderRole(f) != nil) {
			continue
		}
		if filter.IsSubscribed != nil && !*filter.IsSubscribed {
			continue
		}
		rows = append(rows, row{f, names[i]})
	}
	for _, c := range args.Sort {
		if c.Property != "sortOrder" && c.Property != "name" {
			return nil, &methodError{Type: "unsupportedSort", Description: "Mailboxes sort by sortOrder and name"}
		}
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		for _, c := range args.Sort {
			var d int
			if c.Property == "sortOrder" {
				d = folderSortOrder(a.f) - folderSortOrder(b.f)
			} else {
				d = strings.Compare(a.name, b.name)
			}
			if c.IsAscending != nil && !*c.IsAscending {
				d = -d
			}
			if d != 0 {
				return d
			}
		}
		return 0
	})
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = mailboxID(r.f.ID)
	}
	resp := &queryResponse{AccountID: args.AccountID, QueryState: st.mailbox(), CanCalculateChanges: false}
	page, pos, err := window(ids, args.Position, args.Anchor, args.AnchorOffset, args.Limit)
	if err != nil {
		return nil, err
	}
	resp.IDs, resp.Position = page, pos
	if args.CalculateTotal {
		n := len(ids)
		resp.Total = &n
	}
	return resp, nil
}

// window applies position or anchor and limit to a full result list.
func window(ids []string, position int, anchor *string, anchorOffset int, limit *int) ([]string, int, error) {
	if limit != nil && *limit < 0 {
		return nil, 0, invalidArguments("limit must not be negative")
	}
	start := position
	if anchor != nil {
		i := slices.Index(ids, *anchor)
		if i < 0 {
			return nil, 0, &methodError{Type: "anchorNotFound"}
		}
		start = max(i+anchorOffset, 0)
	} else if start < 0 {
		start = max(len(ids)+start, 0)
	}
	start = min(start, len(ids))
	end := len(ids)
	if limit != nil {
		end = min(end, start+*limit)
	}
	return ids[start:end], start, nil
}

type changesArgs struct {
	AccountID  string `json:"accountId"`
	SinceState string `json:"sinceState"`
	MaxChanges *int   `json:"maxChanges"`
}

type changesResponse struct {
	AccountID         string   `json:"accountId"`
	OldState          string   `json:"oldState"`
	NewState          string   `json:"newState"`
	HasMoreChanges    bool     `json:"hasMoreChanges"`
	Created           []string `json:"created"`
	Updated           []string `json:"updated"`
	Destroyed         []string `json:"destroyed"`
	UpdatedProperties []string `json:"updatedProperties"` // Mailbox/changes only
}

var errCannotCalculate = &methodError{Type: "cannotCalculateChanges", Description: "The state is unknown or too old; reload."}

func (rq *request) changesSetup(raw json.RawMessage) (changesArgs, backend.MailboxView, error) {
	var args changesArgs
	if err := decodeArgs(raw, &args); err != nil {
		return args, backend.MailboxView{}, err
	}
	acct, err := rq.account(args.AccountID)
	if err != nil {
		return args, acct, err
	}
	if args.MaxChanges != nil && *args.MaxChanges <= 0 {
		return args, acct, invalidArguments("maxChanges must be positive")
	}
	return args, acct, nil
}

func (rq *request) mailboxChanges(raw json.RawMessage) (any, error) {
	args, acct, err := rq.changesSetup(raw)
	if err != nil {
		return nil, err
	}
	since, ok := parseState('m', args.SinceState, 3)
	if !ok {
		return nil, errCannotCalculate
	}
	st, folders, err := rq.state(acct)
	if err != nil {
		return nil, err
	}
	oldM, oldF, oldK := since[0], since[1], since[2]
	if oldM > st.modseq || oldF > st.maxFolder || oldK > st.flagSeq || st.lostSince(oldM) {
		return nil, errCannotCalculate
	}
	resp := &changesResponse{AccountID: args.AccountID, OldState: args.SinceState, NewState: st.mailbox(),
		Created: []string{}, Updated: []string{}, Destroyed: []string{}}
	for _, f := range folders {
		m, err := rq.h.mark(rq.u.t, rq.u.login, f.ID)
		if err != nil {
			return nil, backendError(err)
		}
		switch {
		case f.ID > oldF:
			resp.Created = append(resp.Created, mailboxID(f.ID))
		case m.MaxModSeq > oldM || st.flagSeq != oldK:
			resp.Updated = append(resp.Updated, mailboxID(f.ID))
		}
	}
	if args.MaxChanges != nil && len(resp.Created)+len(resp.Updated) > *args.MaxChanges {
		return nil, errCannotCalculate
	}
	if len(resp.Updated) > 0 {
		resp.UpdatedProperties = countProperties
	}
	return resp, nil
}
