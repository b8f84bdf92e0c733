package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/backend"
)

// localTSA is an RFC 3161 time-stamping authority run by the test: a CA
// and a TSA certificate made with openssl, and an HTTP handler that
// answers each query with `openssl ts -reply`.
type localTSA struct {
	dir, ca string
	srv     *httptest.Server
}

func newLocalTSA(t *testing.T) *localTSA {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
		"-subj", "/CN=Test TSA CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=Test TSA")
	write("tsa-ext.cnf", "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n")
	run("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "tsa.pem", "-days", "3650", "-extfile", "tsa-ext.cnf")
	write("serial", "01\n")
	write("tsa.cnf", fmt.Sprintf(`[ tsa ]
default_tsa = tsa1
[ tsa1 ]
dir = %s
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_alg = sha256
`, dir))
	tsa := &localTSA{dir: dir, ca: filepath.Join(dir, "ca.pem")}
	var mu sync.Mutex
	n := 0
	tsa.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		n++
		q, _ := io.ReadAll(r.Body)
		qf, rf := filepath.Join(dir, fmt.Sprintf("q%d.tsq", n)), filepath.Join(dir, fmt.Sprintf("r%d.tsr", n))
		os.WriteFile(qf, q, 0o600)
		out, err := exec.Command("openssl", "ts", "-reply", "-config", filepath.Join(dir, "tsa.cnf"), "-queryfile", qf, "-out", rf).CombinedOutput()
		if err != nil {
			http.Error(w, string(out), http.StatusInternalServerError)
			return
		}
		reply, _ := os.ReadFile(rf)
		w.Header().Set("Content-Type", "application/timestamp-reply")
		w.Write(reply)
	}))
	t.Cleanup(tsa.srv.Close)
	return tsa
}

type verifyAnswer struct {
	Report backend.VerifyReport `json:"report"`
	Clean  bool                 `json:"clean"`
}

// TestTimestamps runs a local TSA: without one configured, verify says no
// timestamps exist; with one, the heads of the message and audit chains
// are timestamped at the interval, `openssl ts -verify` accepts each
// token for the chain head at its sequence number, verify says from when
// the contents are provably unchanged, and an altered token or chain head
// is reported.
func TestTimestamps(t *testing.T) {
	needTools(t, "openssl", "unzip")
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	out := in.mustCLI("verify", "-tenant", "acme")
	if !strings.Contains(out, "no timestamps exist") {
		t.Errorf("verify without a TSA:\n%s", out)
	}
	in.stop()

	tsa := newLocalTSA(t)
	in.env = append(in.env, "MAILVAULT_EVIDENCE_TSA_URL="+tsa.srv.URL, "MAILVAULT_EVIDENCE_TSA_CA_FILE="+tsa.ca, "MAILVAULT_EVIDENCE_INTERVAL=1s")
	in.start()
	const n = 5
	for i := range n {
		in.postMessage("acme", "alice@acme.example", "INBOX", fmt.Appendf(nil, "From: x@partner.example\r\nTo: alice@acme.example\r\nSubject: %d\r\n\r\nbody %d\r\n", i, i))
	}
	stampDir := filepath.Join(in.dataDir, "tenants", "acme", "timestamps")
	msgToken := filepath.Join(stampDir, fmt.Sprintf("messages-%016d.tsr", n))
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(msgToken); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no token for message %d:\n%s", n, in.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var stats backend.Stats
	if err := in.client().Do("GET", "/api/v1/tenants/acme/stats", nil, &stats); err != nil {
		t.Fatal(err)
	}
	tsVerify := func(token, digest string) (string, error) {
		out, err := exec.Command("openssl", "ts", "-verify", "-in", token, "-digest", digest, "-CAfile", tsa.ca).CombinedOutput()
		return string(out), err
	}
	if out, err := tsVerify(msgToken, stats.ChainTip); err != nil || !strings.Contains(out, "Verification: OK") {
		t.Errorf("openssl ts -verify of the message chain token: %v\n%s", err, out)
	}
	// The audit chain: the newest token against the hash of its entry.
	audits, _ := filepath.Glob(filepath.Join(stampDir, "audit-*.tsr"))
	if len(audits) == 0 {
		t.Fatal("no audit chain token")
	}
	auditToken := audits[len(audits)-1]
	var seq uint64
	fmt.Sscanf(strings.TrimPrefix(filepath.Base(auditToken), "audit-"), "%016d", &seq)
	var entries []backend.AuditEntry
	if err := in.client().Do("GET", fmt.Sprintf("/api/v1/tenants/acme/audit?after=%d&limit=1", seq-1), nil, &entries); err != nil || len(entries) != 1 {
		t.Fatalf("audit entry %d: %v", seq, err)
	}
	if out, err := tsVerify(auditToken, entries[0].Hash); err != nil || !strings.Contains(out, "Verification: OK") {
		t.Errorf("openssl ts -verify of the audit chain token: %v\n%s", err, out)
	}
	// A Z3 package carries the TSA's token over its manifest.
	pkg := filepath.Join(t.TempDir(), "z3.zip")
	in.mustCLI("export", "-tenant", "acme", "-format", "z3", "-all", "-o", pkg, "-quiet")
	carrier := filepath.Join(t.TempDir(), "carrier")
	if out, err := exec.Command("unzip", "-q", pkg, "-d", carrier).CombinedOutput(); err != nil {
		t.Fatalf("unzip: %v\n%s", err, out)
	}
	if out, err := exec.Command("openssl", "ts", "-verify", "-in", filepath.Join(carrier, "manifest.sha256.tsr"), "-data", filepath.Join(carrier, "manifest.sha256"), "-CAfile", tsa.ca).CombinedOutput(); err != nil || !strings.Contains(string(out), "Verification: OK") {
		t.Errorf("openssl ts -verify of the package's manifest token: %v\n%s", err, out)
	}
	out, err := in.cli("verify", "-tenant", "acme")
	if err != nil || !strings.Contains(out, fmt.Sprintf("messages chain: messages 1 to %d provably unchanged since", n)) || !strings.Contains(out, "audit chain: audit entries 1 to") {
		t.Errorf("verify with timestamps: %v\n%s", err, out)
	}
	in.stop()

	// An altered token: openssl and verify both refuse it.
	tok, _ := os.ReadFile(auditToken)
	bad := append([]byte(nil), tok...)
	bad[len(bad)-40] ^= 0x01 // inside the signature value
	os.WriteFile(auditToken, bad, 0o600)
	if out, err := tsVerify(auditToken, entries[0].Hash); err == nil {
		t.Errorf("openssl ts -verify accepts an altered token:\n%s", out)
	}
	// An altered chain head: the newest message record gets another one.
	db, err := buntdb.Open(filepath.Join(in.dataDir, "tenants", "acme", "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *buntdb.Tx) error {
		k := fmt.Sprintf("msg:%016x", n)
		v, err := tx.Get(k)
		if err != nil {
			return err
		}
		f := strings.Fields(v)
		f[5] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		_, _, err = tx.Set(k, strings.Join(f, " "), nil)
		return err
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	in.env = append(in.env, "MAILVAULT_EVIDENCE_INTERVAL=1h") // no new tokens while checking
	in.start()
	var ans verifyAnswer
	if err := in.client().Do("POST", "/api/v1/tenants/acme/verify", nil, &ans); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, p := range ans.Report.Problems {
		kinds[p.Kind] += p.Detail + "; "
	}
	if ans.Clean || !strings.Contains(kinds["timestamp-invalid"], filepath.Base(auditToken)) || !strings.Contains(kinds["timestamp-mismatch"], filepath.Base(msgToken)) {
		b, _ := json.MarshalIndent(ans, "", "  ")
		t.Errorf("verify does not report the altered token and chain head:\n%s", b)
	}
	if out, err := in.cli("verify", "-tenant", "acme"); err == nil || !strings.Contains(out, "timestamp-mismatch") {
		t.Errorf("mailvault verify: %v\n%s", err, out)
	}
}
