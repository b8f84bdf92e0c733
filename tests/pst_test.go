package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportPSTBroken: a file named .pst that readpst cannot open fails
// the import with readpst's own words, and nothing is archived.
func TestImportPSTBroken(t *testing.T) {
	if _, err := exec.LookPath("readpst"); err != nil {
		t.Skip("readpst is not installed (Debian package pst-utils)")
	}
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "bob@acme.example", "-password", "bob-secret-1")
	bad := filepath.Join(t.TempDir(), "old.pst")
	writeTestFile(t, bad, "From: not a PST\r\n\r\nreally not\r\n")
	out, err := in.cli("import", "-tenant", "acme", "-mailbox", "bob@acme.example", bad)
	if err == nil || !strings.Contains(out, "readpst") || !strings.Contains(out, "Error opening File") {
		t.Fatalf("import of a broken PST: %v\n%s", err, out)
	}
	if n := len(archivedFolders(t, in)["INBOX"]); n != 0 {
		t.Fatalf("%d messages archived from a broken PST", n)
	}
}

// TestImportPST imports the PST or OST file named by MAILVAULT_TEST_PST
// (none is shipped: Outlook files cannot be generated here) and checks
// every folder readpst converts holds as many messages in the archive.
func TestImportPST(t *testing.T) {
	file := os.Getenv("MAILVAULT_TEST_PST")
	if file == "" {
		t.Skip("set MAILVAULT_TEST_PST to an Outlook PST or OST file")
	}
	if _, err := exec.LookPath("readpst"); err != nil {
		t.Skip("readpst is not installed (Debian package pst-utils)")
	}
	// readpst's own conversion, counted per folder.
	ref := t.TempDir()
	if out, err := exec.Command("readpst", "-e", "-b", "-8", "-D", "-o", ref, file).CombinedOutput(); err != nil {
		t.Fatalf("readpst: %v\n%s", err, out)
	}
	entries, _ := os.ReadDir(ref)
	root := ref
	if len(entries) == 1 && entries[0].IsDir() {
		root = filepath.Join(ref, entries[0].Name())
	}
	want := map[string]int{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && strings.HasSuffix(p, ".eml") {
			rel, _ := filepath.Rel(root, filepath.Dir(p))
			if rel == "." {
				rel = "INBOX"
			}
			want[filepath.ToSlash(rel)]++
		}
		return nil
	})
	in := newInstance(t)
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "bob@acme.example", "-password", "bob-secret-1")
	out := in.mustCLI("import", "-tenant", "acme", "-mailbox", "bob@acme.example", "-quiet", file)
	t.Logf("%s", out)
	if !strings.Contains(out, "readpst") {
		t.Errorf("readpst's report is not printed:\n%s", out)
	}
	var got map[string]int
	in.imaplib("bob@acme.example", "bob-secret-1", `
res = {}
typ, boxes = M.list()
for b in boxes:
    name = b.decode().split(' "/" ')[-1].strip('"')
    typ, data = M.select('"' + name + '"', readonly=True)
    if typ == 'OK':
        res[name] = int(data[0])
print(json.dumps(res))
`, &got)
	for f, n := range want {
		if got[f] < n {
			t.Errorf("folder %s: %d messages archived, readpst converted %d (archive: %v)", f, got[f], n, got)
		}
	}
}
