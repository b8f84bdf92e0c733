package tests

import (
	"bytes"
	endian "encoding/binary"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailvault/mailvault/mailfile"
	"github.com/mailvault/mailvault/mailgen"
)

// postMessage archives one message into a mailbox folder through the API.
func (in *instance) postMessage(tenant, mailbox, folder string, raw []byte) {
	in.t.Helper()
	q := url.Values{"mailbox": {mailbox}, "folder": {folder}}
	resp, err := in.client().Raw("POST", "/api/v1/tenants/"+tenant+"/messages?"+q.Encode(), "message/rfc822", bytes.NewReader(raw))
	if err != nil {
		in.t.Fatal(err)
	}
	resp.Body.Close()
}

// TestExportCLIAndAPI exports with `mailvault export` and over the API:
// zipped EML unzips to the folder structure with every file byte-exact
// and nothing from other mailboxes, mbox reads back with the importer's
// reader, the progress line names messages, bytes and rate, admin and
// compliance users may download with Basic auth and readers may not, an
// export broken off by an unreadable message leaves no file under the
// final name, and the same command run again writes it whole.
func TestExportCLIAndAPI(t *testing.T) {
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	in.mustCLI("user", "add", "-tenant", "acme", "bob@acme.example", "-password", "bob-secret-1")
	in.mustCLI("user", "add", "-tenant", "acme", "carol@acme.example", "-password", "carol-secret", "-role", "compliance", "-no-mailbox")
	in.mustCLI("user", "add", "-tenant", "acme", "dave@acme.example", "-password", "dave-secret", "-no-mailbox")

	g := mailgen.New(3, []string{"acme.example"}, 10)
	g.AvgSize = 8 << 10
	const n = 200
	alice := map[string][]byte{} // path in the export -> raw
	for i := range n {
		raw := g.Next().Raw
		folder := []string{"INBOX", "Projects/2023", "Sent"}[i%3]
		in.postMessage("acme", "alice@acme.example", folder, raw)
		alice[fmt.Sprintf("alice@acme.example/%s/%d.eml", folder, i/3+1)] = raw
	}
	bobRaw := []byte("From: x@partner.example\r\nTo: bob@acme.example\r\nSubject: only bob\r\n\r\nFrom here on\r\n")
	in.postMessage("acme", "bob@acme.example", "INBOX", bobRaw)

	dir := t.TempDir()
	target := filepath.Join(dir, "alice.zip")
	cmd := exec.Command(binary, "export", "-tenant", "acme", "-mailbox", "alice@acme.example", "-o", target)
	cmd.Env = in.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("%d/%d messages", n, n)) || !strings.Contains(stderr.String(), "MB/s") {
		t.Errorf("progress line lacks messages or rate:\n%s", stderr.String())
	}
	if _, err := os.Stat(target + ".part"); !os.IsNotExist(err) {
		t.Errorf("a .part file is left: %v", err)
	}
	checkUnzipped(t, target, alice)

	// mboxrd of bob's mailbox: his one message, a "From " body line quoted.
	mboxPath := filepath.Join(dir, "bob.mbox")
	in.mustCLI("export", "-tenant", "acme", "-mailbox", "bob@acme.example", "-format", "mbox", "-o", mboxPath, "-quiet")
	f, err := os.Open(mboxPath)
	if err != nil {
		t.Fatal(err)
	}
	mr := mailfile.NewMboxReader(f)
	raw, _, err := mr.Next()
	if err != nil || !bytes.Equal(raw, bobRaw) {
		t.Errorf("mbox export: %q %v", raw, err)
	}
	if _, _, err := mr.Next(); err != io.EOF {
		t.Errorf("mbox export holds more than bob's message: %v", err)
	}
	f.Close()

	// Basic auth: a compliance user downloads with curl, a reader may not,
	// and a user reaches no other endpoint.
	if _, err := exec.LookPath("curl"); err == nil {
		base := "http://" + in.HTTP + "/api/v1/tenants/acme/export?mailbox=alice@acme.example&folder=Projects/2023"
		carolZip := filepath.Join(dir, "carol.zip")
		out, err := exec.Command("curl", "-sS", "-f", "-u", "carol@acme.example:carol-secret", "-o", carolZip, base).CombinedOutput()
		if err != nil {
			t.Fatalf("curl export as compliance: %v\n%s", err, out)
		}
		want := map[string][]byte{}
		for p, raw := range alice {
			if strings.Contains(p, "/Projects/2023/") {
				want[p] = raw
			}
		}
		checkUnzipped(t, carolZip, want)
		for _, c := range []struct {
			user, url, code string
		}{
			{"dave@acme.example:dave-secret", base, "403"},
			{"carol@acme.example:wrong-password", base, "401"},
			{"carol@acme.example:carol-secret", "http://" + in.HTTP + "/api/v1/tenants", "403"},
		} {
			out, _ := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", c.user, c.url).CombinedOutput()
			if string(out) != c.code {
				t.Errorf("curl -u %s %s: %s, want %s", c.user, c.url, out, c.code)
			}
		}
	}
	audit := in.mustCLI("audit", "-tenant", "acme")
	if !strings.Contains(audit, "carol@acme.example") || !strings.Contains(audit, fmt.Sprintf("messages=%d", n)) {
		t.Errorf("exports not audited with actor and count:\n%s", audit)
	}

	// Broken off: an unreadable message late in the export ends it; the
	// final name never holds a cut export. Run again once the archive is
	// whole, the same command writes it completely.
	in.stop()
	pack := filepath.Join(in.dataDir, "tenants", "acme", "packs", "00000000.pack")
	orig, err := os.ReadFile(pack)
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), orig...)
	off := 0
	for range n - 10 {
		off += 44 + int(endian.LittleEndian.Uint32(damaged[off+36:off+40]))
	}
	damaged[off+44+20] ^= 0x40
	if err := os.WriteFile(pack, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	in.start()
	broken := filepath.Join(dir, "again.zip")
	out, err := in.cli("export", "-tenant", "acme", "-mailbox", "alice@acme.example", "-o", broken)
	if err == nil || !strings.Contains(out, "broken off") {
		t.Errorf("export over a damaged message did not fail: %v\n%s", err, out)
	}
	if _, err := os.Stat(broken); !os.IsNotExist(err) {
		t.Errorf("a broken-off export is under the final name: %v", err)
	}
	if fi, err := os.Stat(broken + ".part"); err != nil || fi.Size() == 0 {
		t.Errorf("the broken-off export left no partial file: %v", err)
	}
	in.stop()
	if err := os.WriteFile(pack, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	in.start()
	in.mustCLI("export", "-tenant", "acme", "-mailbox", "alice@acme.example", "-o", broken, "-quiet")
	if _, err := os.Stat(broken + ".part"); !os.IsNotExist(err) {
		t.Errorf("the .part file is left after a complete run: %v", err)
	}
	checkUnzipped(t, broken, alice)
}

// checkUnzipped unzips archive with Info-ZIP's unzip (or archive/zip
// when it is missing) and compares the files with want, byte for byte.
func checkUnzipped(t *testing.T, archive string, want map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("unzip", "-q", archive, "-d", dir).CombinedOutput(); err != nil {
		t.Fatalf("unzip %s: %v\n%s", archive, err, out)
	}
	got := 0
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		w, ok := want[filepath.ToSlash(rel)]
		switch {
		case !ok:
			t.Errorf("%s holds %s, outside the scope", filepath.Base(archive), rel)
		case !bytes.Equal(b, w):
			t.Errorf("%s: %s differs from the archived message", filepath.Base(archive), rel)
		}
		got++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != len(want) {
		t.Errorf("%s holds %d files, want %d", filepath.Base(archive), got, len(want))
	}
}
