package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestImportFiles imports single files with the CLI: an unknown target
// mailbox fails before any file is read, a .eml whose header starts with
// X- fields is a message, a lone mbox file is the folder it is named
// after, the received date comes from the message, and messages nobody
// claims are counted.
func TestImportFiles(t *testing.T) {
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	src := t.TempDir()
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	write := func(name, content string) string {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		return p
	}
	xfirst := write("thunderbird.eml", "X-Mozilla-Status: 0001\r\nX-Mozilla-Keys: \r\nX-Account-Key: account1\r\n"+
		"From: bob@partner.example\r\nTo: alice@acme.example\r\nDate: Tue, 14 Mar 2023 09:30:00 +0100\r\nSubject: x first\r\n\r\nhi\r\n")
	longX := write("exchange.eml", "X-Microsoft-Antispam-Message-Info: "+strings.Repeat("A", 40<<10)+"\r\n"+
		"Received: from mx.partner.example by mx.acme.example; Wed, 15 Mar 2023 10:00:00 +0000\r\n"+
		"From: bob@partner.example\r\nTo: alice@acme.example\r\nSubject: long x\r\n\r\nhi\r\n")
	onlyX := write("exported.eml", "X-Exported-By: tool\r\nX-Original-Folder: Inbox\r\n\r\nbody of a message without the usual fields\r\n")
	mbox := write("Projects.mbox", "From bob@partner.example Thu Mar 16 11:00:00 2023\n"+
		"From: bob@partner.example\nTo: alice@acme.example\nSubject: in mbox\n\nbody\n")
	nobody := write("nobody.eml", "From: x@elsewhere.example\r\nTo: y@elsewhere.example\r\nSubject: stray\r\nDate: Fri, 17 Mar 2023 12:00:00 +0000\r\n\r\nhi\r\n")

	// A misspelt mailbox: one error, before any file is read (the missing
	// path would be reported otherwise).
	out, err := in.cli("import", "-tenant", "acme", "-mailbox", "nobdoy@acme.example", xfirst, filepath.Join(src, "missing"))
	if err == nil || strings.Count(out, "nobdoy@acme.example") != 1 || strings.Contains(out, "missing") {
		t.Errorf("import into an unknown mailbox: %v\n%s", err, out)
	}
	for _, p := range []string{xfirst, longX, onlyX, mbox} {
		if out, err := in.cli("import", "-tenant", "acme", "-mailbox", "alice@acme.example", p); err != nil || !strings.Contains(out, "1 archived") {
			t.Errorf("import %s: %v\n%s", filepath.Base(p), err, out)
		}
	}
	out, _ = in.cli("import", "-tenant", "acme", nobody, xfirst)
	if !strings.Contains(out, "1 matched no archive mailbox") {
		t.Errorf("import summary does not count the unmatched message:\n%s", out)
	}
	in.stop()

	p := openData(t, in.dataDir)
	tn, err := p.Tenant(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		folder   string
		received time.Time
	}{
		"x first":   {"INBOX", time.Date(2023, 3, 14, 8, 30, 0, 0, time.UTC)},
		"long x":    {"INBOX", time.Date(2023, 3, 15, 10, 0, 0, 0, time.UTC)},
		"in mbox":   {"Projects", time.Date(2023, 3, 16, 11, 0, 0, 0, time.UTC)},
		"exported.": {"INBOX", old},
	}
	seen := map[string]bool{}
	login := "alice@acme.example"
	for _, mb := range tn.Readable(login) {
		folders, err := tn.Folders(login, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range folders {
			snap, err := tn.Snapshot(login, f.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, mid := range snap.MIDs {
				raw, err := tn.RawMessage(context.Background(), mid)
				if err != nil {
					t.Fatal(err)
				}
				info, err := tn.Message(mid)
				if err != nil {
					t.Fatal(err)
				}
				for key, w := range want {
					if !strings.Contains(string(raw), "Subject: "+key) && !(key == "exported." && strings.HasPrefix(string(raw), "X-Exported-By")) {
						continue
					}
					seen[key] = true
					if f.Name != w.folder || !info.Received.Equal(w.received) {
						t.Errorf("%q in %s received %v, want %s and %v", key, f.Name, info.Received.UTC(), w.folder, w.received)
					}
				}
			}
		}
	}
	for key := range want {
		if !seen[key] {
			t.Errorf("%q not archived for alice", key)
		}
	}
}

// TestAddressFieldEndingInBackslash: a message whose address field ends
// inside a comment, in a backslash, is archived and verifies clean. The
// address parser used to read past the end of such a field, and the
// message could not be archived at all.
func TestAddressFieldEndingInBackslash(t *testing.T) {
	in := startAcme(t)
	d := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	raw := []byte("From: partner@outside.example\r\nTo: alice@acme.example, a@(\\\r\nSubject: odd field\r\nDate: " +
		d.Format(time.RFC1123Z) + "\r\nMessage-ID: <odd@outside.example>\r\n\r\nbody\r\n")
	in.importDated("acme", "alice@acme.example", [][]byte{raw}, []time.Time{d})
	if st := tenantStats(t, in, "acme"); st.Messages != 1 {
		t.Fatalf("stats %+v, want 1 message", st)
	}
	if out := in.mustCLI("verify", "-tenant", "acme"); !strings.Contains(out, "verify: clean") {
		t.Fatalf("verify:\n%s", out)
	}
}
