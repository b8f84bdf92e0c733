package index

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// corpusDir finds the shared real-world messages beside the module root.
func corpusDir(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "shared", "corpus", "messages")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no corpus: %v", err)
	}
	return dir
}

// parseRaw splits a message into unfolded header fields and the raw body,
// leniently: the corpus is full of malformed messages, and the index must
// take whatever the parser upstream makes of them.
func parseRaw(raw []byte) (hs []HeaderField, body string) {
	head, rest := raw, []byte(nil)
	for _, sep := range [][]byte{[]byte("\r\n\r\n"), []byte("\n\n")} {
		if i := bytes.Index(raw, sep); i >= 0 && (rest == nil || i < len(head)) {
			head, rest = raw[:i], raw[i+len(sep):]
		}
	}
	for _, line := range strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n") {
		if (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && len(hs) > 0 {
			hs[len(hs)-1].Value += " " + strings.TrimSpace(line)
			continue
		}
		if name, value, ok := strings.Cut(line, ":"); ok {
			hs = append(hs, HeaderField{strings.TrimSpace(name), strings.TrimSpace(value)})
		}
	}
	return hs, string(rest)
}

// TestCorpus indexes every real-world message and finds each by its
// Message-ID, its subject and the start of its body.
func TestCorpus(t *testing.T) {
	dir := corpusDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("corpus: %v %d files", err, len(files))
	}
	var docs []Doc
	for i, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		hs, body := parseRaw(raw)
		d := Doc{
			MID:      uint64(i + 1),
			Members:  []Member{{Folder: 7, UID: uint32(i + 1)}},
			Body:     truncate(body, 64<<10), // raw base64 parts stand in for text here: keep them small
			Headers:  hs,
			Size:     int64(len(raw)),
			Received: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour),
		}
		for _, h := range hs {
			switch strings.ToLower(h.Name) {
			case "subject":
				d.Subject = h.Value
			case "message-id":
				d.MessageID = h.Value
			case "from":
				d.From = []Address{{Email: h.Value}}
			}
		}
		docs = append(docs, d)
	}
	ix, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ctx := context.Background()
	for start := 0; start < len(docs); start += 300 {
		if err := ix.Put(ctx, docs[start:min(start+300, len(docs))], uint64(start)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := ix.Count(); err != nil || n != uint64(len(docs)) {
		t.Fatalf("count %d %v, want %d", n, err, len(docs))
	}
	found := 0
	for i := range docs {
		d := &docs[i]
		uid := uint32(d.MID)
		var qs []Query
		if len(msgIDs(d.MessageID)) > 0 {
			qs = append(qs, Header("Message-ID", d.MessageID))
		}
		if d.Subject != "" {
			qs = append(qs, Text(FieldSubject, d.Subject), Text(FieldText, d.Subject))
		}
		if ws := strings.Fields(d.Body); len(ws) > 0 {
			qs = append(qs, Text(FieldBody, strings.Join(ws[:min(5, len(ws))], " ")))
		}
		for _, q := range qs {
			uids, err := ix.SearchFolder(ctx, 7, q)
			if err != nil {
				t.Fatalf("%s: %+v: %v", files[i], q, err)
			}
			if !slices.Contains(uids, uid) {
				t.Errorf("%s not found by %+v", filepath.Base(files[i]), q)
			}
			found++
		}
	}
	if found < len(docs) {
		t.Errorf("only %d searches for %d messages", found, len(docs))
	}
}
