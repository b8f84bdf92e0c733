package tests

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testdata/reparse/archive is a data directory written by mailvault before
// its parser had versions (before bare-LF counts, address groups and the
// Date field as written): tenant acme, whose reader alice@acme.example has
// the three messages of testdata/reparse/messages in INBOX, imported with
// `mailvault import -mailbox alice@acme.example -folder INBOX`. Its master
// key exists only for this test.

// copyArchive copies the older data directory into a fresh one.
func copyArchive(t *testing.T) string {
	t.Helper()
	src := filepath.Join("testdata", "reparse", "archive")
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// fetchAll is an imaplib script printing, for every message of INBOX, its
// FETCH response without the sequence number, and the length of BODY[].
const fetchAll = `
M.select('INBOX', readonly=True)
typ, data = M.fetch('1:*', '(RFC822.SIZE ENVELOPE BODYSTRUCTURE)')
items = [l.split(' ', 1)[1] for l in text(data)]
typ, data = M.fetch('1:*', '(BODY.PEEK[])')
bodies = [len(d[1]) for d in data if isinstance(d, tuple)]
print(json.dumps({'items': items, 'bodies': bodies}))
`

var rfc822Size = regexp.MustCompile(`RFC822\.SIZE (\d+)`)

type fetched struct {
	Items  []string `json:"items"`
	Bodies []int    `json:"bodies"`
}

// Messages archived by the older version are presented over IMAP exactly
// like the same messages archived now (RFC822.SIZE and BODYSTRUCTURE sizes
// of the CRLF form, ENVELOPE groups, source routes and the Date as
// written), once the pass at the tenant's open has derived their summaries
// again; verify stays clean.
func TestReparseOlderArchive(t *testing.T) {
	in := newInstanceAt(t, copyArchive(t))
	in.start()
	c := in.client()
	var stats struct {
		Messages          int `json:"messages"`
		SummariesOutdated int `json:"summaries_outdated"`
	}
	for deadline := time.Now().Add(time.Minute); ; {
		if err := c.Do("GET", "/api/v1/tenants/acme/stats", nil, &stats); err != nil {
			t.Fatal(err)
		}
		if stats.SummariesOutdated == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d summaries still outdated\n%s", stats.SummariesOutdated, in.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if stats.Messages != 3 || !strings.Contains(in.logs(), `msg="summary pass finished" tenant=acme derived=3 failed=0`) {
		t.Fatalf("%d messages; the pass did not derive the three summaries:\n%s", stats.Messages, in.logs())
	}
	waitMetric(t, "http://"+in.HTTP+"/metrics", "mailvault_summaries_outdated", 0, "tenant", "acme")

	// The same messages archived now, in a tenant of their own.
	msgs, err := filepath.Glob(filepath.Join("testdata", "reparse", "messages", "*.eml"))
	if err != nil || len(msgs) != 3 {
		t.Fatalf("messages: %v %v", msgs, err)
	}
	in.mustCLI("tenant", "create", "fresh", "-domain", "fresh.example")
	in.mustCLI("user", "add", "-tenant", "fresh", "alice@fresh.example", "-password", "fresh-reader-1")
	in.mustCLI(append([]string{"import", "-tenant", "fresh", "-mailbox", "alice@fresh.example", "-folder", "INBOX", "-quiet"}, msgs...)...)

	var old, fresh fetched
	in.imaplib("alice@acme.example", "archive-reader-1", fetchAll, &old)
	in.imaplib("alice@fresh.example", "fresh-reader-1", fetchAll, &fresh)
	// The older import may have given the UIDs in another order.
	slices.Sort(old.Items)
	slices.Sort(fresh.Items)
	if !slices.Equal(old.Items, fresh.Items) {
		t.Errorf("older archive:\n%s\narchived now:\n%s", strings.Join(old.Items, "\n"), strings.Join(fresh.Items, "\n"))
	}
	all := strings.Join(old.Items, "\n")
	for _, want := range []string{
		`(NIL NIL "Project Team" NIL)`, // a group's start
		`(NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)`,
		`"@relay.acme.example"`,                                    // a source route
		`"Thu, 3 Dec 2026 09:15:00 +0100 (CET)"`,                   // the Date as written
		`RFC822.SIZE 553 `,                                         // 531 bytes, 22 bare LFs
		`("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 38 2 `, // 37 bytes, 1 bare LF
	} {
		if !strings.Contains(all, want) {
			t.Errorf("older archive lacks %s:\n%s", want, all)
		}
	}
	// Each message's bytes as served are as long as RFC822.SIZE says.
	for _, item := range old.Items {
		m := rfc822Size.FindStringSubmatch(item)
		size := -1
		if m != nil {
			size, _ = strconv.Atoi(m[1])
		}
		if !slices.Contains(old.Bodies, size) {
			t.Errorf("RFC822.SIZE %d, bodies served %v", size, old.Bodies)
		}
	}
	if out := in.mustCLI("verify", "-tenant", "acme"); !strings.Contains(out, "verify: clean") {
		t.Errorf("verify after the pass:\n%s", out)
	}
	if out := in.mustCLI("reparse", "-tenant", "acme"); !strings.Contains(out, "every summary is of the current parser") {
		t.Errorf("reparse after the pass: %s", out)
	}
}
