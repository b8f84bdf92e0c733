package jmap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// nodeClients returns the directory with the npm JMAP clients installed,
// installing them when missing (.ci/run may have done it already). It
// skips the test only when node or npm is missing or npm cannot install.
func nodeClients(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "node"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "jmap-jam", "package.json")); err == nil {
		return dir
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("npm cannot install jmap-jam: %v\n%s", err, out)
	}
	return dir
}

// TestJamClient drives the archive with the npm client jmap-jam 0.13.1
// (testdata/node/jam.mjs): list mailboxes, page through the INBOX, find and
// read a message, download its attachment.
func TestJamClient(t *testing.T) {
	dir := nodeClients(t)
	f := sharedFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "jam.mjs", f.srv.URL+WellKnownPath, alice, pw)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node: %v\n%s\n%s", err, out, stderr)
	}
	var got struct {
		AccountID string `json:"accountId"`
		Mailboxes []struct {
			ID, Name string
			Role     *string
			Total    int
			ParentID *string
		} `json:"mailboxes"`
		Paged []struct {
			ID, Subject, From, ReceivedAt string
		} `json:"paged"`
		Total   int `json:"total"`
		Message struct {
			ID, Subject, Text string
			From              []map[string]any
			Keywords          map[string]bool
			Attachment        struct {
				Name, Type string
				Size       int
			}
		} `json:"message"`
		Download struct {
			Status int
			Type   string
			SHA256 string
		} `json:"download"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.AccountID != f.account(t, f.acme, alice) || len(got.Mailboxes) != 4 || got.Error != "accountNotFound" {
		t.Errorf("session, mailboxes, error: %s", out)
	}
	inbox, info := f.folder(t, f.acme, alice, alice, "INBOX")
	for _, m := range got.Mailboxes {
		if m.ID == inbox && (m.Role == nil || *m.Role != "inbox" || m.Total != info.Messages || m.ParentID != nil) {
			t.Errorf("inbox %+v", m)
		}
	}
	want := f.expected(t, f.inAccount(t, f.acme, alice, alice)["INBOX"], nil, byNewest)
	var paged []string
	for _, p := range got.Paged {
		paged = append(paged, p.ID)
		if p.Subject == "" || p.From == "" || p.ReceivedAt == "" {
			t.Errorf("paged email %+v", p)
		}
	}
	if !slices.Equal(paged, want) || got.Total != len(want) {
		t.Errorf("paged %v (total %d), want %v", paged, got.Total, want)
	}
	pdf, _ := os.ReadFile(filepath.Join("testdata", "angebot.pdf"))
	sum := sha256.Sum256(pdf)
	m := got.Message
	if m.ID != emailID(f.hand["alternative"].mid) || m.Subject != "Angebot für Köln" || m.From[0]["name"] != "Hans Müller" ||
		m.Text != "Grüße aus Köln, das Angebot liegt bei. Diese Zeile ist sehr lang und wird weich umbrochen." ||
		!m.Keywords["$seen"] || m.Attachment.Name != "Angebot-Müller.pdf" || m.Attachment.Size != len(pdf) {
		t.Errorf("message %+v", m)
	}
	if got.Download.Status != 200 || got.Download.Type != "application/pdf" || got.Download.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("download %+v", got.Download)
	}
}
