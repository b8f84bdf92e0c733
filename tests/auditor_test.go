package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// jmapCall posts one JMAP method call with curl as user and returns the
// first method response's arguments.
func (in *instance) jmapCall(user, password, method string, args map[string]any) (string, map[string]any) {
	in.t.Helper()
	body, _ := json.Marshal(map[string]any{"using": []string{"urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"},
		"methodCalls": []any{[]any{method, args, "c"}}})
	out, err := exec.Command("curl", "-s", "-u", user+":"+password, "-H", "Content-Type: application/json", "-d", string(body), "http://"+in.HTTP+"/jmap/api").Output()
	if err != nil {
		in.t.Fatalf("curl JMAP %s: %v", method, err)
	}
	var resp struct {
		MethodResponses [][]json.RawMessage `json:"methodResponses"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || len(resp.MethodResponses) == 0 {
		in.t.Fatalf("JMAP %s answer %s: %v", method, out, err)
	}
	var name string
	var res map[string]any
	json.Unmarshal(resp.MethodResponses[0][0], &name)
	json.Unmarshal(resp.MethodResponses[0][1], &res)
	return name, res
}

// jmapAccount finds the JMAP account id of an archive mailbox in user's
// session; "" if the session does not list it.
func (in *instance) jmapAccount(user, password, address string) (string, int) {
	in.t.Helper()
	out, _ := exec.Command("curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-u", user+":"+password, "http://"+in.HTTP+"/jmap/session").Output()
	body, code, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if i := strings.LastIndexByte(string(out), '\n'); i >= 0 {
		body, code = string(out[:i]), string(out[i+1:])
	}
	var status int
	fmt.Sscan(code, &status)
	var s struct {
		Accounts map[string]struct {
			Name string `json:"name"`
		} `json:"accounts"`
	}
	json.Unmarshal([]byte(body), &s)
	for id, a := range s.Accounts {
		if a.Name == address {
			return id, status
		}
	}
	return "", status
}

// TestAuditorScope: a compliance user opens an auditor account for one
// mailbox and one year. Over IMAP (imaplib), JMAP (curl) and the API the
// account sees and fetches exactly the messages of that mailbox received
// in that year, nothing of other mailboxes, nothing after its expiry, and
// every access is in the audit log under its name.
func TestAuditorScope(t *testing.T) {
	needTools(t, "curl", "python3")
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	in.mustCLI("user", "add", "-tenant", "acme", "bob@acme.example", "-password", "bob-secret-1")
	in.mustCLI("user", "add", "-tenant", "acme", "carol@acme.example", "-password", "carol-secret", "-role", "compliance", "-no-mailbox")
	in.mustCLI("user", "add", "-tenant", "acme", "dave@acme.example", "-password", "dave-secret", "-no-mailbox")
	msg := func(to, subject string) []byte {
		return fmt.Appendf(nil, "From: x@partner.example\r\nTo: %s\r\nSubject: %s\r\n\r\nbody of %s\r\n", to, subject, subject)
	}
	type m struct {
		mailbox, folder, subject string
		at                       time.Time
		in                       bool
	}
	msgs := []m{
		{"alice@acme.example", "INBOX", "before the period", time.Date(2022, 12, 31, 12, 0, 0, 0, time.UTC), false},
		{"alice@acme.example", "INBOX", "march invoice", time.Date(2023, 3, 1, 12, 0, 0, 0, time.UTC), true},
		{"alice@acme.example", "INBOX", "september invoice", time.Date(2023, 9, 1, 12, 0, 0, 0, time.UTC), true},
		{"alice@acme.example", "INBOX", "after the period invoice", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"alice@acme.example", "Sent", "may offer", time.Date(2023, 5, 1, 12, 0, 0, 0, time.UTC), true},
		{"bob@acme.example", "INBOX", "bob invoice", time.Date(2023, 4, 1, 12, 0, 0, 0, time.UTC), false},
	}
	for _, x := range msgs {
		in.postMessageAt("acme", x.mailbox, x.folder, x.at, msg(x.mailbox, x.subject))
	}

	// Created by a compliance user over the API; a reader may not.
	create := func(user, login, expires string) string {
		body := fmt.Sprintf(`{"login":%q,"password":"auditor-secret","mailboxes":["alice@acme.example"],"since":"2023-01-01","until":"2024-01-01","expires":%q}`, login, expires)
		out, _ := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", user, "-H", "Content-Type: application/json", "-d", body,
			"http://"+in.HTTP+"/api/v1/tenants/acme/auditors").Output()
		return string(out)
	}
	if code := create("dave@acme.example:dave-secret", "x@acme.example", time.Now().Add(time.Hour).Format(time.RFC3339)); code != "403" {
		t.Errorf("a reader creating an auditor account: %s, want 403", code)
	}
	if code := create("carol@acme.example:carol-secret", "pruefer@acme.example", time.Now().Add(time.Hour).Format(time.RFC3339)); code != "201" {
		t.Fatalf("compliance user creating an auditor account: %s", code)
	}
	expiry := time.Now().Add(4 * time.Second)
	out := in.mustCLI("auditor", "add", "-tenant", "acme", "kurz@acme.example", "-password", "auditor-secret", "-mailbox", "alice@acme.example",
		"-since", "2023-01-01", "-until", "2024-01-01", "-expires", expiry.Format(time.RFC3339))
	if !strings.Contains(out, "every access is audited") {
		t.Errorf("auditor add: %s", out)
	}

	aliceAcct, _ := in.jmapAccount("alice@acme.example", "alice-secret", "alice@acme.example")
	var allIDs []any
	for deadline := time.Now().Add(30 * time.Second); ; { // the index catches up
		_, all := in.jmapCall("alice@acme.example", "alice-secret", "Email/query", map[string]any{"accountId": aliceAcct})
		if allIDs, _ = all["ids"].([]any); len(allIDs) == 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(allIDs) != 5 {
		t.Fatalf("alice's own Email/query: %v", allIDs)
	}

	// IMAP: only alice's folders, only the period's messages.
	var imap struct {
		List    []string   `json:"list"`
		Inbox   []string   `json:"inbox"`
		Search  []string   `json:"search"`
		Text    []string   `json:"text"`
		Fetch   []string   `json:"fetch"`
		Outside []string   `json:"outside"`
		Bob     []string   `json:"bob"`
		Sent    [][]string `json:"sent"`
	}
	in.imaplib("pruefer@acme.example", "auditor-secret", `
out = {}
out['list'] = text(M.list()[1])
out['inbox'] = attempt(M.select, '"Archive/alice@acme.example/INBOX"', True)
out['search'] = attempt(M.uid, 'SEARCH', 'ALL')
out['text'] = attempt(M.uid, 'SEARCH', 'TEXT', 'invoice')
out['fetch'] = attempt(M.uid, 'FETCH', '1:*', '(BODY.PEEK[])')
out['outside'] = attempt(M.uid, 'FETCH', '1', '(BODY.PEEK[])')
out['bob'] = attempt(M.select, '"Archive/bob@acme.example/INBOX"', True)
out['sent'] = [attempt(M.select, '"Archive/alice@acme.example/Sent"', True), attempt(M.uid, 'FETCH', '1:*', '(BODY.PEEK[])')]
print(json.dumps(out))
`, &imap)
	list := strings.Join(imap.List, "\n")
	if strings.Contains(list, "bob@") || !strings.Contains(list, "Archive/alice@acme.example/INBOX") {
		t.Errorf("LIST shows more or less than alice's mailbox:\n%s", list)
	}
	if len(imap.Inbox) < 2 || imap.Inbox[0] != "OK" || imap.Inbox[1] != "2" {
		t.Errorf("SELECT alice's INBOX: %v, want 2 messages", imap.Inbox)
	}
	if fmt.Sprint(imap.Search) != "[OK 2 3]" {
		t.Errorf("UID SEARCH ALL: %v, want the UIDs of the period (2 3)", imap.Search)
	}
	if fmt.Sprint(imap.Text) != "[OK 2 3]" {
		t.Errorf("UID SEARCH TEXT invoice: %v, want the invoices of the period (2 3), not the one after it", imap.Text)
	}
	fetched := strings.Join(imap.Fetch, "\n")
	if !strings.Contains(fetched, "march invoice") || !strings.Contains(fetched, "september invoice") || strings.Contains(fetched, "the period") {
		t.Errorf("UID FETCH 1:* shows messages outside the period:\n%s", fetched)
	}
	if strings.Contains(strings.Join(imap.Outside, "\n"), "before the period") {
		t.Errorf("UID FETCH 1 fetched the message before the period: %v", imap.Outside)
	}
	if len(imap.Bob) == 0 || imap.Bob[0] != "NO" {
		t.Errorf("SELECT of bob's INBOX: %v, want NO", imap.Bob)
	}
	if s := fmt.Sprint(imap.Sent); !strings.Contains(s, "may offer") {
		t.Errorf("alice's Sent: %v", imap.Sent)
	}

	// JMAP: the session lists alice's mailbox only; queries and gets stay
	// inside the period.
	acct, code := in.jmapAccount("pruefer@acme.example", "auditor-secret", "alice@acme.example")
	if acct == "" || code != 200 {
		t.Fatalf("JMAP session of the auditor: account %q, status %d", acct, code)
	}
	if id, _ := in.jmapAccount("pruefer@acme.example", "auditor-secret", "bob@acme.example"); id != "" {
		t.Error("the auditor's JMAP session lists bob's mailbox")
	}
	_, q := in.jmapCall("pruefer@acme.example", "auditor-secret", "Email/query", map[string]any{"accountId": acct})
	if ids, _ := q["ids"].([]any); len(ids) != 3 || q["total"] != nil && q["total"].(float64) != 3 {
		t.Errorf("Email/query as the auditor: %v, want the 3 messages of the period", q)
	}
	_, got := in.jmapCall("pruefer@acme.example", "auditor-secret", "Email/get", map[string]any{"accountId": acct, "ids": allIDs, "properties": []string{"subject"}})
	var subjects []string
	for _, e := range got["list"].([]any) {
		subjects = append(subjects, e.(map[string]any)["subject"].(string))
	}
	if nf, _ := got["notFound"].([]any); len(subjects) != 3 || len(nf) != 2 || strings.Contains(strings.Join(subjects, ","), "period") {
		t.Errorf("Email/get of all of alice's ids as the auditor: %v notFound %v", subjects, got["notFound"])
	}

	// The management API: no export for an auditor account.
	if out, _ := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "pruefer@acme.example:auditor-secret",
		"http://"+in.HTTP+"/api/v1/tenants/acme/export?mailbox=alice@acme.example").Output(); string(out) != "403" {
		t.Errorf("export as the auditor: %s, want 403", out)
	}

	// Every access is audited under the auditor's login.
	audit := in.mustCLI("audit", "-tenant", "acme")
	for _, action := range []string{"auditor-create", "imap-login", "imap-open", "imap-search", "imap-fetch", "jmap-email-query", "jmap-email-get"} {
		found := false
		for _, line := range strings.Split(audit, "\n") {
			if strings.Contains(line, action) && (strings.Contains(line, "pruefer@acme.example") || action == "auditor-create") {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s entry for the auditor in the audit log:\n%s", action, audit)
		}
	}

	// A Z3 package of the auditor's scope holds exactly its messages.
	dir := t.TempDir()
	in.mustCLI("export", "-tenant", "acme", "-format", "z3", "-auditor", "pruefer@acme.example", "-o", dir+"/z3.zip", "-quiet")
	if out, err := exec.Command("unzip", "-q", dir+"/z3.zip", "-d", dir+"/c").CombinedOutput(); err != nil {
		t.Fatalf("unzip: %v\n%s", err, out)
	}
	want := map[string][]byte{}
	uid := map[string]int{}
	for _, x := range msgs {
		key := x.mailbox + "/" + x.folder
		uid[key]++
		if x.in {
			want[fmt.Sprintf("messages/%s/%d.eml", key, uid[key])] = msg(x.mailbox, x.subject)
		}
	}
	for name, raw := range want {
		b, err := os.ReadFile(filepath.Join(dir, "c", name))
		if err != nil || !bytes.Equal(b, raw) {
			t.Errorf("Z3 of the auditor scope: %s: %v", name, err)
		}
	}
	emls, _ := filepath.Glob(filepath.Join(dir, "c", "messages", "*", "*", "*.eml"))
	if len(emls) != len(want) {
		t.Errorf("Z3 of the auditor scope holds %d messages, want %d: %v", len(emls), len(want), emls)
	}

	// After its expiry the short-lived account logs in nowhere.
	time.Sleep(time.Until(expiry) + 500*time.Millisecond)
	py := `
try:
    M2 = imaplib.IMAP4(host, port)
    M2.login(sys.argv[5], 'auditor-secret')
    print(json.dumps('logged in'))
except imaplib.IMAP4.error as e:
    print(json.dumps('refused'))
`
	var res string
	in.imaplib("pruefer@acme.example", "auditor-secret", py, &res, "kurz@acme.example")
	if res != "refused" {
		t.Errorf("IMAP login after expiry: %s", res)
	}
	if _, code := in.jmapAccount("kurz@acme.example", "auditor-secret", "alice@acme.example"); code != 401 {
		t.Errorf("JMAP session after expiry: status %d, want 401", code)
	}
}
