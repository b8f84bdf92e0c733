package jmap

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/mailgen"
)

// fixture is a real archive with two tenants served over loopback HTTP:
//
//	acme: alice (own mailbox), bob (own mailbox, reads sales@), carol
//	(compliance, own mailbox, reads the journal); mailgen traffic among six
//	acme people plus handcrafted MIME messages for alice.
//	globex: eve with mailgen traffic of her own.
type fixture struct {
	p     *backend.Provider
	h     *Handler
	srv   *httptest.Server
	acme  *backend.Tenant
	globe *backend.Tenant
	gen   []mailgen.Message // generated acme messages, in ingest order
	genID []uint64          // their MIDs
	hand  map[string]handMsg
}

type handMsg struct {
	raw []byte
	mid uint64
}

const (
	alice = "alice@acme.example"
	bob   = "bob@acme.example"
	carol = "carol@acme.example"
	eve   = "eve@globex.example"
	pw    = "correct horse battery"
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

// newFixture builds a fixture for one test.
func newFixture(t testing.TB, generated int) *fixture {
	t.Helper()
	f := buildFixture(t, t.TempDir(), generated)
	t.Cleanup(f.close)
	return f
}

// shared is the fixture of the tests that only read; TestMain closes it.
var shared struct {
	once sync.Once
	dir  string
	f    *fixture
}

func sharedFixture(t testing.TB) *fixture {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "jmap-test-")
		if err != nil {
			t.Fatal(err)
		}
		shared.dir = dir
		shared.f = buildFixture(t, dir, 60)
	})
	if shared.f == nil {
		t.Fatal("the shared fixture could not be built")
	}
	return shared.f
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.f != nil {
		shared.f.close()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	if benchData.p != nil {
		benchData.p.Close()
	}
	if benchData.dir != "" {
		os.RemoveAll(benchData.dir)
	}
	os.Exit(code)
}

func (f *fixture) close() {
	if f.h != nil {
		f.h.Close()
	}
	if f.srv != nil {
		f.srv.Close()
	}
	f.p.Close()
}

func buildFixture(t testing.TB, dir string, generated int) *fixture {
	t.Helper()
	ctx := context.Background()
	p, err := backend.Open(backend.Options{DataDir: dir, Logger: testLogger(t), CommitDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{p: p, hand: map[string]handMsg{}}
	f.acme = newTenant(t, p, "acme", "acme.example", []backend.UserSpec{
		{Login: alice, Password: pw, Mailbox: true},
		{Login: bob, Password: pw, Mailbox: true},
		{Login: carol, Password: pw, Mailbox: true, Roles: []backend.Role{backend.RoleReader, backend.RoleCompliance}},
	})
	if _, err := f.acme.CreateMailbox(ctx, backend.MailboxSpec{Kind: backend.KindShared, Address: "sales@acme.example"}); err != nil {
		t.Fatal(err)
	}
	if err := f.acme.Grant(ctx, "sales@acme.example", bob); err != nil {
		t.Fatal(err)
	}
	f.globe = newTenant(t, p, "globex", "globex.example", []backend.UserSpec{{Login: eve, Password: pw, Mailbox: true}})

	g := mailgen.New(7, []string{"acme.example"}, 6)
	g.AvgSize = 6 << 10
	for range generated {
		m := g.Next()
		f.genID = append(f.genID, f.ingest(t, f.acme, m.Raw, backend.Source{Received: m.Date}))
		f.gen = append(f.gen, m)
	}
	for _, hm := range handcrafted() {
		mid := f.ingest(t, f.acme, hm.raw, backend.Source{Mailbox: hm.mailbox, Folder: hm.folder, Received: hm.received})
		f.hand[hm.name] = handMsg{raw: hm.raw, mid: mid}
	}
	ge := mailgen.New(11, []string{"globex.example"}, 5)
	ge.AvgSize = 4 << 10
	for range 20 {
		m := ge.Next()
		f.ingest(t, f.globe, m.Raw, backend.Source{Mailbox: eve, Received: m.Date})
	}
	f.waitIndexed(t)
	f.h = New(p, "", testLogger(t))
	mux := http.NewServeMux()
	mux.Handle(Prefix, f.h)
	mux.Handle(WellKnownPath, f.h)
	f.srv = httptest.NewServer(mux)
	return f
}

func newTenant(t testing.TB, p *backend.Provider, name, domain string, users []backend.UserSpec) *backend.Tenant {
	t.Helper()
	ctx := context.Background()
	if _, err := p.CreateTenant(ctx, name, []string{domain}, backend.Quotas{}); err != nil {
		t.Fatal(err)
	}
	tn, err := p.Tenant(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if _, err := tn.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	return tn
}

func (f *fixture) ingest(t testing.TB, tn *backend.Tenant, raw []byte, src backend.Source) uint64 {
	t.Helper()
	res, err := tn.Ingest(context.Background(), raw, src)
	if err != nil {
		t.Fatal(err)
	}
	return res.MID
}

func (f *fixture) waitIndexed(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tn := range []*backend.Tenant{f.acme, f.globe} {
		if err := tn.WaitIndexed(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// account returns the JMAP account id of an archive mailbox address.
func (f *fixture) account(t testing.TB, tn *backend.Tenant, address string) string {
	t.Helper()
	for _, mb := range tn.Mailboxes() {
		if mb.Address == address {
			return accountID(mb.ID)
		}
	}
	t.Fatalf("no archive mailbox %s", address)
	return ""
}

// folder returns the folder id (as a JMAP Mailbox id) of a mailbox folder.
func (f *fixture) folder(t testing.TB, tn *backend.Tenant, login, address, name string) (string, backend.FolderInfo) {
	t.Helper()
	for _, mb := range tn.Readable(login) {
		if mb.Address != address {
			continue
		}
		fi, err := tn.FolderByName(login, mb.ID, name)
		if err != nil {
			t.Fatalf("folder %s of %s: %v", name, address, err)
		}
		return mailboxID(fi.ID), fi
	}
	t.Fatalf("%s cannot read %s", login, address)
	return "", backend.FolderInfo{}
}

// client speaks raw HTTP/JSON to the server as one user.
type client struct {
	t     testing.TB
	f     *fixture
	login string
	pass  string
	token string
}

func (f *fixture) client(t testing.TB, login string) *client {
	return &client{t: t, f: f, login: login, pass: pw}
}

func (c *client) do(method, path string, body []byte, header ...string) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.f.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.login != "":
		req.SetBasicAuth(c.login, c.pass)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.f.srv.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, b
}

// call is one method call of a test request.
type call struct {
	name string
	args map[string]any
	id   string
}

// api posts a request with the core and mail capabilities and returns the
// method responses by call id (the last of a call id wins), failing on
// anything but HTTP 200.
func (c *client) api(calls ...call) map[string]resp {
	c.t.Helper()
	out, _ := c.apiRaw(calls...)
	return out
}

// resp is one method response.
type resp struct {
	name string
	args map[string]any
	raw  json.RawMessage
}

func (c *client) apiRaw(calls ...call) (map[string]resp, []byte) {
	c.t.Helper()
	mc := make([]any, len(calls))
	for i, cl := range calls {
		mc[i] = []any{cl.name, cl.args, cl.id}
	}
	body, _ := json.Marshal(map[string]any{"using": []string{capCore, capMail}, "methodCalls": mc})
	r, b := c.do("POST", apiPath, body, "Content-Type", "application/json")
	if r.StatusCode != http.StatusOK {
		c.t.Fatalf("API status %d: %s", r.StatusCode, b)
	}
	var res struct {
		MethodResponses []json.RawMessage `json:"methodResponses"`
		SessionState    *string           `json:"sessionState"`
	}
	if err := json.Unmarshal(b, &res); err != nil || res.SessionState == nil {
		c.t.Fatalf("bad response %s: %v", b, err)
	}
	out := map[string]resp{}
	for _, raw := range res.MethodResponses {
		var parts []json.RawMessage
		if err := json.Unmarshal(raw, &parts); err != nil || len(parts) != 3 {
			c.t.Fatalf("bad invocation %s", raw)
		}
		var r resp
		var id string
		json.Unmarshal(parts[0], &r.name)
		json.Unmarshal(parts[2], &id)
		r.raw = parts[1]
		if err := json.Unmarshal(parts[1], &r.args); err != nil {
			c.t.Fatalf("bad arguments %s", parts[1])
		}
		out[id] = r
	}
	return out, b
}

// ok returns a response's arguments, failing if it is an error.
func (r resp) ok(t testing.TB) map[string]any {
	t.Helper()
	if r.name == "error" || r.name == "" {
		t.Fatalf("method failed: %s %s", r.name, r.raw)
	}
	return r.args
}

// errType returns the error type of an error response, "" otherwise.
func (r resp) errType() string {
	if r.name != "error" {
		return ""
	}
	s, _ := r.args["type"].(string)
	return s
}

// strs converts a JSON array of strings.
func strs(t testing.TB, v any) []string {
	t.Helper()
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("not an array: %#v", v)
	}
	out := make([]string, len(l))
	for i, x := range l {
		out[i], ok = x.(string)
		if !ok {
			t.Fatalf("not a string: %#v", x)
		}
	}
	return out
}

func list(t testing.TB, args map[string]any) []map[string]any {
	t.Helper()
	l, ok := args["list"].([]any)
	if !ok {
		t.Fatalf("no list in %v", args)
	}
	out := make([]map[string]any, len(l))
	for i, x := range l {
		out[i] = x.(map[string]any)
	}
	return out
}

// jsonEq compares two values as JSON.
func jsonEq(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// inAccount lists the MIDs of an archive mailbox the login reads, per
// folder name, straight from the backend.
func (f *fixture) inAccount(t testing.TB, tn *backend.Tenant, login, address string) map[string][]uint64 {
	t.Helper()
	out := map[string][]uint64{}
	for _, mb := range tn.Readable(login) {
		if mb.Address != address {
			continue
		}
		folders, err := tn.Folders(login, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, fi := range folders {
			snap, err := tn.Snapshot(login, fi.ID)
			if err != nil {
				t.Fatal(err)
			}
			out[fi.Name] = append([]uint64(nil), snap.MIDs...)
		}
	}
	return out
}

func ids(mids []uint64) []string {
	out := make([]string, len(mids))
	for i, m := range mids {
		out[i] = emailID(m)
	}
	return out
}

func hasAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
