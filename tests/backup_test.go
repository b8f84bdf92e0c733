package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/smtp"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailvault/mailvault/backup"
)

// journalFlood sends journal copies over a few SMTP connections until stop
// is closed, and records when each Message-ID was answered 250.
type journalFlood struct {
	mu    sync.Mutex
	acked map[string]time.Time
	sent  int
	errs  []error
}

func (f *journalFlood) run(t *testing.T, addr string, conns int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := smtp.Dial(addr)
			if err != nil {
				f.fail(err)
				return
			}
			defer cl.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					cl.Quit()
					return
				default:
				}
				id := fmt.Sprintf("<flood-%d-%d@partner.example>", c, i)
				msg := fmt.Sprintf("From: bob@partner.example\r\nTo: alice@acme.example\r\nSubject: flood %d/%d\r\nMessage-ID: %s\r\n\r\n%s\r\n",
					c, i, id, strings.Repeat("line of a message body that keeps arriving\r\n", 1+i%40))
				if err := sendOn(cl, "bob@partner.example", "journal@acme.example", msg); err != nil {
					f.fail(fmt.Errorf("%s: %w", id, err))
					return
				}
				f.mu.Lock()
				f.acked[id] = time.Now()
				f.mu.Unlock()
			}
		}()
	}
	return &wg
}

func (f *journalFlood) fail(err error) {
	f.mu.Lock()
	f.errs = append(f.errs, err)
	f.mu.Unlock()
}

func (f *journalFlood) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.acked)
}

// sendOn sends one message in an open SMTP session.
func sendOn(c *smtp.Client, from, to, msg string) error {
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	return w.Close()
}

// inboxMessageIDs lists the Message-IDs in login's INBOX over IMAP.
func inboxMessageIDs(t *testing.T, addr, login, password string) map[string]bool {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(login, password).Wait(); err != nil {
		t.Fatalf("IMAP login: %v", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	if sel.NumMessages == 0 {
		return ids
	}
	var all imap.SeqSet
	all.AddRange(1, sel.NumMessages)
	msgs, err := c.Fetch(all, &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil {
		t.Fatalf("FETCH: %v", err)
	}
	for _, m := range msgs {
		ids["<"+m.Envelope.MessageID+">"] = true
	}
	if len(ids) != int(sel.NumMessages) {
		t.Fatalf("INBOX holds %d messages, %d Message-IDs fetched", sel.NumMessages, len(ids))
	}
	return ids
}

// TestBackupDuringJournalFlood takes a backup while SMTP journaling goes
// on, restores it into a fresh data directory and starts a server on it on
// other ports: every message answered 250 before the tenant's cut is
// there, nothing after the cut is counted, verify is clean and the index
// is rebuilt.
func TestBackupDuringJournalFlood(t *testing.T) {
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	in.mustCLI("journal", "allow", "-tenant", "acme", "127.0.0.1/32")

	flood := &journalFlood{acked: map[string]time.Time{}}
	stop := make(chan struct{})
	wg := flood.run(t, in.SMTP, 3, stop)
	stopFlood := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopFlood()
	deadline := time.Now().Add(time.Minute)
	for flood.count() < 150 && time.Now().Before(deadline) && len(flood.errs) == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	if n := flood.count(); n < 150 {
		t.Fatalf("only %d messages journaled before the backup: %v", n, flood.errs)
	}

	file := filepath.Join(t.TempDir(), "acme.tar.zst")
	out := in.mustCLI("backup", "-o", file, "-zstd", "-json")
	var m backup.Manifest
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("backup -json: %v\n%s", err, out)
	}
	// Mail goes on after the backup.
	after := flood.count()
	for flood.count() < after+50 && len(flood.errs) == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	stopFlood()
	if len(flood.errs) > 0 {
		t.Fatalf("journaling failed during the backup: %v", flood.errs)
	}
	if len(m.Tenants) != 1 || m.Tenants[0].Name != "acme" {
		t.Fatalf("backup manifest tenants: %+v", m.Tenants)
	}
	cut := m.Tenants[0]
	var beforeCut []string
	for id, at := range flood.acked {
		if at.Before(cut.At) {
			beforeCut = append(beforeCut, id)
		}
	}
	t.Logf("%d messages acknowledged in all, %d before the cut; the cut holds %d", len(flood.acked), len(beforeCut), cut.Messages)
	if len(beforeCut) < 150 || cut.Messages >= uint64(len(flood.acked)) {
		t.Fatalf("cut of %d messages with %d acknowledged before it and %d in all: not taken during the flood", cut.Messages, len(beforeCut), len(flood.acked))
	}

	// Restore needs the master key, kept apart from the backup.
	dir := filepath.Join(t.TempDir(), "restored")
	if out, err := in.cli("restore", "-i", file, "-data", dir); err == nil {
		t.Fatalf("restore without the master key succeeded:\n%s", out)
	}
	in.mustCLI("restore", "-i", file, "-data", dir, "-master-key", filepath.Join(in.dataDir, "master.key"))
	if out, err := in.cli("restore", "-i", file, "-data", dir, "-master-key", filepath.Join(in.dataDir, "master.key")); err == nil {
		t.Fatalf("restore into a non-empty directory succeeded:\n%s", out)
	}

	// The original keeps running; the copy starts beside it on other ports,
	// its metrics and health on a port of their own.
	re := newInstanceAt(t, dir)
	metricsAddr := freeAddr(t)
	re.env = append(re.env, "MAILVAULT_HTTP_METRICS_LISTEN="+metricsAddr)
	re.start()

	var st backendStats
	if err := re.client().Do("GET", "/api/v1/tenants/acme/stats", nil, &st); err != nil {
		t.Fatal(err)
	}
	if uint64(st.Messages) != cut.Messages {
		t.Errorf("restored tenant holds %d messages, the cut %d", st.Messages, cut.Messages)
	}
	ids := inboxMessageIDs(t, re.IMAP, "alice@acme.example", "alice-secret")
	missing := 0
	for _, id := range beforeCut {
		if !ids[id] {
			missing++
			if missing <= 5 {
				t.Errorf("%s acknowledged at %s, before the cut at %s, is not in the restored archive", id, flood.acked[id].Format(time.StampMicro), cut.At.Format(time.StampMicro))
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d messages acknowledged before the cut are missing", missing, len(beforeCut))
	}
	for id := range ids {
		if _, ok := flood.acked[id]; !ok {
			t.Errorf("restored archive holds %s, which was never acknowledged", id)
		}
	}

	verify := re.mustCLI("verify", "-tenant", "acme")
	if !strings.Contains(verify, fmt.Sprintf("%d messages", cut.Messages)) {
		t.Errorf("verify of the restored tenant:\n%s", verify)
	}
	var vr struct {
		Clean bool `json:"clean"`
	}
	if err := re.client().Do("POST", "/api/v1/tenants/acme/verify", nil, &vr); err != nil || !vr.Clean {
		t.Errorf("restored tenant not clean (%v):\n%s", err, verify)
	}

	// The index, not in the backup, is rebuilt; the server is ready.
	waitMetric(t, "http://"+metricsAddr+"/metrics", "mailvault_index_lag_messages", 0, "tenant", "acme")
	resp, err := http.Get("http://" + metricsAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("restored server /readyz: %s", resp.Status)
	}
	// The original's audit log names the backup.
	var audit []struct {
		Action string `json:"action"`
	}
	if err := in.client().Do("GET", "/api/v1/tenants/acme/audit?limit=1000", nil, &audit); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range audit {
		found = found || e.Action == "backup"
	}
	if !found {
		t.Errorf("no backup entry in the audit log: %+v", audit)
	}
}

type backendStats struct {
	Messages int `json:"messages"`
}
