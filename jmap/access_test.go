package jmap

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mailvault/mailvault/backend"
)

// TestAPITokens checks tokens: created and revoked with the password,
// used as Bearer, worthless once revoked or when the user is disabled.
func TestAPITokens(t *testing.T) {
	f := newFixture(t, 5)
	c := f.client(t, alice)
	r, b := c.do("POST", tokensPath, []byte(`{"label":"backup script"}`))
	var created tokenView
	if err := json.Unmarshal(b, &created); err != nil || r.StatusCode != http.StatusCreated || created.Token == "" || created.Label != "backup script" {
		t.Fatalf("create: %d %s", r.StatusCode, b)
	}
	tc := &client{t: t, f: f, token: created.Token}
	if r, b := tc.do("GET", sessionPath, nil); r.StatusCode != http.StatusOK || !strings.Contains(string(b), `"username":"alice@acme.example"`) {
		t.Fatalf("session by token: %d %s", r.StatusCode, b)
	}
	acct := f.account(t, f.acme, alice)
	if got := tc.api(call{"Mailbox/get", map[string]any{"accountId": acct}, "m"})["m"].ok(t); len(list(t, got)) == 0 {
		t.Error("no mailboxes by token")
	}
	// A token cannot manage tokens; the list shows no secret.
	if r, _ := tc.do("POST", tokensPath, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("token creating a token: %d", r.StatusCode)
	}
	r, b = c.do("GET", tokensPath, nil)
	var listed []tokenView
	if json.Unmarshal(b, &listed); r.StatusCode != http.StatusOK || len(listed) != 1 || listed[0].ID != created.ID || listed[0].Token != "" {
		t.Errorf("list: %d %s", r.StatusCode, b)
	}
	for _, bad := range []string{created.Token + "x", strings.Replace(created.Token, "acme", "globex", 1), "mvt.acme", "unused"} {
		if r, _ := (&client{t: t, f: f, token: bad}).do("GET", sessionPath, nil); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: %d", bad, r.StatusCode)
		}
	}
	// bob cannot revoke alice's token.
	if r, _ := f.client(t, bob).do("DELETE", tokensPath+"/"+created.ID, nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("bob revoking: %d", r.StatusCode)
	}
	if r, _ := c.do("DELETE", tokensPath+"/"+created.ID, nil); r.StatusCode != http.StatusNoContent {
		t.Errorf("revoke: %d", r.StatusCode)
	}
	if r, _ := tc.do("GET", sessionPath, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", r.StatusCode)
	}

	// Disabling a user stops their token and their cached password at once.
	bc := f.client(t, bob)
	_, b = bc.do("POST", tokensPath, nil)
	json.Unmarshal(b, &created)
	if r, _ := bc.do("GET", sessionPath, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("bob: %d", r.StatusCode)
	}
	if err := f.acme.UpdateUser(context.Background(), bob, func(u *backend.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if r, _ := bc.do("GET", sessionPath, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("disabled user by password: %d", r.StatusCode)
	}
	if r, _ := (&client{t: t, f: f, token: created.Token}).do("GET", sessionPath, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("disabled user by token: %d", r.StatusCode)
	}

	// Password guessing is slowed down per login.
	wrong := &client{t: t, f: f, login: carol, pass: "guess"}
	var last int
	for range 3 { // typos allowed per account and address
		r, _ := wrong.do("GET", sessionPath, nil)
		last = r.StatusCode
	}
	if r, _ := f.client(t, carol).do("GET", sessionPath, nil); last != http.StatusUnauthorized || r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Errorf("throttling: last wrong %d, then right %d", last, r.StatusCode)
	}
}

// TestIsolation checks that nothing of another tenant or of a mailbox not
// granted can be reached, that grants take effect at once, and that
// compliance reads are audited.
func TestIsolation(t *testing.T) {
	f := newFixture(t, 30)
	ctx := context.Background()
	aliceAcct := f.account(t, f.acme, alice)
	salesAcct := f.account(t, f.acme, "sales@acme.example")
	journalAcct := f.account(t, f.acme, "journal@acme.example")
	eveAcct := f.account(t, f.globe, eve)
	fwd := f.hand["forward"].mid

	probe := func(c *client, acct string, mid uint64) map[string]string {
		t.Helper()
		r := c.api(
			call{"Mailbox/get", map[string]any{"accountId": acct}, "mailbox"},
			call{"Email/query", map[string]any{"accountId": acct}, "query"},
			call{"Email/get", map[string]any{"accountId": acct, "ids": ids([]uint64{mid})}, "get"},
			call{"Email/changes", map[string]any{"accountId": acct, "sinceState": "e0-0-0"}, "changes"},
			call{"Thread/get", map[string]any{"accountId": acct, "ids": []string{threadID(mid)}}, "thread"},
			call{"SearchSnippet/get", map[string]any{"accountId": acct, "emailIds": ids([]uint64{mid})}, "snippet"},
			call{"Email/set", map[string]any{"accountId": acct, "update": map[string]any{emailID(mid): map[string]any{"keywords/$seen": nil}}}, "set"},
		)
		out := map[string]string{}
		for k, v := range r {
			out[k] = v.errType()
		}
		return out
	}
	denied := func(who, acct string, mid uint64) {
		t.Helper()
		for k, v := range probe(f.client(t, who), acct, mid) {
			if v != "accountNotFound" {
				t.Errorf("%s on %s %s: %q", who, acct, k, v)
			}
		}
		r, _ := f.client(t, who).do("GET", downloadPrefix+acct+"/"+blobID(mid)+"/x?type=text/plain", nil)
		if r.StatusCode != http.StatusNotFound {
			t.Errorf("%s downloads from %s: %d", who, acct, r.StatusCode)
		}
	}
	denied(alice, salesAcct, fwd)
	denied(bob, aliceAcct, f.hand["alternative"].mid)
	denied(bob, journalAcct, 1)

	// eve of globex: acme's account ids either do not exist for her or
	// name her own mailbox (ids are per tenant); she never sees acme mail.
	acmeSubjects := map[string]bool{}
	for _, m := range f.gen {
		acmeSubjects[m.Subject] = true
	}
	ec := f.client(t, eve)
	for _, acct := range []string{aliceAcct, salesAcct, journalAcct, f.account(t, f.acme, bob)} {
		if acct == eveAcct {
			r := ec.api(call{"Email/query", map[string]any{"accountId": acct, "limit": 100}, "q"},
				call{"Email/get", map[string]any{"accountId": acct, "#ids": map[string]any{"resultOf": "q", "name": "Email/query", "path": "/ids"},
					"properties": []string{"subject"}}, "g"})
			for _, e := range list(t, r["g"].ok(t)) {
				if acmeSubjects[e["subject"].(string)] {
					t.Errorf("eve sees acme mail %v", e)
				}
			}
			continue
		}
		denied(eve, acct, fwd)
	}

	// A grant opens the account at once; a revoke closes it again.
	if err := f.acme.Grant(ctx, "sales@acme.example", alice); err != nil {
		t.Fatal(err)
	}
	for k, v := range probe(f.client(t, alice), salesAcct, fwd) {
		if v != "" {
			t.Errorf("granted %s: %s", k, v)
		}
	}
	if err := f.acme.Revoke(ctx, "sales@acme.example", alice); err != nil {
		t.Fatal(err)
	}
	denied(alice, salesAcct, fwd)

	// Compliance reads are audited; others' are not.
	cc := f.client(t, carol)
	before, _ := f.acme.AuditLog(0, 0)
	r := cc.api(call{"Email/query", map[string]any{"accountId": journalAcct, "limit": 2}, "q"},
		call{"Email/get", map[string]any{"accountId": journalAcct, "#ids": map[string]any{"resultOf": "q", "name": "Email/query", "path": "/ids"}}, "g"})
	read := strs(t, r["q"].ok(t)["ids"])
	if len(read) == 0 || len(list(t, r["g"].ok(t))) != len(read) {
		t.Fatalf("carol reads the journal: %v", r)
	}
	f.client(t, alice).api(call{"Email/get", map[string]any{"accountId": aliceAcct, "ids": ids([]uint64{f.hand["alternative"].mid})}, "g"})
	after, _ := f.acme.AuditLog(0, 0)
	var actions []string
	for _, e := range after[len(before):] {
		if e.Actor == alice {
			t.Errorf("alice audited: %+v", e)
		}
		if e.Actor == carol {
			actions = append(actions, e.Action)
			if e.Action == "jmap-email-get" && !strings.Contains(e.Detail, read[0]) {
				t.Errorf("audit detail %q", e.Detail)
			}
		}
	}
	if !slices.Contains(actions, "jmap-email-query") || !slices.Contains(actions, "jmap-email-get") {
		t.Errorf("carol's audit entries: %v", actions)
	}
}
