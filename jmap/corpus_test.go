package jmap

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mailvault/mailvault/backend"
)

// corpusDir is the real-world corpus beside the repository, if present.
func corpusDir(t testing.TB) string {
	d := filepath.Join("..", "..", "shared", "corpus", "messages")
	if _, err := os.Stat(d); err != nil {
		t.Skip("real-world corpus not present")
	}
	return d
}

// TestCorpus serves every real-world message through JMAP: every property,
// every body value, header forms, threads and blobs must be answered (no
// serverFail), and the message blob must be the archived bytes.
func TestCorpus(t *testing.T) {
	dir := corpusDir(t)
	if testing.Short() {
		t.Skip("corpus test skipped in -short mode")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil || len(files) == 0 {
		t.Skipf("no messages in %s", dir)
	}
	f := newFixture(t, 0)
	raws := map[uint64][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan string)
	for range 16 { // concurrent ingest shares commits
		wg.Go(func() {
			for file := range work {
				b, err := os.ReadFile(file)
				if err != nil {
					t.Error(err)
					continue
				}
				res, err := f.acme.Ingest(context.Background(), b, backend.Source{Mailbox: alice, Folder: "Corpus"})
				if err != nil {
					t.Error(err)
					continue
				}
				mu.Lock()
				raws[res.MID] = b
				mu.Unlock()
			}
		})
	}
	for _, file := range files {
		work <- file
	}
	close(work)
	wg.Wait()
	f.waitIndexed(t)
	c := f.client(t, alice)
	acct := f.account(t, f.acme, alice)
	corpus, info := f.folder(t, f.acme, alice, alice, "Corpus")
	q := c.api(call{"Email/query", map[string]any{"accountId": acct, "filter": map[string]any{"inMailbox": corpus}, "calculateTotal": true}, "q"})["q"].ok(t)
	all := strs(t, q["ids"])
	if len(all) != len(raws) || num(q["total"]) != info.Messages {
		t.Fatalf("query: %d ids, %d messages, folder %d", len(all), len(raws), info.Messages)
	}
	props := append(append([]string(nil), emailProperties...), "header:Subject:asText", "header:From:asAddresses:all",
		"header:To:asGroupedAddresses", "header:References:asMessageIds", "header:Date:asDate", "header:List-Unsubscribe:asURLs:all")
	// Each address property is its header form (RFC 8621 4.1.2.3): one
	// parser reads both.
	addressProps := map[string]string{"from": "From", "sender": "Sender", "replyTo": "Reply-To", "to": "To", "cc": "Cc", "bcc": "Bcc"}
	for _, h := range addressProps {
		props = append(props, "header:"+h+":asAddresses")
	}
	differ := 0
	bodyProps := append(append([]string(nil), bodyPartProperties...), "header:Content-Type:asText")
	threads := map[string]bool{}
	for start := 0; start < len(all); start += 100 {
		batch := all[start:min(start+100, len(all))]
		r := c.api(call{"Email/get", map[string]any{"accountId": acct, "ids": batch, "properties": props, "bodyProperties": bodyProps,
			"fetchAllBodyValues": true}, "g"})["g"].ok(t)
		got := list(t, r)
		if len(got) != len(batch) {
			t.Fatalf("Email/get: %d of %d", len(got), len(batch))
		}
		for _, e := range got {
			mid, _ := parseID('M', e["id"].(string))
			if num(e["size"]) != len(raws[mid]) {
				t.Errorf("%s: size %v, file %d", e["id"], e["size"], len(raws[mid]))
			}
			for _, k := range props {
				if _, ok := e[k]; !ok {
					t.Errorf("%s lacks %s", e["id"], k)
				}
			}
			for prop, h := range addressProps {
				if form := e["header:"+h+":asAddresses"]; !jsonEq(e[prop], form) {
					differ++
					t.Errorf("%s: %s %s, header:%s:asAddresses %s", e["id"], prop, mustJSON(e[prop]), h, mustJSON(form))
				}
			}
			threads[e["threadId"].(string)] = true
		}
	}
	var tids []string
	for id := range threads {
		tids = append(tids, id)
	}
	for start := 0; start < len(tids); start += 200 {
		r := c.api(call{"Thread/get", map[string]any{"accountId": acct, "ids": tids[start:min(start+200, len(tids))]}, "t"})["t"].ok(t)
		if n := len(strs(t, r["notFound"])); n != 0 {
			t.Errorf("%d threads not found", n)
		}
	}
	for mid, raw := range raws {
		r, b := c.do("GET", fmt.Sprintf("%s%s/%s/m.eml?type=message/rfc822", downloadPrefix, acct, blobID(mid)), nil)
		if r.StatusCode != http.StatusOK || !bytes.Equal(b, raw) {
			t.Errorf("download %d: %d, %d of %d bytes", mid, r.StatusCode, len(b), len(raw))
		}
	}
	sn := c.api(call{"SearchSnippet/get", map[string]any{"accountId": acct, "filter": map[string]any{"text": "the"}, "emailIds": all[:min(50, len(all))]}, "s"})["s"].ok(t)
	if len(list(t, sn)) != min(50, len(all)) {
		t.Errorf("snippets: %v", sn["notFound"])
	}
	t.Logf("%d messages, %d threads, %d address properties differ from their header forms", len(raws), len(threads), differ)
}
