package jmap

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	gojmap "git.sr.ht/~rockorager/go-jmap"
	"git.sr.ht/~rockorager/go-jmap/core"
	"git.sr.ht/~rockorager/go-jmap/mail"
	"git.sr.ht/~rockorager/go-jmap/mail/email"
	"git.sr.ht/~rockorager/go-jmap/mail/mailbox"
	"git.sr.ht/~rockorager/go-jmap/mail/thread"
)

// TestGoJMAPClient makes typed round trips with go-jmap's client: its
// session decoding, requests with result references, typed responses and
// blob download.
func TestGoJMAPClient(t *testing.T) {
	f := sharedFixture(t)
	client := (&gojmap.Client{SessionEndpoint: f.srv.URL + WellKnownPath}).WithBasicAuth(alice, pw)
	if err := client.Authenticate(); err != nil {
		t.Fatal(err)
	}
	acct := gojmap.ID(f.account(t, f.acme, alice))
	if client.Session.PrimaryAccounts[mail.URI] != acct || client.Session.Username != alice {
		t.Fatalf("session: %+v", client.Session)
	}
	coreCap, ok := client.Session.Capabilities[gojmap.CoreURI].(*core.Core)
	if !ok || coreCap.MaxObjectsInGet != maxObjectsInGet || coreCap.MaxCallsInRequest != maxCallsInRequest {
		t.Fatalf("core capability: %#v", client.Session.Capabilities[gojmap.CoreURI])
	}
	inbox, info := f.folder(t, f.acme, alice, alice, "INBOX")

	req := &gojmap.Request{}
	req.Invoke(&mailbox.Get{Account: acct})
	q := req.Invoke(&email.Query{Account: acct, Filter: &email.FilterCondition{InMailbox: gojmap.ID(inbox)},
		Sort: []*email.SortComparator{{Property: "receivedAt", IsAscending: false}}, Limit: 5, CalculateTotal: true})
	g := req.Invoke(&email.Get{Account: acct, ReferenceIDs: &gojmap.ResultReference{ResultOf: q, Name: "Email/query", Path: "/ids"},
		Properties: []string{"subject", "from", "receivedAt", "threadId", "textBody", "bodyValues", "keywords"}, FetchTextBodyValues: true})
	req.Invoke(&thread.Get{Account: acct, ReferenceIDs: &gojmap.ResultReference{ResultOf: g, Name: "Email/get", Path: "/list/*/threadId"}})
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Responses) != 4 {
		t.Fatalf("%d responses", len(resp.Responses))
	}
	want := f.expected(t, f.inAccount(t, f.acme, alice, alice)["INBOX"], nil, byNewest)[:5]
	var got []string
	for _, inv := range resp.Responses {
		switch r := inv.Args.(type) {
		case *mailbox.GetResponse:
			i := slices.IndexFunc(r.List, func(m *mailbox.Mailbox) bool { return string(m.ID) == inbox })
			if i < 0 || r.List[i].Role != mailbox.RoleInbox || r.List[i].TotalEmails != uint64(info.Messages) || r.List[i].Rights == nil || !r.List[i].Rights.MayReadItems {
				t.Errorf("Mailbox/get: %+v", r.List)
			}
		case *email.QueryResponse:
			if r.Total != uint64(info.Messages) || len(r.IDs) != 5 {
				t.Errorf("Email/query: %+v", r)
			}
			for _, id := range r.IDs {
				got = append(got, string(id))
			}
		case *email.GetResponse:
			if len(r.List) != 5 {
				t.Fatalf("Email/get: %+v", r)
			}
			for i, e := range r.List {
				if string(e.ID) != want[i] || e.Subject == "" || len(e.From) != 1 || e.ReceivedAt == nil || len(e.TextBody) == 0 ||
					e.BodyValues[e.TextBody[0].PartID] == nil || e.Keywords["$seen"] != true {
					t.Errorf("email %d: %+v", i, e)
				}
			}
		case *thread.GetResponse:
			if len(r.List) == 0 || len(r.List[0].EmailIDs) == 0 {
				t.Errorf("Thread/get: %+v", r)
			}
		default:
			t.Errorf("unexpected %s %#v", inv.Name, inv.Args)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("query ids %v, want %v", got, want)
	}

	// Method errors decode as go-jmap's MethodError.
	req = &gojmap.Request{}
	req.Invoke(&email.Get{Account: "A999999", IDs: []gojmap.ID{"M1"}})
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if me, ok := resp.Responses[0].Args.(*gojmap.MethodError); !ok || me.Type != "accountNotFound" {
		t.Errorf("error response: %#v", resp.Responses[0].Args)
	}

	rc, err := client.Download(acct, gojmap.ID(blobID(f.hand["alternative"].mid)))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if !bytes.Equal(b, f.hand["alternative"].raw) || !strings.HasPrefix(string(b), "Return-Path:") {
		t.Errorf("download: %d bytes", len(b))
	}
}
