package backend

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/buntdb"
)

// wipeChildEnv names the data directory TestSummaryWipeChild opens, and
// wipeChildMID the message whose summary it replaces.
const (
	wipeChildEnv = "MAILVAULT_TEST_WIPE_DIR"
	wipeChildMID = "MAILVAULT_TEST_WIPE_MID"
)

// TestSummaryWipeChild is the process TestSummaryWipeKilled kills: it
// gives a message an older parser's summary, prints where that record is,
// and runs the summary pass, which stops for good right after the
// transaction that points the message at its new summary.
func TestSummaryWipeChild(t *testing.T) {
	dir := os.Getenv(wipeChildEnv)
	if dir == "" {
		t.Skip("run by TestSummaryWipeKilled")
	}
	mid, err := strconv.ParseUint(os.Getenv(wipeChildMID), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := Open(Options{DataDir: dir, Logger: log, CommitDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tn, err := p.Tenant(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	tn.summariesPointed = func() {
		fmt.Println("pointed")
		select {} // until killed
	}
	writeOldForm(t, tn, []uint64{mid})
	tn.mu.RLock()
	old := tn.msgs[mid-1].sumOff
	tn.mu.RUnlock()
	fmt.Printf("old %d\n", old)
	if tn.Reparse() != 1 {
		t.Fatal("the message's summary is not outdated")
	}
	time.Sleep(time.Hour) // until killed
}

// summaryCopies counts the records in summaries.log that open, with the
// tenant key, as a summary of mid.
func summaryCopies(t *testing.T, tn *Tenant, mid uint64) int {
	t.Helper()
	log, err := os.ReadFile(filepath.Join(tn.dir, "summaries.log"))
	if err != nil {
		t.Fatal(err)
	}
	aad := appendSummaryAAD(nil, tn.seal, tn.msgs[mid-1].sum)
	n := 0
	for off := 0; off+recHeaderLen <= len(log); {
		l := int(binary.LittleEndian.Uint32(log[off:]))
		end := off + recHeaderLen + l
		if end > len(log) {
			break
		}
		if _, err := tn.seal.Open(log[off+recHeaderLen:end], aad); err == nil {
			n++
		}
		off = end
	}
	return n
}

// recHeaderLen is the summary log's record header: length and CRC-32C.
const recHeaderLen = 8

// recordWiped tells whether the record at off of a stopped tenant's
// summaries.log holds only zeros.
func recordWiped(t *testing.T, dir string, off int64) bool {
	t.Helper()
	log, err := os.ReadFile(filepath.Join(dir, "tenants", "acme", "summaries.log"))
	if err != nil {
		t.Fatal(err)
	}
	if off+recHeaderLen > int64(len(log)) {
		t.Fatalf("no record at %d", off)
	}
	n := int64(binary.LittleEndian.Uint32(log[off:]))
	body := log[off+recHeaderLen : off+recHeaderLen+n]
	return n > 0 && bytes.Count(body, []byte{0}) == len(body)
}

// kill -9 between the transaction that points a message at its new
// summary and the wipe of the record it replaces: the next open wipes
// that record before serving, and a deletion of the message then leaves
// no summary of it readable anywhere in the log.
func TestSummaryWipeKilled(t *testing.T) {
	ctx := context.Background()
	f := newRetentionFixture(t)
	res, err := f.tn.Ingest(ctx, []byte(bareGroupMsg), Source{Mailbox: "alice@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	other := f.mail(t, "bob@acme.example", "alice@acme.example", "stays", date(2020, 5, 1), Source{Mailbox: "alice@acme.example"})
	mid := res.MID
	if err := f.p.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestSummaryWipeChild$")
	cmd.Env = append(os.Environ(), wipeChildEnv+"="+f.dir, wipeChildMID+"="+strconv.FormatUint(mid, 10))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	old := int64(-1)
	var seen []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if v, ok := strings.CutPrefix(sc.Text(), "old "); ok {
			old, _ = strconv.ParseInt(v, 10, 64)
		}
		if sc.Text() == "pointed" {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if old < 0 || seen[len(seen)-1] != "pointed" {
		t.Fatalf("the child did not reach the point between the transaction and the wipe:\n%s", strings.Join(seen, "\n"))
	}
	// Killed in the window: the replaced record is still there.
	if recordWiped(t, f.dir, old) {
		t.Fatalf("record at %d wiped before the kill", old)
	}

	f.open(t)
	defer func() { f.p.Close() }()
	f.tenant(t)
	if !recordWiped(t, f.dir, old) {
		t.Errorf("the replaced summary record at %d is still readable after the reopen", old)
	}
	if err := f.tn.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendKeys("wipe:*", func(k, v string) bool {
			t.Errorf("pending wipe %s=%s left after the open", k, v)
			return true
		})
	}); err != nil {
		t.Fatal(err)
	}
	if n := summaryCopies(t, f.tn, mid); n != 1 {
		t.Errorf("%d readable summaries of message %d, want its current one", n, mid)
	}
	if env, err := f.tn.Envelope(ctx, mid); err != nil || env.Subject != "Quarterly figures" {
		t.Errorf("envelope after the reopen: %+v %v", env, err)
	}

	f.policies(t, []Policy{{Name: "none"}})
	f.clock.Set(date(2027, 1, 1)) // after the message's Date
	f.indexed(t)
	req := DeleteRequest{Mailboxes: []string{"alice@acme.example"}, MIDs: []uint64{mid}}
	dry, err := f.tn.DryRun(ctx, req)
	if err != nil || dry.Placements != 1 {
		t.Fatalf("dry run %+v %v: want the one placement", dry, err)
	}
	if rep, err := f.tn.Delete(ctx, "carol@acme.example", req, dry.Token); err != nil || rep.Messages != 1 {
		t.Fatalf("delete %+v %v", rep, err)
	}
	if n := summaryCopies(t, f.tn, mid); n != 0 {
		t.Errorf("%d readable summaries of the deleted message %d", n, mid)
	}
	if n := summaryCopies(t, f.tn, other); n != 1 {
		t.Errorf("%d readable summaries of the message kept, want 1", n)
	}
	f.verifyClean(t)
}
