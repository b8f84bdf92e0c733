package backend

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/cputime"
	"github.com/mailvault/mailvault/mailgen"
	"github.com/mailvault/mailvault/mailparse"
)

// bareGroupMsg has what parsers before versions did not derive: bare LFs
// (in the message and in each part), address groups (one empty), and a
// Date field unlike its parsed time written out.
const bareGroupMsg = "From: Alice <alice@acme.example>\n" +
	"To: Project Team: bob@acme.example, \"Carol C.\" <carol@acme.example>;\n" +
	"Cc: undisclosed-recipients:;\n" +
	"Date: Thu, 3 Dec 2026 09:15:00 +0100 (CET)\n" +
	"Subject: Quarterly figures\nMIME-Version: 1.0\n" +
	"Content-Type: multipart/mixed; boundary=\"b1\"\n\n" +
	"--b1\nContent-Type: text/plain\n\nHello team,\nthe figures.\n" +
	"--b1\nContent-Type: text/csv\n\nregion,revenue\nnorth,120\n--b1--\n"

// presentation is what IMAP shows of a folder: per message its listing
// (sizes, envelope, header block, MIME tree), UIDs, the folder's size.
type presentation struct {
	list []ListedMessage
	uids []uint32
	size int64
}

func present(t *testing.T, tn *Tenant, folder uint64) presentation {
	t.Helper()
	snap, err := tn.Snapshot("alice@acme.example", folder)
	if err != nil {
		t.Fatal(err)
	}
	list, err := tn.ListHeads(context.Background(), snap.MIDs, true, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		if l.Err != nil {
			t.Fatalf("MID %d: %v", l.MID, l.Err)
		}
	}
	return presentation{list, snap.UIDs, snap.Size}
}

func samePresentation(t *testing.T, got, want presentation) {
	t.Helper()
	if !slices.Equal(got.uids, want.uids) || got.size != want.size {
		t.Fatalf("UIDs %v size %d, want %v size %d", got.uids, got.size, want.uids, want.size)
	}
	for i, w := range want.list {
		g := got.list[i]
		if g.MessageInfo != w.MessageInfo {
			t.Errorf("MID %d: %+v, want %+v", w.MID, g.MessageInfo, w.MessageInfo)
		}
		if !sameEnvelope(g.Envelope, w.Envelope) {
			t.Errorf("MID %d: envelope %+v, want %+v", w.MID, g.Envelope, w.Envelope)
		}
		if !reflect.DeepEqual(g.Head, w.Head) {
			t.Errorf("MID %d: head differs", w.MID)
		}
	}
}

// waitDerived waits until no summary of an older parser is left.
func waitDerived(t *testing.T, tn *Tenant) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); tn.Stats().SummariesOutdated > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d summaries still outdated", tn.Stats().SummariesOutdated)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func verifyClean(t *testing.T, tn *Tenant) {
	t.Helper()
	rep, err := tn.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Errorf("verify: %+v", rep.Problems)
	}
}

// A tenant whose summaries an older parser wrote is, once opened, shown
// exactly as if its messages had been archived now: the pass at open
// derives every summary again; UIDs, flags, the chain and verify are kept.
// One read before the pass (Envelope) derives its message at once.
func TestReparseAtOpen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	p := openProvider(t, dir)
	tn := newTenant(t, p, "acme", "acme.example")
	if _, err := tn.Ingest(ctx, []byte(bareGroupMsg), Source{Mailbox: "alice@acme.example"}); err != nil {
		t.Fatal(err)
	}
	g := mailgen.New(7, []string{"acme.example"}, 5)
	ingestN(t, tn, g, 30)
	if _, err := tn.Ingest(ctx, []byte(strings.ReplaceAll(bareGroupMsg, "Quarterly", "Monthly")), Source{Mailbox: "alice@acme.example"}); err != nil {
		t.Fatal(err)
	}
	inbox := folderID(t, tn, "alice@acme.example", FolderInbox)
	if _, err := tn.StoreFlags(ctx, "alice@acme.example", inbox, []uint32{1}, FlagsAdd, []string{`\Flagged`}); err != nil {
		t.Fatal(err)
	}
	fresh := present(t, tn, inbox)
	if fresh.list[0].IMAPSize == fresh.list[0].Size || fresh.list[0].Envelope.To[0].Group != mailparse.GroupStart {
		t.Fatalf("the bare-LF group message is not what the test needs: %+v", fresh.list[0])
	}
	chain := tn.Stats().ChainTip

	var mids []uint64
	for _, l := range fresh.list {
		mids = append(mids, l.MID)
	}
	writeOldForm(t, tn, mids)
	last := fresh.list[len(fresh.list)-1]
	if n, info := tn.Stats().SummariesOutdated, tn.msgs[last.MID-1]; n != 32 || info.bareLFs != 0 || info.parser != 0 {
		t.Fatalf("%d summaries outdated, want 32; last message %+v", n, info)
	}
	// Read before the pass: derived at once; a listing stores it too.
	env, err := tn.Envelope(ctx, last.MID)
	if err != nil || !sameEnvelope(env, last.Envelope) {
		t.Fatalf("envelope read before the pass: %+v (%v), want %+v", env, err, last.Envelope)
	}
	listed, err := tn.ListHeads(ctx, []uint64{last.MID}, true, true)
	if err != nil || listed[0].MessageInfo != last.MessageInfo || !reflect.DeepEqual(listed[0].Head, last.Head) {
		t.Fatalf("listed before the pass: %+v (%v), want %+v", listed[0], err, last)
	}
	if info, _ := tn.Message(last.MID); info != last.MessageInfo || tn.Stats().SummariesOutdated != 31 {
		t.Fatalf("after a listing: %+v, want %+v; %d outdated", info, last.MessageInfo, tn.Stats().SummariesOutdated)
	}
	p.Close()

	p = openProvider(t, dir)
	defer p.Close()
	tn, err = p.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	waitDerived(t, tn)
	samePresentation(t, present(t, tn, inbox), fresh)
	flags, err := tn.FlagOverlay("alice@acme.example", inbox)
	if err != nil || !slices.Contains(flags[1], `\Flagged`) {
		t.Errorf("flags of UID 1: %v (%v)", flags[1], err)
	}
	if got := tn.Stats().ChainTip; got != chain {
		t.Errorf("chain tip %s, was %s", got, chain)
	}
	verifyClean(t, tn)
}

// reparseChildEnv names the data directory TestReparseChild opens.
const reparseChildEnv = "MAILVAULT_TEST_REPARSE_DIR"

// TestReparseChild is the process TestReparseKilled kills: it opens the
// tenant, whose pass starts, logging each batch to stdout.
func TestReparseChild(t *testing.T) {
	dir := os.Getenv(reparseChildEnv)
	if dir == "" {
		t.Skip("run by TestReparseKilled")
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := Open(Options{DataDir: dir, Logger: log, CommitDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Tenant(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Hour) // until killed
}

// outdatedOnDisk counts the message records of a stopped tenant that an
// older parser's summary goes with.
func outdatedOnDisk(t *testing.T, dir string) (left, total int) {
	t.Helper()
	db, err := buntdb.Open(filepath.Join(dir, "tenants", "acme", "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *buntdb.Tx) error {
		return tx.AscendKeys("msg:*", func(k, v string) bool {
			m, err := decodeMsg(v)
			if err != nil {
				t.Errorf("%s: %v", k, err)
			}
			total++
			if outdated(&m) {
				left++
			}
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return left, total
}

// kill -9 in the middle of the pass loses nothing: the batches stored stay
// stored, the next open derives the rest, and the tenant is then shown as
// if archived now, with verify clean.
func TestReparseKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("a few thousand messages")
	}
	dir := t.TempDir()
	ctx := context.Background()
	p := openProvider(t, dir)
	tn := newTenant(t, p, "acme", "acme.example")
	g := mailgen.New(8, []string{"acme.example"}, 5)
	g.AvgSize = 2 << 10
	const n = 3000
	raws := make(chan []byte)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for raw := range raws {
				if _, err := tn.Ingest(ctx, raw, Source{Mailbox: "alice@acme.example"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for range n {
		raws <- g.Next().Raw
	}
	close(raws)
	wg.Wait()
	if _, err := tn.Ingest(ctx, []byte(bareGroupMsg), Source{Mailbox: "alice@acme.example"}); err != nil {
		t.Fatal(err)
	}
	inbox := folderID(t, tn, "alice@acme.example", FolderInbox)
	fresh := present(t, tn, inbox)
	var mids []uint64
	for _, l := range fresh.list {
		mids = append(mids, l.MID)
	}
	writeOldForm(t, tn, mids)
	p.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestReparseChild$")
	cmd.Env = append(os.Environ(), reparseChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var seen []string
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if strings.Contains(sc.Text(), "summary pass batch") {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	left, total := outdatedOnDisk(t, dir)
	if left == 0 || left == total {
		t.Fatalf("killed with %d of %d summaries outdated: not in the middle of the pass\n%s", left, total, strings.Join(seen, "\n"))
	}
	t.Logf("killed with %d of %d summaries left", left, total)

	p = openProvider(t, dir)
	defer p.Close()
	tn, err = p.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	waitDerived(t, tn)
	samePresentation(t, present(t, tn, inbox), fresh)
	verifyClean(t, tn)
}

// BenchmarkReparse measures the summary pass over a tenant of
// MAILVAULT_BENCH_REPARSE_MESSAGES generated messages (default 20,000,
// about 4 KiB each) whose summaries are all in the older form: messages
// per second and CPU time per message (the pass takes one core), and the
// latency of messages archived one at a time beside it and without it.
func BenchmarkReparse(b *testing.B) {
	n := envInt("MAILVAULT_BENCH_REPARSE_MESSAGES", 20000)
	p := openProvider(b, b.TempDir())
	defer p.Close()
	tn := newTenant(b, p, "acme", "acme.example")
	ctx := context.Background()
	g := mailgen.New(1, []string{"acme.example"}, 20)
	g.AvgSize = 4 << 10
	msgs := make(chan []byte, 64)
	go func() {
		for range n {
			msgs <- g.Next().Raw
		}
		close(msgs)
	}()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for raw := range msgs {
				if _, err := tn.Ingest(ctx, raw, Source{}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	mids := make([]uint64, n)
	for i := range mids {
		mids[i] = uint64(i + 1)
	}
	// Intake beside the pass: one message at a time, as an SMTP journal
	// delivers, its latency with and without the pass running.
	ingestOne := func() time.Duration {
		start := time.Now()
		if _, err := tn.Ingest(ctx, g.Next().Raw, Source{}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var alone time.Duration
	const probes = 100
	for range probes {
		alone += ingestOne()
	}
	pass := func(b *testing.B, withIntake bool) {
		var took, cpu, beside time.Duration
		var besideN int
		for b.Loop() {
			b.StopTimer()
			writeOldForm(b, tn, mids)
			stop := make(chan struct{})
			intake := make(chan struct{})
			go func() {
				defer close(intake)
				for withIntake {
					select {
					case <-stop:
						return
					default:
					}
					beside += ingestOne()
					besideN++
				}
			}()
			b.StartTimer()
			start, cpu0 := time.Now(), cputime.Process()
			tn.reparsePass(ctx)
			took += time.Since(start)
			cpu += cputime.Process() - cpu0
			close(stop)
			<-intake
			if left := tn.outdatedSummaries(); left != 0 {
				b.Fatalf("%d summaries left", left)
			}
		}
		done := float64(b.N * n)
		b.ReportMetric(done/took.Seconds(), "messages/s")
		if !withIntake {
			b.ReportMetric(float64(cpu.Microseconds())/done, "cpu-µs/message")
			return
		}
		b.ReportMetric(float64(alone.Microseconds())/probes/1000, "ms/ingest-alone")
		b.ReportMetric(float64(beside.Microseconds())/float64(max(besideN, 1))/1000, "ms/ingest-beside")
	}
	b.Run("alone", func(b *testing.B) { pass(b, false) })
	b.Run("intake", func(b *testing.B) { pass(b, true) })
}
