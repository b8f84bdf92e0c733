package jmap

import (
	"cmp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
)

// TestMailboxes checks Mailbox/get, /query and /changes (RFC 8621 2)
// against the folders the backend reports.
func TestMailboxes(t *testing.T) {
	f := sharedFixture(t)
	c := f.client(t, alice)
	acct := f.account(t, f.acme, alice)
	inbox, inboxInfo := f.folder(t, f.acme, alice, alice, "INBOX")
	sent, sentInfo := f.folder(t, f.acme, alice, alice, "Sent")
	projects, _ := f.folder(t, f.acme, alice, alice, "Projects")
	alpha, alphaInfo := f.folder(t, f.acme, alice, alice, "Projects/Alpha")

	res := c.api(
		call{"Mailbox/get", map[string]any{"accountId": acct, "ids": nil}, "all"},
		call{"Mailbox/get", map[string]any{"accountId": acct, "ids": []string{alpha, "F999999", "nonsense"}, "properties": []string{"name", "parentId"}}, "some"},
		call{"Mailbox/query", map[string]any{"accountId": acct, "filter": map[string]any{"role": "inbox"}}, "role"},
		call{"Mailbox/query", map[string]any{"accountId": acct, "filter": map[string]any{"parentId": nil},
			"sort": []any{map[string]any{"property": "sortOrder"}, map[string]any{"property": "name"}}, "calculateTotal": true}, "top"},
		call{"Mailbox/query", map[string]any{"accountId": acct, "filter": map[string]any{"parentId": projects}}, "children"},
	)
	all := list(t, res["all"].ok(t))
	byID := map[string]map[string]any{}
	for _, m := range all {
		byID[m["id"].(string)] = m
	}
	if len(all) != 4 {
		t.Fatalf("mailboxes: %s", res["all"].raw)
	}
	for id, want := range map[string]struct {
		name   string
		role   any
		parent any
		total  int
	}{
		inbox:    {"INBOX", "inbox", nil, inboxInfo.Messages},
		sent:     {"Sent", "sent", nil, sentInfo.Messages},
		projects: {"Projects", nil, nil, 1},
		alpha:    {"Alpha", nil, projects, alphaInfo.Messages},
	} {
		m := byID[id]
		if m["name"] != want.name || m["role"] != want.role || m["parentId"] != want.parent || num(m["totalEmails"]) != want.total ||
			num(m["unreadEmails"]) != 0 || m["isSubscribed"] != true {
			t.Errorf("mailbox %s: %v, want %+v", id, m, want)
		}
		rights := m["myRights"].(map[string]any)
		if rights["mayReadItems"] != true || rights["maySetKeywords"] != true || rights["mayAddItems"] != false || rights["mayDelete"] != false || len(rights) != 9 {
			t.Errorf("rights %v", rights)
		}
	}
	if num(byID[alpha]["totalThreads"]) != 1 || num(byID[inbox]["totalThreads"]) >= inboxInfo.Messages {
		t.Errorf("threads: alpha %v inbox %v of %d", byID[alpha]["totalThreads"], byID[inbox]["totalThreads"], inboxInfo.Messages)
	}
	some := res["some"].ok(t)
	if l := list(t, some); len(l) != 1 || len(l[0]) != 3 || l[0]["name"] != "Alpha" || l[0]["parentId"] != projects ||
		!slices.Equal(strs(t, some["notFound"]), []string{"F999999", "nonsense"}) {
		t.Errorf("some: %s", res["some"].raw)
	}
	if got := strs(t, res["role"].ok(t)["ids"]); !slices.Equal(got, []string{inbox}) {
		t.Errorf("role query %v", got)
	}
	top := res["top"].ok(t)
	if got := strs(t, top["ids"]); !slices.Equal(got, []string{inbox, sent, projects}) || num(top["total"]) != 3 {
		t.Errorf("top query %s", res["top"].raw)
	}
	if got := strs(t, res["children"].ok(t)["ids"]); !slices.Equal(got, []string{alpha}) {
		t.Errorf("children %v", got)
	}
	state := res["all"].args["state"].(string)
	ch := c.api(call{"Mailbox/changes", map[string]any{"accountId": acct, "sinceState": state}, "c"})["c"].ok(t)
	if ch["newState"] != state || len(strs(t, ch["created"])) != 0 || len(strs(t, ch["updated"])) != 0 || ch["hasMoreChanges"] != false {
		t.Errorf("no changes: %v", ch)
	}
}

// expected computes an Email/query result from backend data: the account's
// messages matching keep, sorted by key (then MID), newest first.
func (f *fixture) expected(t *testing.T, mids []uint64, keep func(backend.MessageInfo) bool, less func(a, b backend.MessageInfo) int) []string {
	t.Helper()
	slices.Sort(mids)
	mids = slices.Compact(mids)
	infos, err := f.acme.MessageInfos(mids)
	if err != nil {
		t.Fatal(err)
	}
	infos = slices.DeleteFunc(infos, func(i backend.MessageInfo) bool { return keep != nil && !keep(i) })
	slices.SortStableFunc(infos, func(a, b backend.MessageInfo) int {
		if c := less(a, b); c != 0 {
			return c
		}
		return cmp.Compare(a.MID, b.MID)
	})
	out := make([]string, len(infos))
	for i, info := range infos {
		out[i] = emailID(info.MID)
	}
	return out
}

func byNewest(a, b backend.MessageInfo) int { return b.Received.Compare(a.Received) }

// TestEmailQuery checks filters, sorts and paging of Email/query (RFC 8621
// 4.4) against what the backend holds.
func TestEmailQuery(t *testing.T) {
	f := sharedFixture(t)
	c := f.client(t, alice)
	acct := f.account(t, f.acme, alice)
	inbox, _ := f.folder(t, f.acme, alice, alice, "INBOX")
	folders := f.inAccount(t, f.acme, alice, alice)
	var everything []uint64
	for _, m := range folders {
		everything = append(everything, m...)
	}
	inboxAll := f.expected(t, slices.Clone(folders["INBOX"]), nil, byNewest)
	accountAll := f.expected(t, slices.Clone(everything), nil, byNewest)

	query := func(args map[string]any) resp {
		args["accountId"] = acct
		return c.api(call{"Email/query", args, "q"})["q"]
	}
	idsOf := func(args map[string]any) []string {
		t.Helper()
		r := query(args).ok(t)
		return strs(t, r["ids"])
	}
	in := func(m map[string]any) map[string]any {
		m["inMailbox"] = inbox
		return m
	}

	r := query(map[string]any{"filter": map[string]any{"inMailbox": inbox},
		"sort": []any{map[string]any{"property": "receivedAt", "isAscending": false}}, "calculateTotal": true}).ok(t)
	if got := strs(t, r["ids"]); !slices.Equal(got, inboxAll) || num(r["total"]) != len(inboxAll) || num(r["position"]) != 0 ||
		r["canCalculateChanges"] != true || !strings.HasPrefix(r["queryState"].(string), "q") {
		t.Fatalf("inbox: %v\nwant %v", r, inboxAll)
	}
	if got := idsOf(map[string]any{}); !slices.Equal(got, accountAll) {
		t.Errorf("no filter: %v, want %v", got, accountAll)
	}
	if got := idsOf(map[string]any{"sort": []any{map[string]any{"property": "receivedAt"}}}); !slices.Equal(got, f.expected(t, slices.Clone(everything), nil,
		func(a, b backend.MessageInfo) int { return a.Received.Compare(b.Received) })) {
		t.Errorf("oldest first: %v", got)
	}
	bySize := f.expected(t, slices.Clone(everything), nil, func(a, b backend.MessageInfo) int { return cmp.Compare(a.Size, b.Size) })
	if got := idsOf(map[string]any{"sort": []any{map[string]any{"property": "size", "isAscending": true}}}); !slices.Equal(got, bySize) {
		t.Errorf("by size: %v, want %v", got, bySize)
	}

	// Paging: position, negative position, anchor, limit.
	page := query(map[string]any{"filter": in(map[string]any{}), "position": 3, "limit": 4}).ok(t)
	if got := strs(t, page["ids"]); !slices.Equal(got, inboxAll[3:7]) || num(page["position"]) != 3 || page["total"] != nil {
		t.Errorf("page: %v", page)
	}
	last := query(map[string]any{"filter": in(map[string]any{}), "position": -2}).ok(t)
	if got := strs(t, last["ids"]); !slices.Equal(got, inboxAll[len(inboxAll)-2:]) || num(last["position"]) != len(inboxAll)-2 {
		t.Errorf("negative position: %v", last)
	}
	anchored := query(map[string]any{"filter": in(map[string]any{}), "anchor": inboxAll[5], "anchorOffset": -1, "limit": 3}).ok(t)
	if got := strs(t, anchored["ids"]); !slices.Equal(got, inboxAll[4:7]) || num(anchored["position"]) != 4 {
		t.Errorf("anchor: %v", anchored)
	}
	if capped := query(map[string]any{"limit": maxQueryLimit * 2}).ok(t); num(capped["limit"]) != maxQueryLimit {
		t.Errorf("limit not reported: %v", capped)
	}

	// Filters, each checked against facts known without the index.
	alpha2 := f.hand["thread2"].mid
	date := func(s string) time.Time {
		d, _ := time.Parse(time.RFC3339, s)
		return d
	}
	tok, tokMID := "", uint64(0)
	for i, m := range f.gen {
		if slices.Contains(folders["INBOX"], f.genID[i]) {
			tok, tokMID = m.Words[0], f.genID[i]
		}
	}
	var withAtt []uint64
	for i, m := range f.gen {
		if m.HasAttch && slices.Contains(everything, f.genID[i]) {
			withAtt = append(withAtt, f.genID[i])
		}
	}
	withAtt = append(withAtt, f.hand["alternative"].mid)
	sizes, _ := f.acme.MessageInfos([]uint64{f.hand["thread1"].mid})
	for _, tc := range []struct {
		name   string
		filter map[string]any
		want   []string
	}{
		{"text token", map[string]any{"text": tok}, ids([]uint64{tokMID})},
		{"body token", in(map[string]any{"body": tok}), ids([]uint64{tokMID})},
		{"from", map[string]any{"from": "hans@acme.example"}, ids([]uint64{f.hand["alternative"].mid})},
		{"from display name", map[string]any{"from": "Hans"}, ids([]uint64{f.hand["alternative"].mid})},
		{"cc", map[string]any{"cc": "jörg"}, ids([]uint64{f.hand["alternative"].mid})},
		{"to group member", map[string]any{"to": "dave@acme.example", "subject": "Angebot"}, ids([]uint64{f.hand["alternative"].mid})},
		{"subject", map[string]any{"subject": "Kickoff"}, ids([]uint64{f.hand["thread3"].mid, f.hand["thread2"].mid, f.hand["thread1"].mid})},
		{"header message-id", map[string]any{"header": []string{"Message-ID", "alpha-2@acme.example"}}, ids([]uint64{alpha2})},
		{"header present", map[string]any{"header": []string{"List-Unsubscribe"}}, ids([]uint64{f.hand["alternative"].mid})},
		{"after", map[string]any{"after": "2023-04-01T00:00:00Z"}, f.expected(t, slices.Clone(everything),
			func(i backend.MessageInfo) bool { return !i.Received.Before(date("2023-04-01T00:00:00Z")) }, byNewest)},
		{"before and after", map[string]any{"after": "2023-01-01T00:00:00Z", "before": "2023-04-01T00:00:00Z"},
			ids([]uint64{f.hand["related"].mid, f.hand["alternative"].mid})},
		{"exact size", map[string]any{"minSize": sizes[0].Size, "maxSize": sizes[0].Size + 1, "subject": "Kickoff"}, ids([]uint64{f.hand["thread1"].mid})},
		{"has attachment", map[string]any{"hasAttachment": true}, f.expected(t, withAtt, nil, byNewest)},
		{"or", map[string]any{"operator": "OR", "conditions": []any{
			map[string]any{"header": []string{"Message-ID", "alpha-2@acme.example"}}, map[string]any{"from": "hans@acme.example"}}},
			ids([]uint64{alpha2, f.hand["alternative"].mid})},
		{"not in inbox", map[string]any{"operator": "NOT", "conditions": []any{map[string]any{"inMailbox": inbox}}},
			f.expected(t, slices.Clone(everything), func(i backend.MessageInfo) bool { return !slices.Contains(folders["INBOX"], i.MID) }, byNewest)},
		{"in other than inbox", map[string]any{"inMailboxOtherThan": []string{inbox}},
			f.expected(t, slices.Clone(everything), func(i backend.MessageInfo) bool {
				return slices.Contains(folders["Sent"], i.MID) || slices.Contains(folders["Projects"], i.MID) || slices.Contains(folders["Projects/Alpha"], i.MID)
			}, byNewest)},
		{"and in subfolder", map[string]any{"operator": "AND", "conditions": []any{
			map[string]any{"subject": "Kickoff"}, map[string]any{"inMailbox": mustFolder(t, f, "Projects/Alpha")}}},
			ids([]uint64{f.hand["thread3"].mid, f.hand["thread2"].mid})},
		{"unknown mailbox", map[string]any{"inMailbox": "F999999"}, []string{}},
		{"other account's text", map[string]any{"subject": "4711"}, []string{}},
	} {
		if got := idsOf(map[string]any{"filter": tc.filter}); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	if len(withAtt) < 3 || tok == "" {
		t.Fatalf("fixture too small: %d with attachments, token %q", len(withAtt), tok)
	}
}

func mustFolder(t *testing.T, f *fixture, name string) string {
	id, _ := f.folder(t, f.acme, alice, alice, name)
	return id
}

// TestNewestWindows checks that a newest-first page searched in windows
// of arrival time (findNewest) equals the page of a full search, which
// calculateTotal forces.
func TestNewestWindows(t *testing.T) {
	f := sharedFixture(t)
	c := f.client(t, alice)
	acct := f.account(t, f.acme, alice)
	inbox, _ := f.folder(t, f.acme, alice, alice, "INBOX")
	var cmpd int
	for _, filter := range []map[string]any{nil, {"text": "invoice"}, {"text": "Rechnung"}, {"from": "alice"},
		{"inMailbox": inbox}, {"hasAttachment": true}, {"subject": "Kickoff"}, {"text": "nosuchword"}} {
		for _, page := range [][2]int{{0, 1}, {0, 2}, {1, 2}, {2, 1}, {0, 3}} {
			args := func(total bool) map[string]any {
				return map[string]any{"accountId": acct, "filter": filter, "position": page[0], "limit": page[1], "calculateTotal": total,
					"sort": []any{map[string]any{"property": "receivedAt", "isAscending": false}}}
			}
			r := c.api(call{"Email/query", args(false), "w"}, call{"Email/query", args(true), "full"})
			w, full := strs(t, r["w"].ok(t)["ids"]), strs(t, r["full"].ok(t)["ids"])
			if !slices.Equal(w, full) {
				t.Errorf("%v %v: windows %v, full %v", filter, page, w, full)
			}
			cmpd += len(full)
		}
	}
	if cmpd < 50 {
		t.Errorf("only %d results compared", cmpd)
	}
}
