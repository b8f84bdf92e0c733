package jmap

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
)

// newMail archives a small message into alice's INBOX and returns its MID.
func (f *fixture) newMail(t testing.TB, n int, received time.Time) uint64 {
	t.Helper()
	raw := fmt.Sprintf("From: Frank <frank@acme.example>\r\nTo: alice@acme.example\r\nSubject: Nachtrag %d\r\n"+
		"Date: %s\r\nMessage-ID: <nachtrag-%d@acme.example>\r\n\r\nNachtrag Nummer %d.\r\n", n, received.Format(time.RFC1123Z), n, n)
	return f.ingest(t, f.acme, []byte(raw), backend.Source{Mailbox: alice, Received: received})
}

// TestKeywordsAndChanges checks Email/set on keywords, the forbidden
// writes, and /changes and /queryChanges after keyword changes and new mail.
func TestKeywordsAndChanges(t *testing.T) {
	f := newFixture(t, 20)
	c := f.client(t, alice)
	acct := f.account(t, f.acme, alice)
	inbox, inboxInfo := f.folder(t, f.acme, alice, alice, "INBOX")
	inboxQuery := map[string]any{"accountId": acct, "filter": map[string]any{"inMailbox": inbox},
		"sort": []any{map[string]any{"property": "receivedAt", "isAscending": false}}}
	states := func() (email, mailbox, thread, query string, queryIDs []string) {
		r := c.api(call{"Email/get", map[string]any{"accountId": acct, "ids": []string{}}, "e"},
			call{"Mailbox/get", map[string]any{"accountId": acct, "ids": []string{}}, "m"},
			call{"Thread/get", map[string]any{"accountId": acct, "ids": []string{}}, "t"},
			call{"Email/query", inboxQuery, "q"})
		q := r["q"].ok(t)
		return r["e"].ok(t)["state"].(string), r["m"].ok(t)["state"].(string), r["t"].ok(t)["state"].(string),
			q["queryState"].(string), strs(t, q["ids"])
	}
	e0, m0, t0, q0, ids0 := states()
	x, y, z := f.hand["thread1"].mid, f.hand["related"].mid, f.hand["alternative"].mid

	r := c.api(call{"Email/set", map[string]any{"accountId": acct, "ifInState": e0,
		"update": map[string]any{
			emailID(x):                     map[string]any{"keywords/$flagged": true},
			emailID(y):                     map[string]any{"keywords": map[string]any{"$seen": true, "Projekt": true}},
			emailID(z):                     map[string]any{"keywords/$seen": nil},
			emailID(f.hand["latin1"].mid):  map[string]any{"mailboxIds": map[string]any{inbox: true}},
			emailID(f.hand["thread2"].mid): map[string]any{"keywords/a b": true},
			"M999999":                      map[string]any{"keywords/$seen": true},
		},
		"create":  map[string]any{"k1": map[string]any{"subject": "forged"}},
		"destroy": []string{emailID(x)},
	}, "s"})
	set := r["s"].ok(t)
	if set["oldState"] != e0 || set["newState"] == e0 || len(set["updated"].(map[string]any)) != 3 {
		t.Fatalf("Email/set: %s", r["s"].raw)
	}
	for key, want := range map[string]string{
		"notCreated/k1": "forbidden", "notDestroyed/" + emailID(x): "forbidden",
		"notUpdated/" + emailID(f.hand["latin1"].mid): "forbidden", "notUpdated/" + emailID(f.hand["thread2"].mid): "invalidProperties",
		"notUpdated/M999999": "notFound",
	} {
		kind, id, _ := strings.Cut(key, "/")
		if e, _ := set[kind].(map[string]any)[id].(map[string]any); e == nil || e["type"] != want {
			t.Errorf("%s: %v", key, set[kind])
		}
	}
	r = c.api(call{"Email/set", map[string]any{"accountId": acct, "ifInState": e0, "update": map[string]any{}}, "s"})
	if r["s"].errType() != "stateMismatch" {
		t.Errorf("ifInState: %s", r["s"].raw)
	}
	r = c.api(call{"Email/get", map[string]any{"accountId": acct, "ids": ids([]uint64{x, y, z}), "properties": []string{"keywords"}}, "g"})
	kw := map[string]any{}
	for _, e := range list(t, r["g"].ok(t)) {
		kw[e["id"].(string)] = e["keywords"]
	}
	if !jsonEq(kw, map[string]any{emailID(x): map[string]any{"$seen": true, "$flagged": true},
		emailID(y): map[string]any{"$seen": true, "projekt": true}, emailID(z): map[string]any{}}) {
		t.Errorf("keywords: %v", kw)
	}
	// The same overlay serves IMAP: \Seen is gone from z, \Flagged is on x.
	ms, err := f.acme.Memberships(alice, mustAccount(t, acct), []uint64{z, x})
	if err != nil {
		t.Fatal(err)
	}
	fl, _ := f.acme.Flags(alice, ms[0][0].Folder, []uint32{ms[0][0].UID})
	fx, _ := f.acme.Flags(alice, ms[1][0].Folder, []uint32{ms[1][0].UID})
	if len(fl[ms[0][0].UID]) != 0 || !slices.Contains(fx[ms[1][0].UID], `\Flagged`) {
		t.Errorf("IMAP flags: %v %v", fl, fx)
	}

	e1, m1, t1, _, _ := states()
	r = c.api(call{"Email/changes", map[string]any{"accountId": acct, "sinceState": e0}, "c"},
		call{"Mailbox/changes", map[string]any{"accountId": acct, "sinceState": m0}, "m"},
		call{"Mailbox/get", map[string]any{"accountId": acct, "ids": []string{inbox}, "properties": []string{"unreadEmails", "unreadThreads", "totalEmails"}}, "mg"})
	ch := r["c"].ok(t)
	if got := strs(t, ch["updated"]); !slices.Equal(got, ids([]uint64{min(x, y, z), mid3(x, y, z), max(x, y, z)})) ||
		len(strs(t, ch["created"])) != 0 || ch["newState"] != e1 {
		t.Errorf("Email/changes after keywords: %s", r["c"].raw)
	}
	mch := r["m"].ok(t)
	if !slices.Contains(strs(t, mch["updated"]), inbox) || !jsonEq(mch["updatedProperties"], countProperties) || mch["newState"] != m1 {
		t.Errorf("Mailbox/changes after keywords: %s", r["m"].raw)
	}
	if mb := list(t, r["mg"].ok(t))[0]; num(mb["unreadEmails"]) != 1 || num(mb["unreadThreads"]) != 1 || num(mb["totalEmails"]) != inboxInfo.Messages {
		t.Errorf("unread counts: %v", mb)
	}

	// New mail: created, paged by maxChanges; threads new; query changes.
	base := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	var fresh []uint64
	for i := range 5 {
		fresh = append(fresh, f.newMail(t, i, base.Add(time.Duration(i)*time.Hour)))
	}
	f.waitIndexed(t)
	e2, _, t2, _, ids2 := states()
	var paged []string
	since := e1
	for range 10 {
		r = c.api(call{"Email/changes", map[string]any{"accountId": acct, "sinceState": since, "maxChanges": 2}, "c"})
		ch := r["c"].ok(t)
		if len(strs(t, ch["created"])) > 2 || len(strs(t, ch["updated"])) != 0 {
			t.Fatalf("page: %s", r["c"].raw)
		}
		paged = append(paged, strs(t, ch["created"])...)
		since = ch["newState"].(string)
		if ch["hasMoreChanges"] == false {
			break
		}
	}
	if !slices.Equal(paged, ids(fresh)) || since != e2 {
		t.Errorf("paged created %v (state %s), want %v (%s)", paged, since, ids(fresh), e2)
	}
	r = c.api(call{"Thread/changes", map[string]any{"accountId": acct, "sinceState": t1}, "t"},
		call{"Email/queryChanges", map[string]any{"accountId": acct, "filter": inboxQuery["filter"], "sort": inboxQuery["sort"],
			"sinceQueryState": q0, "calculateTotal": true}, "qc"},
		call{"Email/queryChanges", map[string]any{"accountId": acct, "filter": inboxQuery["filter"], "sort": inboxQuery["sort"],
			"sinceQueryState": q0, "maxChanges": 2}, "tooMany"})
	if th := r["t"].ok(t); len(strs(t, th["created"])) != 5 || th["newState"] != t2 {
		t.Errorf("Thread/changes: %s", r["t"].raw)
	}
	qc := r["qc"].ok(t)
	// Applying the changes to the old result gives the new one.
	got := slices.DeleteFunc(slices.Clone(ids0), func(id string) bool { return slices.Contains(strs(t, qc["removed"]), id) })
	for _, a := range qc["added"].([]any) {
		item := a.(map[string]any)
		i := num(item["index"])
		got = slices.Insert(got, min(i, len(got)), item["id"].(string))
	}
	if !slices.Equal(got, ids2) || num(qc["total"]) != len(ids2) || len(qc["added"].([]any)) != 5 {
		t.Errorf("Email/queryChanges: %s\napplied %v\nwant    %v", r["qc"].raw, got, ids2)
	}
	if r["tooMany"].errType() != "tooManyChanges" {
		t.Errorf("maxChanges: %s", r["tooMany"].raw)
	}
	if e0 == e1 || e1 == e2 || t0 != t1 || t1 == t2 {
		t.Errorf("states: email %s %s %s thread %s %s %s", e0, e1, e2, t0, t1, t2)
	}

	// A message archived again into a new folder: updated, and the folder
	// is a created Mailbox.
	_, m3, _, _, _ := states()
	if _, err := f.acme.Ingest(context.Background(), f.hand["latin1"].raw, backend.Source{Mailbox: alice, Folder: "Archiv/2023"}); err != nil {
		t.Fatal(err)
	}
	r = c.api(call{"Email/changes", map[string]any{"accountId": acct, "sinceState": e2}, "c"},
		call{"Mailbox/changes", map[string]any{"accountId": acct, "sinceState": m3}, "m"},
		call{"Email/get", map[string]any{"accountId": acct, "ids": ids([]uint64{f.hand["latin1"].mid}), "properties": []string{"mailboxIds"}}, "g"})
	archiv, _ := f.folder(t, f.acme, alice, alice, "Archiv/2023")
	if got := strs(t, r["c"].ok(t)["updated"]); !slices.Equal(got, ids([]uint64{f.hand["latin1"].mid})) {
		t.Errorf("re-archived: %s", r["c"].raw)
	}
	if got := strs(t, r["m"].ok(t)["created"]); !slices.Equal(got, []string{archiv}) {
		t.Errorf("new folder: %s", r["m"].raw)
	}
	if mb := list(t, r["g"].ok(t))[0]["mailboxIds"]; !jsonEq(mb, map[string]any{inbox: true, archiv: true}) {
		t.Errorf("mailboxIds %v", mb)
	}
}

func mid3(a, b, c uint64) uint64 {
	s := []uint64{a, b, c}
	slices.Sort(s)
	return s[1]
}

func mustAccount(t testing.TB, id string) uint64 {
	n, ok := parseID('A', id)
	if !ok {
		t.Fatalf("bad account id %q", id)
	}
	return n
}

// event is one server-sent event.
type event struct {
	name string
	data map[string]any
}

// readEvents reads server-sent events into a channel until the stream ends.
func readEvents(t testing.TB, resp *http.Response) <-chan event {
	ch := make(chan event, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data)
			case line == "":
				ch <- ev
				ev = event{}
			}
		}
	}()
	return ch
}

func nextEvent(t testing.TB, ch <-chan event, name string) event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended waiting for %s", name)
			}
			if ev.name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", name)
		}
	}
}

// TestEventSource checks push (RFC 8620 7.3): the first state, new mail,
// keyword changes, pings, and closeafter.
func TestEventSource(t *testing.T) {
	f := newFixture(t, 10)
	acct := f.account(t, f.acme, alice)
	open := func(query string) *http.Response {
		req, _ := http.NewRequest("GET", f.srv.URL+eventSourcePath+"?"+query, nil)
		req.SetBasicAuth(alice, pw)
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("eventsource: %d %v", resp.StatusCode, resp.Header)
		}
		return resp
	}
	resp := open("types=*&closeafter=no&ping=1")
	defer resp.Body.Close()
	events := readEvents(t, resp)
	first := nextEvent(t, events, "state")
	changed := first.data["changed"].(map[string]any)
	st := changed[acct].(map[string]any)
	if first.data["@type"] != "StateChange" || len(changed) != 1 || !strings.HasPrefix(st["Email"].(string), "e") || st["Mailbox"] == nil || st["Thread"] == nil {
		t.Fatalf("first event %v", first.data)
	}
	ping := nextEvent(t, events, "ping")
	if num(ping.data["interval"]) != 1 {
		t.Errorf("ping %v", ping.data)
	}
	mid := f.newMail(t, 1, time.Now())
	ev := nextEvent(t, events, "state")
	now := ev.data["changed"].(map[string]any)[acct].(map[string]any)
	if now["Email"] == st["Email"] || now["EmailDelivery"] == nil {
		t.Errorf("after new mail %v (was %v)", now, st)
	}
	c := f.client(t, alice)
	c.api(call{"Email/set", map[string]any{"accountId": acct, "update": map[string]any{emailID(mid): map[string]any{"keywords/$flagged": true}}}, "s"})
	ev = nextEvent(t, events, "state")
	kw := ev.data["changed"].(map[string]any)[acct].(map[string]any)
	if kw["Email"] == now["Email"] || kw["EmailDelivery"] != nil || kw["Thread"] != nil {
		t.Errorf("after keyword change %v (was %v)", kw, now)
	}

	// closeafter=state ends the stream after the first state event.
	once := open("types=Email&closeafter=state&ping=0")
	defer once.Body.Close()
	evs := readEvents(t, once)
	if ev := nextEvent(t, evs, "state"); len(ev.data["changed"].(map[string]any)[acct].(map[string]any)) != 1 {
		t.Errorf("types=Email: %v", ev.data)
	}
	select {
	case _, more := <-evs:
		if more {
			t.Error("stream goes on after closeafter=state")
		}
	case <-time.After(5 * time.Second):
		t.Error("stream not closed after closeafter=state")
	}
}
