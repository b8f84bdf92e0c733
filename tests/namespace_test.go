package tests

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOwnFolderNamedLikeSharedNamespace: alice imported folders called
// "Archive/bob@acme.example/INBOX", "Archive" and "Archive_" and may also
// read bob's archive mailbox, whose INBOX is "Archive/bob@acme.example/INBOX"
// in the shared namespace. Over IMAP (python3 imaplib) every one of them is
// listed once and opens its own messages: the shared prefix is reserved,
// and her own folders appear as "Archive_/...", "Archive_" and "Archive__".
func TestOwnFolderNamedLikeSharedNamespace(t *testing.T) {
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "alice-secret")
	in.mustCLI("user", "add", "-tenant", "acme", "bob@acme.example", "-password", "bob-secret")
	in.mustCLI("mailbox", "grant", "-tenant", "acme", "bob@acme.example", "alice@acme.example")
	dir := t.TempDir()
	put := func(mailbox, folder, id string) {
		p := filepath.Join(dir, id+".eml")
		if err := os.WriteFile(p, orderMessage(id, 1), 0o644); err != nil {
			t.Fatal(err)
		}
		in.mustCLI("import", "-quiet", "-tenant", "acme", "-mailbox", mailbox, "-folder", folder, p)
	}
	put("bob@acme.example", "INBOX", "bobs-inbox")
	put("alice@acme.example", "Archive/bob@acme.example/INBOX", "alices-copy")
	put("alice@acme.example", "Archive", "alices-archive")
	put("alice@acme.example", "Archive_", "alices-underscore")
	want := map[string]string{
		"Archive/bob@acme.example/INBOX":  "bobs-inbox",
		"Archive_/bob@acme.example/INBOX": "alices-copy",
		"Archive_":                        "alices-archive",
		"Archive__":                       "alices-underscore",
	}
	var got struct {
		List  []string
		Boxes map[string][]string
	}
	in.imaplib("alice@acme.example", "alice-secret", `
import re
typ, data = M.list('""', '*')
names = [re.search(rb'"/" (.*)$', d).group(1).decode().strip('"') for d in data]
boxes = {}
for box in sys.argv[5:]:
    typ, data = M.select('"' + box + '"', readonly=True)
    if typ != 'OK':
        boxes[box] = ['select: ' + typ]
        continue
    typ, data = M.uid('FETCH', '1:*', '(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
    boxes[box] = [re.search(rb'<([^@]+)@', d[1]).group(1).decode() for d in data if isinstance(d, tuple)]
print(json.dumps({'List': names, 'Boxes': boxes}))
`, &got, "Archive/bob@acme.example/INBOX", "Archive_/bob@acme.example/INBOX", "Archive_", "Archive__")
	count := map[string]int{}
	for _, n := range got.List {
		count[n]++
	}
	for box, id := range want {
		if count[box] != 1 {
			t.Errorf("LIST shows %q %d times, want once: %q", box, count[box], got.List)
		}
		if ids := got.Boxes[box]; len(ids) != 1 || ids[0] != id {
			t.Errorf("%s holds %q, want [%s]", box, ids, id)
		}
	}
}
