package jmap

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestSession checks the session resource against RFC 8620 2 and 2.2.
func TestSession(t *testing.T) {
	f := sharedFixture(t)

	anon := &client{t: t, f: f}
	noRedirect := *f.srv.Client()
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r, err := noRedirect.Get(f.srv.URL + WellKnownPath)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusTemporaryRedirect || r.Header.Get("Location") != f.srv.URL+sessionPath {
		t.Fatalf("well-known: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	// jmap-jam's first request carries "Bearer unused".
	r, body := anon.do("GET", WellKnownPath, nil, "Authorization", "Bearer unused")
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("bearer unused: %d %s", r.StatusCode, body)
	}
	wrong := &client{t: t, f: f, login: alice, pass: "wrong"}
	if r, _ := wrong.do("GET", sessionPath, nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", r.StatusCode)
	}
	if r, _ := anon.do("GET", sessionPath, nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d", r.StatusCode)
	}

	r, body = f.client(t, bob).do("GET", WellKnownPath, nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("session: %d %s", r.StatusCode, body)
	}
	var s struct {
		Capabilities map[string]map[string]any `json:"capabilities"`
		Accounts     map[string]struct {
			Name                string                    `json:"name"`
			IsPersonal          *bool                     `json:"isPersonal"`
			IsReadOnly          *bool                     `json:"isReadOnly"`
			AccountCapabilities map[string]map[string]any `json:"accountCapabilities"`
		} `json:"accounts"`
		PrimaryAccounts map[string]string `json:"primaryAccounts"`
		Username        string            `json:"username"`
		APIURL          string            `json:"apiUrl"`
		DownloadURL     string            `json:"downloadUrl"`
		UploadURL       string            `json:"uploadUrl"`
		EventSourceURL  string            `json:"eventSourceUrl"`
		State           string            `json:"state"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	coreCap := s.Capabilities[capCore]
	for _, k := range []string{"maxSizeUpload", "maxConcurrentUpload", "maxSizeRequest", "maxConcurrentRequests",
		"maxCallsInRequest", "maxObjectsInGet", "maxObjectsInSet", "collationAlgorithms"} {
		if _, ok := coreCap[k]; !ok {
			t.Errorf("core capability lacks %s: %v", k, coreCap)
		}
	}
	if _, ok := s.Capabilities[capMail]; !ok || len(s.Capabilities) != 3 || s.Capabilities[capRetention] == nil {
		t.Errorf("capabilities: %v", s.Capabilities)
	}
	own, sales := f.account(t, f.acme, bob), f.account(t, f.acme, "sales@acme.example")
	if len(s.Accounts) != 2 || s.PrimaryAccounts[capMail] != own || s.Username != bob {
		t.Fatalf("accounts %v primary %v user %q", s.Accounts, s.PrimaryAccounts, s.Username)
	}
	// The archive is read-only, the own account too.
	if a := s.Accounts[own]; a.IsPersonal == nil || !*a.IsPersonal || a.Name != bob || a.IsReadOnly == nil || !*a.IsReadOnly {
		t.Errorf("own account %+v", a)
	}
	if a := s.Accounts[sales]; a.IsPersonal == nil || *a.IsPersonal || a.Name != "sales@acme.example" || a.IsReadOnly == nil || !*a.IsReadOnly {
		t.Errorf("shared account %+v", a)
	}
	mailCap := s.Accounts[own].AccountCapabilities[capMail]
	if v, ok := mailCap["maxMailboxesPerEmail"]; !ok || v != nil {
		t.Errorf("maxMailboxesPerEmail must be null: %v", mailCap)
	}
	if !jsonEq(mailCap["emailQuerySortOptions"], sortOptions) {
		t.Errorf("sort options %v", mailCap["emailQuerySortOptions"])
	}
	if s.APIURL != f.srv.URL+apiPath || !hasAll(s.DownloadURL, f.srv.URL, "{accountId}", "{blobId}", "{name}", "{type}") ||
		!hasAll(s.UploadURL, f.srv.URL, "{accountId}") || !hasAll(s.EventSourceURL, f.srv.URL, "{types}", "{closeafter}", "{ping}") || s.State == "" {
		t.Errorf("URLs: %+v", s)
	}

	// Access shapes the accounts: alice sees only her own, carol the journal too.
	var a struct {
		Accounts map[string]struct{ Name string } `json:"accounts"`
	}
	_, body = f.client(t, alice).do("GET", sessionPath, nil)
	json.Unmarshal(body, &a)
	if len(a.Accounts) != 1 {
		t.Errorf("alice accounts %v", a.Accounts)
	}
	_, body = f.client(t, carol).do("GET", sessionPath, nil)
	a.Accounts = nil
	json.Unmarshal(body, &a)
	var names []string
	for _, acc := range a.Accounts {
		names = append(names, acc.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{carol, "journal@acme.example"}) {
		t.Errorf("carol accounts %v", names)
	}
	// Uploads are refused: the archive takes mail only through ingest.
	if r, _ := f.client(t, bob).do("POST", uploadPrefix+own+"/", []byte("x")); r.StatusCode != http.StatusForbidden {
		t.Errorf("upload: %d", r.StatusCode)
	}
}

// TestRequestErrors checks the request-level problems of RFC 8620 3.6.1.
func TestRequestErrors(t *testing.T) {
	f := sharedFixture(t)
	c := f.client(t, alice)
	post := func(body []byte) (int, map[string]any) {
		r, b := c.do("POST", apiPath, body, "Content-Type", "application/json")
		var m map[string]any
		json.Unmarshal(b, &m)
		return r.StatusCode, m
	}
	for _, tc := range []struct {
		name, body, typ, limit string
	}{
		{"not json", `{"using": [`, errNotJSON, ""},
		{"not utf-8", "{\"using\":[\"\xff\"],\"methodCalls\":[]}", errNotJSON, ""},
		{"no methodCalls", `{"using":["urn:ietf:params:jmap:core"]}`, errNotRequest, ""},
		{"bad call", `{"using":[],"methodCalls":[["Core/echo",{}]]}`, errNotRequest, ""},
		{"args not object", `{"using":[],"methodCalls":[["Core/echo",[],"c"]]}`, errNotRequest, ""},
		{"unknown capability", `{"using":["urn:ietf:params:jmap:core","urn:example:nope"],"methodCalls":[]}`, errUnknownCapability, ""},
		{"too many calls", `{"using":["urn:ietf:params:jmap:core"],"methodCalls":[` +
			strings.TrimSuffix(strings.Repeat(`["Core/echo",{},"c"],`, maxCallsInRequest+1), ",") + `]}`, errLimit, "maxCallsInRequest"},
	} {
		status, m := post([]byte(tc.body))
		if status != http.StatusBadRequest || m["type"] != tc.typ || tc.limit != "" && m["limit"] != tc.limit || num(m["status"]) != status {
			t.Errorf("%s: %d %v", tc.name, status, m)
		}
	}
	big := append([]byte(`{"using":[],"methodCalls":[["Core/echo",{"x":"`), bytes.Repeat([]byte("a"), maxSizeRequest)...)
	big = append(big, `"},"c"]]}`...)
	if status, m := post(big); status != http.StatusRequestEntityTooLarge || m["type"] != errLimit || m["limit"] != "maxSizeRequest" {
		t.Errorf("too large: %d %v", status, m)
	}
	if r, _ := c.do("GET", apiPath, nil); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET api: %d", r.StatusCode)
	}
	// createdIds pass through; no calls is a valid request.
	r, b := c.do("POST", apiPath, []byte(`{"using":[],"methodCalls":[],"createdIds":{"k1":"M1"}}`))
	if r.StatusCode != http.StatusOK || !strings.Contains(string(b), `"createdIds":{"k1":"M1"}`) || !strings.Contains(string(b), `"methodResponses":[]`) {
		t.Errorf("empty request: %d %s", r.StatusCode, b)
	}
}

// TestMethodErrors checks method-level errors (RFC 8620 3.6.2), Core/echo
// and result references (3.7), including the RFC's example chain.
func TestMethodErrors(t *testing.T) {
	f := sharedFixture(t)
	c := f.client(t, alice)
	acct := f.account(t, f.acme, alice)

	// RFC 8620 4's example.
	echo := c.api(call{"Core/echo", map[string]any{"hello": true, "high": 5}, "b3ff"})["b3ff"]
	if echo.name != "Core/echo" || !jsonEq(echo.args, map[string]any{"hello": true, "high": 5}) {
		t.Errorf("echo: %s %s", echo.name, echo.raw)
	}
	res := c.api(
		call{"Foo/bar", map[string]any{}, "unknown"},
		call{"Email/get", map[string]any{"accountId": acct, "ids": []string{}, "bogus": 1}, "badArg"},
		call{"Email/get", map[string]any{"accountId": acct, "ids": []string{}, "properties": []string{"nope"}}, "badProp"},
		call{"Email/get", map[string]any{"accountId": acct, "ids": []string{}, "properties": []string{"header:Subject:asAddresses"}}, "badForm"},
		call{"Email/get", map[string]any{"accountId": "A999", "ids": []string{}}, "noAccount"},
		call{"Email/get", map[string]any{"accountId": "x", "ids": []string{}}, "badAccount"},
		call{"Email/get", map[string]any{"accountId": acct, "#ids": map[string]any{"resultOf": "none", "name": "Email/query", "path": "/ids"}}, "badRef"},
		call{"Email/get", map[string]any{"accountId": acct, "ids": make([]string, maxObjectsInGet+1)}, "tooMany"},
		call{"Email/query", map[string]any{"accountId": acct, "filter": map[string]any{"hasKeyword": "$flagged"}}, "filter"},
		call{"Email/query", map[string]any{"accountId": acct, "filter": map[string]any{"header": []string{"Received", "relay"}}}, "hdrValue"},
		call{"Email/query", map[string]any{"accountId": acct, "filter": map[string]any{"header": []string{"Received"}}}, "hdrPresent"},
		call{"Email/query", map[string]any{"accountId": acct, "sort": []any{map[string]any{"property": "to"}}}, "sort"},
		call{"Email/query", map[string]any{"accountId": acct, "anchor": "M999999"}, "anchor"},
		call{"Email/import", map[string]any{"accountId": acct, "emails": map[string]any{}}, "import"},
		call{"Email/copy", map[string]any{"accountId": acct}, "copy"},
		call{"Mailbox/set", map[string]any{"accountId": acct, "create": map[string]any{"k": map[string]any{"name": "x"}}}, "mbset"},
		call{"Mailbox/queryChanges", map[string]any{"accountId": acct, "sinceQueryState": "x"}, "mbqc"},
		call{"Email/changes", map[string]any{"accountId": acct, "sinceState": "garbage"}, "badState"},
	)
	for id, want := range map[string]string{
		"unknown": "unknownMethod", "badArg": "invalidArguments", "badProp": "invalidArguments",
		"badForm": "invalidArguments", "noAccount": "accountNotFound", "badAccount": "accountNotFound",
		"badRef": "invalidResultReference", "tooMany": "requestTooLarge", "filter": "unsupportedFilter", "hdrValue": "unsupportedFilter",
		"sort": "unsupportedSort", "anchor": "anchorNotFound", "import": "forbidden", "copy": "forbidden",
		"mbset": "forbidden", "mbqc": "cannotCalculateChanges", "badState": "cannotCalculateChanges",
		"hdrPresent": "",
	} {
		if got := res[id].errType(); got != want {
			t.Errorf("%s: want %s, got %s %s", id, want, res[id].name, res[id].raw)
		}
	}
	// A method whose capability is not in "using" is unknown.
	body, _ := json.Marshal(map[string]any{"using": []string{capCore}, "methodCalls": []any{[]any{"Mailbox/get", map[string]any{"accountId": acct}, "0"}}})
	if _, b := c.do("POST", apiPath, body); !strings.Contains(string(b), `"unknownMethod"`) {
		t.Errorf("capability not used: %s", b)
	}

	// RFC 8620 3.7: the chain from a query to the emails of its threads.
	ref := func(of, name, path string) map[string]any {
		return map[string]any{"resultOf": of, "name": name, "path": path}
	}
	subj := "Kickoff"
	res = c.api(
		call{"Email/query", map[string]any{"accountId": acct, "filter": map[string]any{"subject": subj},
			"sort": []any{map[string]any{"property": "receivedAt", "isAscending": false}}, "collapseThreads": true,
			"position": 0, "limit": 10, "calculateTotal": true}, "t0"},
		call{"Email/get", map[string]any{"accountId": acct, "#ids": ref("t0", "Email/query", "/ids"), "properties": []string{"threadId"}}, "t1"},
		call{"Thread/get", map[string]any{"accountId": acct, "#ids": ref("t1", "Email/get", "/list/*/threadId")}, "t2"},
		call{"Email/get", map[string]any{"accountId": acct, "#ids": ref("t2", "Thread/get", "/list/*/emailIds"),
			"properties": []string{"from", "receivedAt", "subject"}}, "t3"},
	)
	q := res["t0"].ok(t)
	if num(q["total"]) != 1 || len(strs(t, q["ids"])) != 1 {
		t.Errorf("collapsed query: %s", res["t0"].raw)
	}
	threads := list(t, res["t2"].ok(t))
	mails := list(t, res["t3"].ok(t))
	want := ids([]uint64{f.hand["thread1"].mid, f.hand["thread2"].mid, f.hand["thread3"].mid})
	if len(threads) != 1 || !slices.Equal(strs(t, threads[0]["emailIds"]), want) || len(mails) != 3 {
		t.Fatalf("thread chain: %s / %s", res["t2"].raw, res["t3"].raw)
	}
	for i, m := range mails {
		if m["id"] != want[i] || !strings.Contains(m["subject"].(string), subj) || len(m) != 4 {
			t.Errorf("email %d: %v", i, m)
		}
	}
}
