package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads url and parses it as Prometheus' text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// metricValue returns the value of the series of family name whose labels
// include want (counter, gauge, or a histogram's count), and whether it
// exists.
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for k, v := range want {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// TestMetricsCountTheWork does known work through every front end of the
// real server (SMTP journal, import, IMAP logins good and bad, a JMAP
// query, a failing directory sync) and checks what /metrics says about it.
func TestMetricsCountTheWork(t *testing.T) {
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	in.mustCLI("journal", "allow", "-tenant", "acme", "127.0.0.1/32")

	// Journal: 7 distinct messages and one retry of the first; one RCPT
	// for a domain no tenant has.
	const n = 7
	var smtpBytes int
	var first string
	for i := range n {
		msg := fmt.Sprintf("From: bob@partner.example\r\nTo: alice@acme.example\r\nSubject: order %d\r\nMessage-ID: <order-%d@partner.example>\r\n\r\nPlease ship %d units.\r\n", i, i, i)
		if i == 0 {
			first = msg
		}
		smtpBytes += len(msg)
		if err := sendPlain(in.SMTP, "bob@partner.example", "journal@acme.example", msg); err != nil {
			t.Fatalf("SMTP message %d: %v", i, err)
		}
	}
	if err := sendPlain(in.SMTP, "bob@partner.example", "journal@acme.example", first); err != nil {
		t.Fatalf("SMTP retry: %v", err)
	}
	if err := sendPlain(in.SMTP, "bob@partner.example", "journal@nowhere.example", first); err == nil {
		t.Fatal("RCPT for an unknown domain accepted")
	}

	// Import: 3 messages into alice's mailbox.
	var imports [][]byte
	importBytes := 0
	for i := range 3 {
		m := []byte(fmt.Sprintf("From: alice@acme.example\r\nTo: carol@partner.example\r\nSubject: old %d\r\nMessage-ID: <old-%d@acme.example>\r\n\r\nfrom the old archive\r\n", i, i))
		imports = append(imports, m)
		importBytes += len(m)
	}
	if acked, bad := in.importStream("acme", "alice@acme.example", imports, func(int) {}); len(acked) != 3 || bad.Error != "" {
		t.Fatalf("import: %d acknowledged, error %q", len(acked), bad.Error)
	}

	// IMAP: two wrong passwords, then the right one; the session stays
	// open for the scrape.
	for i := range 2 {
		c, err := imapclient.DialInsecure(in.IMAP, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login("alice@acme.example", "wrong").Wait(); err == nil {
			t.Fatalf("wrong password %d accepted", i)
		}
		c.Close()
	}
	imapC, err := imapclient.DialInsecure(in.IMAP, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer imapC.Close()
	if err := imapC.Login("alice@acme.example", "alice-secret").Wait(); err != nil {
		t.Fatalf("IMAP login: %v", err)
	}
	if _, err := imapC.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("SELECT: %v", err)
	}

	// JMAP: one wrong password, one query.
	sreq, _ := http.NewRequest("GET", "http://"+in.HTTP+"/.well-known/jmap", nil)
	sreq.SetBasicAuth("alice@acme.example", "alice-secret")
	sresp, err := http.DefaultClient.Do(sreq)
	if err != nil {
		t.Fatal(err)
	}
	var session struct {
		PrimaryAccounts map[string]string `json:"primaryAccounts"`
	}
	json.NewDecoder(sresp.Body).Decode(&session)
	sresp.Body.Close()
	account := session.PrimaryAccounts["urn:ietf:params:jmap:mail"]
	if account == "" {
		t.Fatalf("JMAP session without a mail account: %s", sresp.Status)
	}
	jmapPost := func(password string) int {
		body := `{"using":["urn:ietf:params:jmap:core","urn:ietf:params:jmap:mail"],"methodCalls":[["Email/query",{"accountId":"` + account + `"},"q"]]}`
		req, _ := http.NewRequest("POST", "http://"+in.HTTP+"/jmap/api", strings.NewReader(body))
		req.SetBasicAuth("alice@acme.example", password)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := jmapPost("wrong"); code != http.StatusUnauthorized {
		t.Fatalf("JMAP wrong password: %d", code)
	}
	if code := jmapPost("alice-secret"); code != http.StatusOK {
		t.Fatalf("JMAP query: %d", code)
	}

	// Directory sync: one run against a port where nothing answers.
	prof := filepath.Join(t.TempDir(), "corp.json")
	os.WriteFile(prof, []byte(`{"url": "ldap://`+freeAddr(t)+`", "bind_dn": "cn=mailvault,dc=acme,dc=example",
		"bind_password": "secret", "base_dn": "dc=acme,dc=example", "preset": "openldap", "domains": ["acme.example"]}`), 0o644)
	in.mustCLI("dirsync", "put", "-tenant", "acme", "corp", "-file", prof)
	if out, err := in.cli("dirsync", "run", "-tenant", "acme", "-profile", "corp"); err == nil {
		t.Fatalf("dirsync against nothing succeeded:\n%s", out)
	}

	url := "http://" + in.HTTP + "/metrics"
	// Connections the clients closed end on the server a moment later.
	waitMetric(t, url, "mailvault_sessions", 1, "protocol", "imap")
	waitMetric(t, url, "mailvault_sessions", 0, "protocol", "smtp")
	fams := scrape(t, url)
	check := func(name string, want float64, kv ...string) {
		t.Helper()
		got, ok := metricValue(fams, name, labels(kv...))
		if !ok {
			t.Errorf("%s%v: missing", name, kv)
		} else if got != want {
			t.Errorf("%s%v = %v, want %v", name, kv, got, want)
		}
	}
	check("mailvault_ingested_messages_total", n+1, "intake", "smtp")
	check("mailvault_ingested_duplicates_total", 1, "intake", "smtp")
	check("mailvault_ingested_bytes_total", float64(smtpBytes), "intake", "smtp")
	check("mailvault_ingested_messages_total", 3, "intake", "import")
	check("mailvault_ingested_bytes_total", float64(importBytes), "intake", "import")
	check("mailvault_ingest_rejected_total", 0, "intake", "smtp", "reason", "disk_full")
	check("mailvault_smtp_accepted_messages_total", n+1)
	check("mailvault_smtp_rejected_total", 1, "reason", "recipient")
	check("mailvault_command_duration_seconds", n+1, "protocol", "smtp", "command", "DATA")
	check("mailvault_logins_failed_total", 2, "protocol", "imap")
	check("mailvault_logins_failed_total", 1, "protocol", "jmap")
	check("mailvault_logins_failed_total", 0, "protocol", "smtp")
	check("mailvault_command_duration_seconds", 3, "protocol", "imap", "command", "LOGIN")
	check("mailvault_command_duration_seconds", 1, "protocol", "imap", "command", "SELECT")
	check("mailvault_command_duration_seconds", 1, "protocol", "jmap", "command", "Email/query")
	check("mailvault_dirsync_runs_total", 1, "result", "failed")
	check("mailvault_dirsync_runs_total", 0, "result", "ok")
	check("mailvault_tenant_messages", n+3, "tenant", "acme")
	check("mailvault_tenant_bytes", float64(smtpBytes+importBytes), "tenant", "acme")
	check("mailvault_tenants_open", 1)
	if commits, _ := metricValue(fams, "mailvault_commit_duration_seconds", nil); commits < 1 || commits > n+1+3 {
		t.Errorf("%v commits for %d messages", commits, n+1+3)
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}

	// The index catches up: its lag goes to 0.
	waitMetric(t, url, "mailvault_index_lag_messages", 0, "tenant", "acme")
	// The IMAP session's end is seen.
	imapC.Logout().Wait()
	waitMetric(t, url, "mailvault_sessions", 0, "protocol", "imap")

	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n"} {
		resp, err := http.Get("http://" + in.HTTP + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(b, []byte(want)) {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, b)
		}
	}
}

// waitMetric scrapes url until the series has the value, for a minute at
// most.
func waitMetric(t *testing.T, url, name string, want float64, kv ...string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got, ok := metricValue(scrape(t, url), name, labels(kv...))
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v (present %v), want %v", name, kv, got, ok, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReadyzReportsDiskFloor: with free space below the intake floor the
// server is alive but not ready, and says why.
func TestReadyzReportsDiskFloor(t *testing.T) {
	in := newInstance(t)
	const floor = "1125899906842624" // 1 PiB: more than any test disk has free
	in.env = append(in.env, "MAILVAULT_STORE_INTAKE_MIN_FREE_BYTES="+floor, "MAILVAULT_STORE_INDEX_MIN_FREE_BYTES="+floor)
	in.start()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + in.HTTP + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "intake floor") {
		t.Errorf("/readyz below the disk floor: %d %q", code, body)
	}
}
