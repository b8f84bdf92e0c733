package jmap

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
)

// TestRetentionGet asks the vendor method for a message's effective
// retention: policy and dates per placement in the account, legal holds,
// and nothing for a message outside the account.
func TestRetentionGet(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	raw := []byte("From: x@outside.example\r\nTo: alice@acme.example\r\nSubject: kept\r\nDate: Tue, 7 May 2019 10:00:00 +0000\r\n\r\nbody\r\n")
	mid := f.ingest(t, f.acme, raw, backend.Source{Received: time.Date(2019, 5, 7, 10, 0, 0, 0, time.UTC)})
	other := f.ingest(t, f.acme, []byte("From: x@outside.example\r\nTo: bob@acme.example\r\nSubject: bob's\r\n\r\nbody\r\n"), backend.Source{})
	f.waitIndexed(t)
	if _, err := f.acme.PlaceHold(ctx, carol, backend.Hold{Case: "C-1", Reason: "litigation", Mailboxes: []string{alice}}); err != nil {
		t.Fatal(err)
	}
	acct := f.account(t, f.acme, alice)
	body, _ := json.Marshal(map[string]any{
		"using":       []string{capCore, capMail, capRetention},
		"methodCalls": []any{[]any{"Retention/get", map[string]any{"accountId": acct, "ids": []string{emailID(mid), emailID(other)}}, "r"}},
	})
	resp, b := f.client(t, alice).do("POST", apiPath, body, "Content-Type", "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", resp.Status, b)
	}
	var out struct {
		MethodResponses [][3]json.RawMessage `json:"methodResponses"`
	}
	if err := json.Unmarshal(b, &out); err != nil || len(out.MethodResponses) != 1 {
		t.Fatalf("%s %v", b, err)
	}
	var name string
	json.Unmarshal(out.MethodResponses[0][0], &name)
	var got struct {
		List []struct {
			ID         string    `json:"id"`
			Policy     string    `json:"policy"`
			MinUntil   time.Time `json:"minUntil"`
			Holds      []string  `json:"holds"`
			Placements []struct {
				MailboxID string    `json:"mailboxId"`
				MinUntil  time.Time `json:"minUntil"`
				Deletable bool      `json:"deletable"`
			} `json:"placements"`
		} `json:"list"`
		NotFound []string `json:"notFound"`
	}
	json.Unmarshal(out.MethodResponses[0][1], &got)
	want := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if name != "Retention/get" || len(got.List) != 1 || got.List[0].ID != emailID(mid) || got.List[0].Policy != "default" ||
		!got.List[0].MinUntil.Equal(want) || len(got.List[0].Holds) != 1 || len(got.List[0].Placements) != 1 ||
		got.List[0].Placements[0].Deletable || len(got.NotFound) != 1 || got.NotFound[0] != emailID(other) {
		t.Fatalf("Retention/get: %s", out.MethodResponses[0][1])
	}
	// Without the capability in "using" the method is unknown.
	if r := f.client(t, alice).api(call{"Retention/get", map[string]any{"accountId": acct, "ids": []string{emailID(mid)}}, "r"}); r["r"].errType() != "unknownMethod" {
		t.Fatalf("without the capability: %+v", r["r"])
	}
}

// TestDeletionChangesState deletes a message by retention and expects the
// account's Email state to change, changes from the old state to be
// refused (the client reloads), and the message to be gone from
// Email/get and Email/query.
func TestDeletionChangesState(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	old := time.Date(2012, 5, 7, 10, 0, 0, 0, time.UTC)
	gone := f.ingest(t, f.acme, []byte("From: x@outside.example\r\nTo: alice@acme.example\r\nSubject: to go\r\n\r\nbody\r\n"), backend.Source{Received: old})
	kept := f.ingest(t, f.acme, []byte("From: x@outside.example\r\nTo: alice@acme.example\r\nSubject: to keep\r\n\r\nbody\r\n"), backend.Source{})
	f.waitIndexed(t)
	acct := f.account(t, f.acme, alice)
	c := f.client(t, alice)
	get := func() map[string]any {
		return c.api(call{"Email/get", map[string]any{"accountId": acct, "ids": []string{emailID(gone), emailID(kept)}, "properties": []string{"id"}}, "g"})["g"].ok(t)
	}
	before := get()
	if len(list(t, before)) != 2 {
		t.Fatalf("before: %v", before)
	}
	if _, err := f.acme.SetRetentionPolicies(ctx, carol, []backend.Policy{{Name: "short", Min: backend.Period{Days: 1}}}); err != nil {
		t.Fatal(err)
	}
	req := backend.DeleteRequest{MIDs: []uint64{gone}}
	plan, err := f.acme.DryRun(ctx, req)
	if err != nil || plan.Messages != 1 {
		t.Fatalf("dry run %+v %v", plan, err)
	}
	if _, err := f.acme.Delete(ctx, carol, req, plan.Token); err != nil {
		t.Fatal(err)
	}
	f.waitIndexed(t)
	after := get()
	if after["state"] == before["state"] || len(list(t, after)) != 1 || len(strs(t, after["notFound"])) != 1 {
		t.Fatalf("after the deletion: %v (state before %v)", after, before["state"])
	}
	r := c.api(call{"Email/changes", map[string]any{"accountId": acct, "sinceState": before["state"]}, "c"})
	if r["c"].errType() != "cannotCalculateChanges" {
		t.Fatalf("changes across a deletion: %+v", r["c"])
	}
	r = c.api(call{"Email/changes", map[string]any{"accountId": acct, "sinceState": after["state"]}, "c"})
	if r["c"].errType() != "" {
		t.Fatalf("changes from the new state: %+v", r["c"])
	}
	q := c.api(call{"Email/query", map[string]any{"accountId": acct}, "q"})["q"].ok(t)
	ids := strs(t, q["ids"])
	if slices.Contains(ids, emailID(gone)) || !slices.Contains(ids, emailID(kept)) {
		t.Fatalf("query after the deletion: %v", ids)
	}
}
