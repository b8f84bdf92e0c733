package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/server"
	"github.com/mailvault/mailvault/store"
)

// importDated sends msgs with their dates to the import API into mailbox
// and fails unless every one is acknowledged.
func (in *instance) importDated(tenant, mailbox string, msgs [][]byte, dates []time.Time) {
	in.t.Helper()
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriter(pw)
		for i, m := range msgs {
			if err := server.WriteBatchRecord(bw, server.BatchRecord{Raw: m, Date: dates[i]}); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(bw.Flush())
	}()
	resp, err := in.client().Raw("POST", "/api/v1/tenants/"+tenant+"/import?mailbox="+mailbox, "application/x-mailvault-batch", pr)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	n := 0
	for {
		var r server.ImportResult
		if err := dec.Decode(&r); err != nil {
			break
		}
		if r.Error != "" {
			in.t.Fatalf("import: %s", r.Error)
		}
		n++
	}
	if n != len(msgs) {
		in.t.Fatalf("import acknowledged %d of %d messages", n, len(msgs))
	}
}

func retentionMail(i int, subject, to string, d time.Time) []byte {
	return []byte(fmt.Sprintf("From: partner%d@outside.example\r\nTo: %s\r\nSubject: %s %d\r\nDate: %s\r\nMessage-ID: <ret-%s-%d@outside.example>\r\n\r\nline one of %s %d\r\nsecret words %d\r\n",
		i%7, to, subject, i, d.Format(time.RFC1123Z), strings.ReplaceAll(subject, " ", "-"), i, subject, i, i*7919))
}

// packRecord is one record of a pack file as it lies on disk.
type packRecord struct {
	file  string
	off   int64
	magic string
	key   string // blob name
	data  []byte
}

// packRecords parses every pack file of a tenant (format in store/pack.go).
func packRecords(t *testing.T, tenantDir string) []packRecord {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(tenantDir, "packs", "*.pack"))
	var out []packRecord
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+44 <= len(b); {
			magic := string(b[off : off+4])
			n := uint32(b[off+36]) | uint32(b[off+37])<<8 | uint32(b[off+38])<<16 | uint32(b[off+39])<<24
			if n == ^uint32(0) {
				off += 44
				continue
			}
			if !strings.HasPrefix(magic, "MVB") || off+44+int(n) > len(b) {
				t.Fatalf("%s: unreadable record at %d", name, off)
			}
			out = append(out, packRecord{file: filepath.Base(name), off: int64(off), magic: magic, key: fmt.Sprintf("%x", b[off+4:off+36]), data: bytes.Clone(b[off+44 : off+44+int(n)])})
			off += 44 + int(n)
		}
	}
	return out
}

// tenantSealer is what whoever holds the master key and the provider
// registry can open: the tenant's data key, unwrapped from the newest
// record of the tenant in provider.db (buntdb's append-only file).
func tenantSealer(t *testing.T, dataDir, tenant string) *store.Sealer {
	t.Helper()
	master, _, err := store.LoadOrCreateMasterKey(filepath.Join(dataDir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := os.ReadFile(filepath.Join(dataDir, "provider.db"))
	if err != nil {
		t.Fatal(err)
	}
	recs := regexp.MustCompile(`tenant:`+tenant+`\r\n\$\d+\r\n(\{[^\r]*\})`).FindAllSubmatch(reg, -1)
	if len(recs) == 0 {
		t.Fatalf("no record of tenant %s in provider.db", tenant)
	}
	var info struct {
		WrappedKey []byte `json:"wrapped_key"`
	}
	if err := json.Unmarshal(recs[len(recs)-1][1], &info); err != nil {
		t.Fatal(err)
	}
	key, err := store.UnwrapKey(master, info.WrappedKey, tenant)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openRecord tries to open a copied pack record the way mailvault's files
// allow: with the tenant's key, or with any message key in keys.dat
// (wrapped by the tenant's key, slot n-1 for message n).
func openRecord(s *store.Sealer, keys []byte, r packRecord) bool {
	if _, err := s.Open(r.data, []byte(r.key)); err == nil {
		return true
	}
	for off := 0; off+store.WrappedKeySize <= len(keys); off += store.WrappedKeySize {
		aad := []byte("message key ")
		for n, i := uint64(off/store.WrappedKeySize+1), 56; i >= 0; i -= 8 {
			aad = append(aad, byte(n>>i)) // big-endian message number
		}
		ms, err := s.UnwrapDataKey(keys[off:off+store.WrappedKeySize], aad)
		if err != nil {
			continue
		}
		if _, err := ms.Open(r.data, []byte(r.key)); err == nil {
			return true
		}
	}
	return false
}

// imapWatcher is a python3 imaplib session that keeps INBOX selected and,
// on each line it is sent, runs NOOP and reports the EXPUNGEs it saw.
type imapWatcher struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

const imapWatchScript = `
import imaplib, sys
M = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
M.login(sys.argv[3], sys.argv[4])
typ, data = M.select('INBOX')
print('EXISTS', int(data[0]), flush=True)
for line in sys.stdin:
    M.noop()
    typ, gone = M.response('EXPUNGE')
    gone = [g for g in gone if g is not None]
    typ, data = M.search(None, 'ALL')
    print('EXPUNGED', len(gone), 'NOW', len(data[0].split()), flush=True)
try:
    M.logout()
except imaplib.IMAP4.abort:
    pass  # the server was killed meanwhile
`

func startIMAPWatcher(t *testing.T, addr, login, password string) *imapWatcher {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	host, port, _ := strings.Cut(addr, ":")
	w := &imapWatcher{cmd: exec.Command(py, "-u", "-c", imapWatchScript, host, port, login, password)}
	w.in, _ = w.cmd.StdinPipe()
	stdout, _ := w.cmd.StdoutPipe()
	w.cmd.Stderr = os.Stderr
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.in.Close(); w.cmd.Wait() })
	w.out = bufio.NewScanner(stdout)
	return w
}

func (w *imapWatcher) line(t *testing.T) string {
	t.Helper()
	if !w.out.Scan() {
		t.Fatalf("imaplib session ended: %v", w.out.Err())
	}
	return w.out.Text()
}

// TestRetentionEndToEnd runs a compliance officer's path through the real
// binary: policies, a query hold, dry run and confirmed deletion (a stale
// token refused), the deletion seen by an open IMAP session, the sealed
// bytes gone from the pack files, verify clean before and after a restart,
// and a retention run killed with -9 and completed after the restart.
func TestRetentionEndToEnd(t *testing.T) {
	needTools(t, "curl", "python3")
	in := newInstance(t)
	in.env = append(in.env, "MAILVAULT_STORE_COMMIT_DELAY=1ms")
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	in.mustCLI("user", "add", "-tenant", "acme", "bob@acme.example", "-password", "bob-secret-1")
	in.mustCLI("user", "add", "-tenant", "acme", "carol@acme.example", "-password", "carol-secret", "-role", "compliance")
	tenantDir := filepath.Join(in.dataDir, "tenants", "acme")

	// alice: 30 old messages, 5 old invoices, 10 from this year.
	old := time.Date(2012, 3, 1, 9, 0, 0, 0, time.UTC)
	recent := time.Now().UTC().Add(-time.Hour)
	var msgs [][]byte
	var dates []time.Time
	for i := range 45 {
		subject, d := "old report", old.Add(time.Duration(i)*time.Hour)
		switch {
		case i >= 35:
			subject, d = "fresh note", recent
		case i >= 30:
			subject = "invoice"
		}
		msgs = append(msgs, retentionMail(i, subject, "alice@acme.example", d))
		dates = append(dates, d)
	}
	in.importDated("acme", "alice@acme.example", msgs, dates)

	// The default keeps everything 10 years from the end of the year.
	out := in.mustCLI("retention", "policies", "-tenant", "acme")
	if !strings.Contains(out, "default") || !strings.Contains(out, "10y0m0d from message (end of year)") {
		t.Fatalf("default policies:\n%s", out)
	}
	policies := filepath.Join(t.TempDir(), "policies.json")
	os.WriteFile(policies, []byte(`[{"name":"short","min":{"days":1},"max":{"years":1},"max_action":"delete"}]`), 0o644)
	// The provider token cannot change policies; a reader cannot either.
	if out, err := in.cli("retention", "set", "-tenant", "acme", policies); err == nil || !strings.Contains(out, "-user is required") {
		t.Fatalf("set without a compliance user: %v\n%s", err, out)
	}
	var ps map[string]any
	if err := in.client().Do("PUT", "/api/v1/tenants/acme/retention/policies", server.PoliciesRequest{}, &ps); err == nil || !strings.Contains(err.Error(), "compliance") {
		t.Fatalf("provider token changed policies: %v", err)
	}
	bobEnv := append(append([]string{}, in.env...), "MAILVAULT_PASSWORD=bob-secret-1")
	carolEnv := append(append([]string{}, in.env...), "MAILVAULT_PASSWORD=carol-secret")
	runAs := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(binary, args...)
		cmd.Env = env
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	if out, err := runAs(bobEnv, "retention", "set", "-tenant", "acme", "-user", "bob@acme.example", policies); err == nil {
		t.Fatalf("a reader set policies:\n%s", out)
	}
	mustAs := func(args ...string) string {
		t.Helper()
		out, err := runAs(carolEnv, args...)
		if err != nil {
			t.Fatalf("mailvault %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	out = mustAs("retention", "set", "-tenant", "acme", "-user", "carol@acme.example", policies)
	if !strings.Contains(out, "version 1") || !strings.Contains(out, "short") {
		t.Fatalf("set:\n%s", out)
	}
	out = mustAs("hold", "place", "-tenant", "acme", "-user", "carol@acme.example", "-case", "TAX-2012", "-reason", "tax audit", "-query", `{"subject":"invoice"}`)
	if !strings.Contains(out, "legal hold h0001 placed") {
		t.Fatalf("hold place:\n%s", out)
	}
	// Mail arriving after the hold is covered by it too.
	in.importDated("acme", "alice@acme.example", [][]byte{retentionMail(99, "invoice", "alice@acme.example", old)}, []time.Time{old})
	waitIndexed(t, in, "acme")

	watcher := startIMAPWatcher(t, in.IMAP, "alice@acme.example", "alice-secret")
	if l := watcher.line(t); l != "EXISTS 46" {
		t.Fatalf("imaplib: %s", l)
	}
	out = in.mustCLI("retention", "show", "-tenant", "acme", "46")
	if !strings.Contains(out, "under legal hold h0001 (case TAX-2012)") {
		t.Fatalf("retention show of the late invoice:\n%s", out)
	}

	before := packRecords(t, tenantDir)
	aliceAcct, _ := in.jmapAccount("alice@acme.example", "alice-secret", "alice@acme.example")
	reports := func() int {
		_, q := in.jmapCall("alice@acme.example", "alice-secret", "Email/query", map[string]any{"accountId": aliceAcct, "filter": map[string]any{"text": "old report"}})
		ids, _ := q["ids"].([]any)
		return len(ids)
	}
	if n := reports(); n != 30 {
		t.Fatalf("JMAP search for the old reports before the deletion: %d, want 30", n)
	}
	// The provider may dry-run; the plan lists the 30 old reports.
	var plan server.PlanAnswer
	if err := in.client().Do("POST", "/api/v1/tenants/acme/retention/dry-run", map[string]any{"all": true}, &plan); err != nil {
		t.Fatal(err)
	}
	if plan.Placements != 30 || plan.Messages != 30 || plan.Held != 6 || plan.Protected != 10 {
		t.Fatalf("dry run: %+v", plan.DeletionPlan)
	}
	stale := plan.Token
	// A hold placed after the dry run makes its token stale.
	mustAs("hold", "place", "-tenant", "acme", "-user", "carol@acme.example", "-case", "C-7", "-reason", "reports of 2 March", "-from", "2012-03-02", "-to", "2012-03-03")
	out = mustAs("hold", "list", "-tenant", "acme", "-user", "carol@acme.example")
	if !strings.Contains(out, "TAX-2012") || !strings.Contains(out, "C-7") {
		t.Fatalf("hold list:\n%s", out)
	}
	if out, err := runAs(carolEnv, "hold", "place", "-tenant", "acme", "-user", "carol@acme.example", "-case", "bad", "-reason", "x", "-from", "2012-03-02", "-to", "2012-03-01"); err == nil {
		t.Fatalf("a hold ending before it starts was placed:\n%s", out)
	}
	if out, err := runAs(carolEnv, "retention", "delete", "-tenant", "acme", "-user", "carol@acme.example", "-all", "-confirm", stale); err == nil || !strings.Contains(out, "changed since the dry run") {
		t.Fatalf("a stale token was accepted: %v\n%s", err, out)
	}
	// The reports dated 2 March (the 16th to the 30th) are held now.
	out = in.mustCLI("retention", "dry-run", "-tenant", "acme", "-all")
	m := regexp.MustCompile(`(\d+) placements would be deleted, (\d+) messages`).FindStringSubmatch(out)
	tok := regexp.MustCompile(`token: ([0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil || tok == nil || m[1] != "15" || !strings.Contains(out, "21 under legal hold") {
		t.Fatalf("dry run output:\n%s", out)
	}
	planned, _ := strconv.Atoi(m[1])
	out = mustAs("retention", "delete", "-tenant", "acme", "-user", "carol@acme.example", "-all", "-confirm", tok[1])
	if !strings.Contains(out, fmt.Sprintf("%d placements deleted, %d messages", planned, planned)) {
		t.Fatalf("delete:\n%s", out)
	}

	// The open IMAP session is told.
	fmt.Fprintln(watcher.in, "noop")
	if l, want := watcher.line(t), fmt.Sprintf("EXPUNGED %d NOW %d", planned, 46-planned); l != want {
		t.Fatalf("imaplib after the deletion: %q, want %q", l, want)
	}

	// The sealed bytes of exactly the deleted messages are gone from the
	// packs (shredded, and the packs compacted); every other record is
	// there byte for byte.
	after := packRecords(t, tenantDir)
	live := map[string]bool{}
	for _, a := range after {
		switch a.magic {
		case "MVB1":
			live[string(a.data)] = true
		case "MVB0":
			if !bytes.Equal(a.data, make([]byte, len(a.data))) {
				t.Fatalf("shredded record at %d of %s still holds data", a.off, a.file)
			}
		default:
			t.Fatalf("record at %d of %s: magic %q", a.off, a.file, a.magic)
		}
	}
	var packBytes []byte
	names, _ := filepath.Glob(filepath.Join(tenantDir, "packs", "*"))
	for _, name := range names {
		b, _ := os.ReadFile(name)
		packBytes = append(packBytes, b...)
	}
	deleted := 0
	for _, b := range before {
		if live[string(b.data)] {
			continue
		}
		deleted++
		if bytes.Contains(packBytes, b.data[:min(len(b.data), 256)]) {
			t.Fatalf("the sealed bytes of a deleted record (%d of %s) are still in a pack file", b.off, b.file)
		}
	}
	if deleted != planned || len(live) != len(before)-planned {
		t.Fatalf("%d records gone, %d live, want %d gone of %d", deleted, len(live), planned, len(before))
	}
	// Crypto-shredding: the copies of the deleted records taken before the
	// deletion open neither with the tenant's key nor with any key left in
	// keys.dat; the live ones do.
	seal := tenantSealer(t, in.dataDir, "acme")
	keys, err := os.ReadFile(filepath.Join(tenantDir, "keys.dat"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range before {
		if opened := openRecord(seal, keys, b); opened != live[string(b.data)] {
			t.Fatalf("record %d of %s (live %v): opens with the tenant's key and keys.dat: %v", b.off, b.file, live[string(b.data)], opened)
		}
	}
	// At once, though the index learns of the deletion a moment later.
	if n := reports(); n != 15 {
		t.Fatalf("JMAP search for the old reports after the deletion: %d, want the 15 held ones", n)
	}
	if !strings.Contains(in.logs(), "compacted pack") {
		t.Fatalf("the packs were not compacted after the deletion:\n%s", in.logs())
	}
	out = in.mustCLI("verify", "-tenant", "acme")
	if !strings.Contains(out, "verify: clean") || !strings.Contains(out, fmt.Sprintf("%d messages deleted", planned)) {
		t.Fatalf("verify after the deletion:\n%s", out)
	}
	out = in.mustCLI("audit", "-tenant", "acme")
	if !strings.Contains(out, "retention-delete") || !strings.Contains(out, "carol@acme.example") {
		t.Fatalf("audit log:\n%s", out)
	}

	in.stop()
	in.start()
	out = in.mustCLI("verify", "-tenant", "acme")
	if !strings.Contains(out, "verify: clean") {
		t.Fatalf("verify after the restart:\n%s", out)
	}
	w2 := startIMAPWatcher(t, in.IMAP, "alice@acme.example", "alice-secret")
	if l, want := w2.line(t), fmt.Sprintf("EXISTS %d", 46-planned); l != want {
		t.Fatalf("after the restart: %s, want %s", l, want)
	}

	// kill -9 in the middle of a retention run: bob's 4,000 old messages.
	const bulk = 4000
	msgs, dates = msgs[:0], dates[:0]
	for i := range bulk {
		msgs = append(msgs, retentionMail(1000+i, "bulk", "bob@acme.example", old))
		dates = append(dates, old)
	}
	in.importDated("acme", "bob@acme.example", msgs, dates)
	waitIndexed(t, in, "acme")
	runFile := filepath.Join(tenantDir, "retention.run")
	done := make(chan string, 1)
	go func() {
		out, _ := runAs(carolEnv, "retention", "run", "-tenant", "acme", "-user", "carol@acme.example")
		done <- out
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(runFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the retention run did not start:\n%s", in.logs())
		}
		time.Sleep(2 * time.Millisecond)
	}
	in.kill()
	<-done
	if _, err := os.Stat(runFile); err != nil {
		t.Fatal("the run finished before the kill; nothing to resume")
	}
	in.start()
	// Opening the tenant resumes the run.
	deadline = time.Now().Add(3 * time.Minute)
	for {
		st := tenantStats(t, in, "acme")
		if st.Deleted == planned+bulk && !st.Retention.Running {
			if _, err := os.Stat(runFile); err != nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the interrupted run did not complete: %+v\n%s", st, in.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	out = in.mustCLI("verify", "-tenant", "acme")
	if !strings.Contains(out, "verify: clean") || !strings.Contains(out, fmt.Sprintf("%d messages deleted", planned+bulk)) {
		t.Fatalf("verify after the resumed run:\n%s", out)
	}
	w3 := startIMAPWatcher(t, in.IMAP, "alice@acme.example", "alice-secret")
	if l, want := w3.line(t), fmt.Sprintf("EXISTS %d", 46-planned); l != want {
		t.Fatalf("alice's mail after the resumed run: %s, want %s", l, want)
	}
	out = in.mustCLI("retention", "reports", "-tenant", "acme")
	if !strings.Contains(out, "carol@acme.example") {
		t.Fatalf("reports:\n%s", out)
	}

	// kill -9 while the packs or meta.db are being compacted after a run.
	msgs, dates = msgs[:0], dates[:0]
	for i := range bulk {
		msgs = append(msgs, retentionMail(9000+i, "second bulk", "bob@acme.example", old))
		dates = append(dates, old)
	}
	in.importDated("acme", "bob@acme.example", msgs, dates)
	waitIndexed(t, in, "acme")
	go func() {
		out, _ := runAs(carolEnv, "retention", "run", "-tenant", "acme", "-user", "carol@acme.example")
		done <- out
	}()
	caught := ""
	deadline = time.Now().Add(2 * time.Minute)
	for caught == "" && time.Now().Before(deadline) {
		for _, pat := range []string{filepath.Join(tenantDir, "packs", "*.pack.compact"), filepath.Join(tenantDir, "meta.db.compact*")} {
			if m, _ := filepath.Glob(pat); len(m) > 0 {
				caught = filepath.Base(m[0])
			}
		}
		select {
		case <-done:
			deadline = time.Now() // the run ended before a compaction was seen
		default:
		}
		time.Sleep(time.Millisecond)
	}
	in.kill()
	t.Logf("killed during the compaction (%q being written)", caught)
	in.start()
	deadline = time.Now().Add(3 * time.Minute)
	for {
		st := tenantStats(t, in, "acme")
		if _, err := os.Stat(runFile); os.IsNotExist(err) && st.Deleted == planned+2*bulk && !st.Retention.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a kill during the compaction: %+v\n%s", st, in.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if m, _ := filepath.Glob(filepath.Join(tenantDir, "packs", "*.compact")); len(m) > 0 {
		t.Fatalf("unfinished compaction left: %v", m)
	}
	for _, r := range packRecords(t, tenantDir) {
		if r.magic != "MVB1" {
			t.Fatalf("a shredded record (%s at %d of %s) is left after the resumed run's compaction", r.magic, r.off, r.file)
		}
	}
	out = in.mustCLI("verify", "-tenant", "acme")
	if !strings.Contains(out, "verify: clean") {
		t.Fatalf("verify after a kill during the compaction:\n%s", out)
	}
	w4 := startIMAPWatcher(t, in.IMAP, "alice@acme.example", "alice-secret")
	if l, want := w4.line(t), fmt.Sprintf("EXISTS %d", 46-planned); l != want {
		t.Fatalf("alice's mail after a kill during the compaction: %s, want %s", l, want)
	}
}

type statsAnswer struct {
	Messages  int `json:"messages"`
	Deleted   int `json:"deleted"`
	Retention struct {
		Running bool `json:"running"`
	} `json:"retention"`
	IndexPending int `json:"index_pending"`
}

func tenantStats(t *testing.T, in *instance, tenant string) statsAnswer {
	t.Helper()
	var st statsAnswer
	if err := in.client().Do("GET", "/api/v1/tenants/"+tenant+"/stats", nil, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func waitIndexed(t *testing.T, in *instance, tenant string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for tenantStats(t, in, tenant).IndexPending > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the index did not catch up")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRetentionJobRunsOnSchedule lets the scheduled job delete what is past
// its maximum retention, and nothing else.
func TestRetentionJobRunsOnSchedule(t *testing.T) {
	in := startAcme(t, "MAILVAULT_STORE_RETENTION_INTERVAL=1s")
	old := time.Date(2012, 3, 1, 9, 0, 0, 0, time.UTC)
	var msgs [][]byte
	var dates []time.Time
	for i := range 20 {
		d := old
		if i%2 == 1 {
			d = time.Now().UTC()
		}
		msgs = append(msgs, retentionMail(i, "scheduled", "alice@acme.example", d))
		dates = append(dates, d)
	}
	in.importDated("acme", "alice@acme.example", msgs, dates)
	waitIndexed(t, in, "acme")
	policies := filepath.Join(t.TempDir(), "policies.json")
	os.WriteFile(policies, []byte(`{"policies":[{"name":"year","min":{"days":1},"max":{"years":1},"max_action":"delete"}]}`), 0o644)
	in.mustCLI("retention", "set", "-tenant", "acme", "-user", "carol@acme.example", policies)
	deadline := time.Now().Add(time.Minute)
	for tenantStats(t, in, "acme").Deleted != 10 {
		if time.Now().After(deadline) {
			t.Fatalf("the scheduled job did not delete the 10 old messages: %+v\n%s", tenantStats(t, in, "acme"), in.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // another run or two: still nothing more
	if st := tenantStats(t, in, "acme"); st.Deleted != 10 || st.Messages != 10 {
		t.Fatalf("after more runs: %+v", st)
	}
	out := in.mustCLI("retention", "reports", "-tenant", "acme")
	if !strings.Contains(out, "retention-job") {
		t.Fatalf("reports:\n%s", out)
	}
	if out := in.mustCLI("verify", "-tenant", "acme"); !strings.Contains(out, "verify: clean") {
		t.Fatalf("verify:\n%s", out)
	}

	// End of life: a hold keeps the tenant from being scheduled; without
	// it the job deletes the tenant after the grace period.
	in.mustCLI("hold", "place", "-tenant", "acme", "-user", "carol@acme.example", "-case", "C-1", "-reason", "r")
	if out, err := in.cli("tenant", "delete", "acme", "-grace", "2s"); err == nil || !strings.Contains(out, "legal hold") {
		t.Fatalf("tenant under a hold scheduled for deletion: %v\n%s", err, out)
	}
	in.mustCLI("hold", "lift", "-tenant", "acme", "-user", "carol@acme.example", "h0001")
	if out := in.mustCLI("tenant", "delete", "acme", "-grace", "2s"); !strings.Contains(out, "will be deleted after") {
		t.Fatalf("tenant delete:\n%s", out)
	}
	dir := filepath.Join(in.dataDir, "tenants", "acme")
	deadline = time.Now().Add(time.Minute)
	for {
		_, err := os.Stat(dir)
		if _, cerr := in.cli("tenant", "show", "acme"); os.IsNotExist(err) && cerr != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tenant was not deleted:\n%s", in.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRetentionQueryCheckedAsEmailQuery: the query of a deletion selection
// or a policy is checked as JMAP's Email/query checks a filter. A value of
// a header the index holds only the presence of and a misspelt
// "conditions" (an AND of nothing) used to select every message that has
// the header or every message; a negative size meant no bound.
func TestRetentionQueryCheckedAsEmailQuery(t *testing.T) {
	in := startAcme(t)
	old := time.Date(2012, 3, 1, 9, 0, 0, 0, time.UTC)
	var msgs [][]byte
	for i, relay := range []string{"relay.example", "other.example"} {
		msgs = append(msgs, append([]byte("Received: from "+relay+" by mx.acme.example; "+old.Format(time.RFC1123Z)+"\r\n"),
			retentionMail(i, "report", "alice@acme.example", old)...))
	}
	in.importDated("acme", "alice@acme.example", msgs, []time.Time{old, old})
	waitIndexed(t, in, "acme")

	dryRun := func(query string) (server.PlanAnswer, error) {
		var plan server.PlanAnswer
		err := in.client().Do("POST", "/api/v1/tenants/acme/retention/dry-run", map[string]any{"query": json.RawMessage(query)}, &plan)
		return plan, err
	}
	// The presence of a header and an indexed field are found.
	for q, want := range map[string]int{`{"header":["Received"]}`: 2, `{"subject":"report 1"}`: 1} {
		if plan, err := dryRun(q); err != nil || plan.Placements != want {
			t.Fatalf("dry run %s: %v %+v, want %d placements", q, err, plan.DeletionPlan, want)
		}
	}
	for _, q := range []string{
		`{"header":["Received","relay.example"]}`,
		`{"operator":"AND","condition":[{"subject":"report 1"}]}`,
		`{"minSize":-1,"subject":"report 1"}`,
		`{"inMailbox":"F1"}`,
	} {
		if plan, err := dryRun(q); err == nil || !strings.Contains(err.Error(), "query") {
			t.Errorf("dry run %s: want the query refused, got %v %+v", q, err, plan.DeletionPlan)
		}
	}
	policies := filepath.Join(t.TempDir(), "policies.json")
	os.WriteFile(policies, []byte(`[{"name":"relayed","query":{"header":["Received","relay.example"]},"max":{"years":1},"max_action":"delete"}]`), 0o644)
	if out, err := in.cli("retention", "set", "-tenant", "acme", "-user", "carol@acme.example", policies); err == nil || !strings.Contains(out, "not indexed") {
		t.Fatalf("a policy on a header value the index does not hold was set: %v\n%s", err, out)
	}
}
