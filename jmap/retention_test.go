package jmap

import (
	"context"
	"encoding/json"
	"net/http"
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
