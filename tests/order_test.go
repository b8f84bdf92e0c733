package tests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/mailfile"
)

// orderMessage is a message with a Message-ID that names its place in the
// source; every fifth one carries a large body, so that concurrent ingests
// finish out of order.
func orderMessage(id string, i int) []byte {
	body := "short body\r\n"
	if i%5 == 0 {
		body = strings.Repeat("a long line of text that takes a while to parse and seal\r\n", 8000)
	}
	return []byte(fmt.Sprintf("From: bob@partner.example\r\nTo: alice@acme.example\r\nSubject: %s\r\nMessage-ID: <%s@order.example>\r\nDate: Tue, 14 Mar 2023 09:30:00 +0100\r\n\r\n%s", id, id, body))
}

// TestImportKeepsSourceOrder imports an mbox, a Maildir and a directory of
// .eml files with the CLI and reads the Message-IDs back over IMAP (python3
// imaplib, UID FETCH): in every folder the UIDs follow the source order
// (mbox order, Maildir and .eml files sorted by name), although the server
// ingests many messages at once.
func TestImportKeepsSourceOrder(t *testing.T) {
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	src := t.TempDir()
	want := map[string][]string{}

	var mbox bytes.Buffer
	for i := 0; i < 200; i++ {
		id := fmt.Sprintf("mbox-%03d", i)
		if err := mailfile.WriteMboxrd(&mbox, orderMessage(id, i), "bob@partner.example", time.Date(2023, 3, 14, 8, 30, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		want["Letters"] = append(want["Letters"], id)
	}
	if err := os.WriteFile(filepath.Join(src, "Letters.mbox"), mbox.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	md := filepath.Join(src, "md")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Written in reverse, read in name order; cur and new interleave.
	var names []string
	for i := 99; i >= 0; i-- {
		sub := []string{"cur", "new"}[i%2]
		name := fmt.Sprintf("%d.M%dP7.host", 1700000000+i*37, i)
		if sub == "cur" {
			name += ":2,S"
		}
		id := "maildir-" + name[:10]
		if err := os.WriteFile(filepath.Join(md, sub, name), orderMessage(id, i), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	for _, n := range names {
		want["md"] = append(want["md"], "maildir-"+n[:10])
	}
	eml := filepath.Join(src, "eml")
	if err := os.MkdirAll(eml, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 60; i++ {
		id := fmt.Sprintf("eml-%03d", i)
		if err := os.WriteFile(filepath.Join(eml, id+".eml"), orderMessage(id, i), 0o644); err != nil {
			t.Fatal(err)
		}
		want["eml"] = append(want["eml"], id)
	}

	out := in.mustCLI("import", "-quiet", "-tenant", "acme", "-mailbox", "alice@acme.example", src)
	if !strings.Contains(out, "360 archived") {
		t.Fatalf("import:\n%s", out)
	}
	var got map[string][]string
	in.imaplib("alice@acme.example", "alice-secret", `
import re
out = {}
for box in sys.argv[5:]:
    M.select(box, readonly=True)
    typ, data = M.uid('FETCH', '1:*', '(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
    pairs = []
    for d in data:
        if isinstance(d, tuple):
            uid = int(re.search(rb'UID (\d+)', d[0]).group(1))
            mid = re.search(rb'<([^@]+)@', d[1]).group(1).decode()
            pairs.append((uid, mid))
    out[box] = [m for _, m in sorted(pairs)]
print(json.dumps(out))
`, &got, "Letters", "md", "eml")
	for box, ids := range want {
		if !slices.Equal(got[box], ids) {
			first := 0
			for first < min(len(ids), len(got[box])) && got[box][first] == ids[first] {
				first++
			}
			t.Errorf("%s: %d messages by UID, want %d in source order; first difference at position %d: got %v", box, len(got[box]), len(ids), first, got[box][first:min(first+5, len(got[box]))])
		}
	}
}
