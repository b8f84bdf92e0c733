package tests

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// postMessageAt archives one message received at a given time.
func (in *instance) postMessageAt(tenant, mailbox, folder string, at time.Time, raw []byte) {
	in.t.Helper()
	q := url.Values{"mailbox": {mailbox}, "folder": {folder}, "date": {fmt.Sprint(at.Unix())}}
	resp, err := in.client().Raw("POST", "/api/v1/tenants/"+tenant+"/messages?"+q.Encode(), "message/rfc822", bytes.NewReader(raw))
	if err != nil {
		in.t.Fatal(err)
	}
	resp.Body.Close()
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/test installs it)", tool)
		}
	}
}

// TestZ3Package exports the scope of an audit (one mailbox, one year) as
// a Z3 data carrier and checks it with the tools an auditor has: unzip,
// sha256sum -c of the manifest, openssl cms -verify of its signature
// against the tenant's certificate, xmllint against the GDPdU DTD. The
// EML files are the archived bytes, messages outside the scope are
// absent, the audit table holds the scope's entries, and a changed file
// or manifest is caught.
func TestZ3Package(t *testing.T) {
	needTools(t, "unzip", "sha256sum", "openssl", "xmllint")
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	in.mustCLI("user", "add", "-tenant", "acme", "bob@acme.example", "-password", "bob-secret-1")
	in.mustCLI("mailbox", "grant", "-tenant", "acme", "alice@acme.example", "bob@acme.example")

	msg := func(to, subject string, date time.Time) []byte {
		return fmt.Appendf(nil, "From: \"Partner; GmbH\" <sales@partner.example>\r\nTo: %s\r\nCc: c@partner.example\r\nSubject: %s\r\nDate: %s\r\n\r\nFrom the offer:\r\n>From quoted\r\n",
			to, subject, date.Format(time.RFC1123Z))
	}
	in2023 := map[string][]byte{}
	var outside [][]byte
	for i := range 12 {
		at := time.Date(2023, time.Month(i+1), 15, 9, 30, 0, 0, time.UTC)
		raw := msg("alice@acme.example", fmt.Sprintf("Rechnung %d \"Q%d\"", i, i/3+1), at)
		folder := []string{"INBOX", "Buchhaltung/2023"}[i%2]
		in.postMessageAt("acme", "alice@acme.example", folder, at, raw)
		in2023[fmt.Sprintf("messages/alice@acme.example/%s/%d.eml", folder, i/2+1)] = raw
	}
	for _, at := range []time.Time{time.Date(2022, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)} {
		raw := msg("alice@acme.example", "outside the period "+at.String(), at)
		in.postMessageAt("acme", "alice@acme.example", "INBOX", at, raw)
		outside = append(outside, raw)
	}
	bobRaw := msg("bob@acme.example", "bob only", time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC))
	in.postMessageAt("acme", "bob@acme.example", "INBOX", time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC), bobRaw)
	outside = append(outside, bobRaw)

	dir := t.TempDir()
	pkg := filepath.Join(dir, "z3.zip")
	in.mustCLI("export", "-tenant", "acme", "-format", "z3", "-mailbox", "alice@acme.example", "-since", "2023-01-01", "-until", "2024-01-01", "-o", pkg, "-quiet")
	// The certificate comes to the auditor apart from the package.
	cert := filepath.Join(dir, "tenant-cert.pem")
	if err := os.WriteFile(cert, []byte(in.mustCLI("signing", "show", "-tenant", "acme")), 0o644); err != nil {
		t.Fatal(err)
	}

	carrier := filepath.Join(dir, "carrier")
	run := func(wd string, name string, args ...string) (string, error) {
		cmd := exec.Command(name, args...)
		cmd.Dir = wd
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(dir, "unzip", "-q", pkg, "-d", carrier); err != nil {
		t.Fatalf("unzip: %v\n%s", err, out)
	}
	if out, err := run(carrier, "sha256sum", "--strict", "-c", "manifest.sha256"); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	verify := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", "manifest.sha256.p7s", "-content", "manifest.sha256", "-CAfile", cert, "-out", os.DevNull}
	if out, err := run(carrier, "openssl", verify...); err != nil || !strings.Contains(out, "Verification successful") {
		t.Fatalf("openssl cms -verify: %v\n%s", err, out)
	}
	if out, err := run(carrier, "xmllint", "--noout", "--dtdvalid", "gdpdu-01-09-2004.dtd", "index.xml"); err != nil {
		t.Fatalf("xmllint --dtdvalid: %v\n%s", err, out)
	}

	// Every file is listed in the manifest, the EML files are the scope's
	// messages byte for byte, and nothing else is there.
	manifest, _ := os.ReadFile(filepath.Join(carrier, "manifest.sha256"))
	emls := 0
	err := filepath.Walk(carrier, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(carrier, p)
		rel = filepath.ToSlash(rel)
		switch rel {
		case "manifest.sha256", "manifest.sha256.p7s", "signing-cert.pem":
			return nil
		}
		if !strings.Contains(string(manifest), "  "+rel+"\n") {
			t.Errorf("%s is not in the manifest", rel)
		}
		b, _ := os.ReadFile(p)
		for _, o := range outside {
			if bytes.Equal(b, o) {
				t.Errorf("%s is outside the scope", rel)
			}
		}
		if !strings.HasSuffix(rel, ".eml") {
			return nil
		}
		emls++
		if want, ok := in2023[rel]; !ok || !bytes.Equal(b, want) {
			t.Errorf("%s: not an archived message of the scope, byte for byte", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if emls != len(in2023) {
		t.Errorf("%d EML files, want %d", emls, len(in2023))
	}
	table, _ := os.ReadFile(filepath.Join(carrier, "messages.csv"))
	lines := strings.Split(strings.TrimSuffix(string(table), "\r\n"), "\r\n")
	if len(lines) != 1+len(in2023) || !strings.HasPrefix(lines[0], "file;date;sent;received;mailbox;folder;sender;recipients;subject;size;sha256") {
		t.Errorf("messages.csv: %d lines, header %q", len(lines), lines[0])
	}
	if !strings.Contains(string(table), `;15.03.2023;`) || !strings.Contains(string(table), `"Rechnung 2 ""Q1"""`) || !strings.Contains(string(table), "alice@acme.example, c@partner.example") {
		t.Errorf("messages.csv lacks a date, a quoted subject or the recipients:\n%s", table)
	}
	auditTable, _ := os.ReadFile(filepath.Join(carrier, "audit.csv"))
	if !strings.Contains(string(auditTable), "grant") || !strings.Contains(string(auditTable), "bob@acme.example") {
		t.Errorf("audit.csv lacks the grant on the mailbox:\n%s", auditTable)
	}

	// The documented recomputation of an audit entry's hash.
	cr := csv.NewReader(bytes.NewReader(auditTable))
	cr.Comma = ';'
	recs, err := cr.ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("audit.csv: %v %d records", err, len(recs))
	}
	for _, r := range recs[1:] {
		cmd := exec.Command("bash", "-c", `printf '%s\0%s\0%s\0%s\0%s\0%s' "$1" "$2" "$3" "$4" "$5" "$6" | sha256sum`, "-", r[0], r[2], r[3], r[4], r[5], r[6])
		out, err := cmd.Output()
		if err != nil || !strings.HasPrefix(string(out), r[7]+" ") {
			t.Errorf("audit entry %s: printf | sha256sum gives %q, the entry says %s (%v)", r[0], out, r[7], err)
		}
	}

	// A changed message fails sha256sum; a changed manifest fails openssl.
	victim := filepath.Join(carrier, "messages", "alice@acme.example", "INBOX", "1.eml")
	b, _ := os.ReadFile(victim)
	os.WriteFile(victim, bytes.Replace(b, []byte("Rechnung"), []byte("Rechnunk"), 1), 0o644)
	if out, err := run(carrier, "sha256sum", "--quiet", "-c", "manifest.sha256"); err == nil || !strings.Contains(out, "INBOX/1.eml: FAILED") {
		t.Errorf("sha256sum -c does not catch a changed message: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(carrier, "manifest.sha256"), bytes.Replace(manifest, []byte("INBOX/1.eml"), []byte("INBOX/9.eml"), 1), 0o644)
	if out, err := run(carrier, "openssl", verify...); err == nil {
		t.Errorf("openssl cms -verify accepts a changed manifest:\n%s", out)
	}
	if audit := in.mustCLI("audit", "-tenant", "acme"); !strings.Contains(audit, "format=z3") {
		t.Errorf("the Z3 export is not audited:\n%s", audit)
	}

	// The tenant's own key and certificate (made with openssl) sign the
	// next package.
	own, ownKey := filepath.Join(dir, "own-cert.pem"), filepath.Join(dir, "own-key.pem")
	if out, err := run(dir, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ownKey, "-out", own,
		"-days", "3650", "-subj", "/O=ACME/CN=ACME archive signing", "-addext", "keyUsage=critical,digitalSignature,keyCertSign"); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	in.mustCLI("signing", "import", "-tenant", "acme", "-cert", own, "-key", ownKey)
	pkg2 := filepath.Join(dir, "z3-own.zip")
	in.mustCLI("export", "-tenant", "acme", "-format", "z3", "-mailbox", "alice@acme.example", "-folder", "INBOX", "-o", pkg2, "-quiet")
	carrier2 := filepath.Join(dir, "carrier2")
	if out, err := run(dir, "unzip", "-q", pkg2, "-d", carrier2); err != nil {
		t.Fatalf("unzip: %v\n%s", err, out)
	}
	verify[len(verify)-3] = own
	if out, err := run(carrier2, "openssl", verify...); err != nil {
		t.Errorf("openssl cms -verify against the imported certificate: %v\n%s", err, out)
	}
	verify[len(verify)-3] = cert
	if out, err := run(carrier2, "openssl", verify...); err == nil {
		t.Errorf("the package verifies against the replaced certificate:\n%s", out)
	}
}
