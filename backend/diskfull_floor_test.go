package backend

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailvault/mailvault/index"
	"github.com/mailvault/mailvault/store"
)

// smallDisk mounts a tmpfs of size MiB, or skips without root.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

const (
	testIndexFloor  = 16 << 20
	testIntakeFloor = 6 << 20
)

func openFloorProvider(t *testing.T, dir string) *Provider {
	t.Helper()
	p, err := Open(Options{DataDir: dir, Logger: testLogger(t), CommitDelay: time.Millisecond,
		Disk: &DiskLimits{IndexMinFree: testIndexFloor, IntakeMinFree: testIntakeFloor}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// floorMessage is message n, about size bytes of words from a vocabulary
// of 20,000, with a word of its own to search for.
func floorMessage(n, size int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	b := fmt.Appendf(make([]byte, 0, size+100), "From: bob@other.example\r\nTo: alice@acme.example\r\n"+
		"Subject: report uniq%dq\r\nMessage-ID: <%d@other.example>\r\n\r\n", n, n)
	const hex = "0123456789abcdef"
	for line := 0; len(b) < size; line++ {
		w := r.Uint32() % 20000
		b = append(b, 'w', hex[w>>12&15], hex[w>>8&15], hex[w>>4&15], hex[w&15], ' ')
		if line%10 == 9 {
			b = append(b, '\r', '\n')
		}
	}
	return append(b, '\r', '\n')
}

func freeSpace(t *testing.T, dir string) int64 {
	t.Helper()
	sp, err := store.StatDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	return sp.Free
}

// fill writes a filler file until free space is down to leave bytes.
func fill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 256<<10)
	for freeSpace(t, dir) > leave+int64(len(chunk)) {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	return path
}

// TestDiskFullArchiveFirst fills the disk with a filler file while
// messages arrive: intake refuses with a disk-full error (SMTP 452) while
// the reserve is still there, so audit entries are still written; once the
// filler is gone intake runs and keeps running, as the index does not take
// the space back first; every acknowledged message is byte-exact, and
// searchable once the index has caught up.
func TestDiskFullArchiveFirst(t *testing.T) {
	dir := smallDisk(t, 192)
	p := openFloorProvider(t, dir)
	tn := newTenant(t, p, "acme", "acme.example")
	ctx := context.Background()

	var (
		mu      sync.Mutex
		acked   = map[uint64][]byte{}
		refused int
		next    int
		other   error
	)
	send := func(size int) error {
		mu.Lock()
		next++
		n := next
		mu.Unlock()
		m := floorMessage(n, size)
		res, err := tn.Ingest(ctx, m, Source{})
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			acked[res.MID] = m
		case errors.Is(err, syscall.ENOSPC):
			refused++
		default:
			other = err
		}
		return err
	}
	// An index far behind the archive, as after a reindex or a long lag.
	backlog := 1000
	if raceEnabled {
		backlog = 200
	}
	for range backlog {
		if err := send(40 << 10); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "tenants", "acme", "index")); err != nil {
		t.Fatal(err)
	}
	p = openFloorProvider(t, dir)
	var err error
	if tn, err = p.Tenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					send(40 << 10)
				}
			}
		})
	}
	// The filler leaves less than the intake reserve.
	filler := fill(t, dir, testIntakeFloor/2)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		r := refused
		mu.Unlock()
		if r >= 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("intake never refused on a full disk (%d refused)", r)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if other != nil {
		t.Fatalf("ingest on a full disk failed other than as a full disk: %v", other)
	}
	// Small messages would squeeze into the last bytes; the reserve keeps
	// them out, for what must still be written.
	for i := 0; i < 300; i++ {
		send(200)
	}
	err = send(40 << 10)
	var full *DiskFullError
	if !errors.As(err, &full) {
		t.Fatalf("ingest below the reserve: %v, want a *DiskFullError", err)
	}
	t.Logf("intake refused with %d MiB free: %v (%d acknowledged)", freeSpace(t, dir)>>20, err, len(acked))
	// What a compliance officer does meanwhile is still audited.
	const audits = 100
	for i := range audits {
		tn.Audit(ctx, "officer@acme.example", "export", fmt.Sprintf("entry %d written while intake refuses", i))
	}

	// Free part of the filler. The index may catch up, but only down to
	// its own floor: what lies between the floors stays for the archive.
	fi, err := os.Stat(filler)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filler, fi.Size()-(testIndexFloor+4<<20)); err != nil {
		t.Fatal(err)
	}
	freed := freeSpace(t, dir)
	// Before, the index took all of it back within 20 seconds.
	time.Sleep(20 * time.Second)
	t.Logf("%d MiB freed, %d MiB free 20 s later", freed>>20, freeSpace(t, dir)>>20)
	room := int64(testIndexFloor-testIntakeFloor) * 3 / 4
	for sent := int64(0); sent < room; sent += 40 << 10 {
		if err := send(40 << 10); err != nil {
			t.Fatalf("intake refused again after the filler was freed (%d MiB freed, %d MiB of messages sent, %d MiB free now): %v",
				freed>>20, sent>>20, freeSpace(t, dir)>>20, err)
		}
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}

	check := func(tn *Tenant) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		if err := tn.WaitIndexed(wctx); err != nil {
			t.Fatalf("index did not catch up: %v (%+v)", err, tn.Stats())
		}
		var folders []uint64
		tn.mu.RLock()
		for id := range tn.folders {
			folders = append(folders, id)
		}
		tn.mu.RUnlock()
		for mid, raw := range acked {
			got, err := tn.RawMessage(ctx, mid)
			if err != nil || string(got) != string(raw) {
				t.Fatalf("acknowledged message %d damaged: %v", mid, err)
			}
			word := strings.Fields(strings.SplitN(string(raw), "Subject: report ", 2)[1])[0]
			mids, _, err := tn.ix.Find(ctx, folders, index.Text(index.FieldSubject, word), nil, 0, -1)
			if err != nil || len(mids) != 1 || mids[0] != mid {
				t.Fatalf("message %d: search %q finds %v, %v", mid, word, mids, err)
			}
		}
		log, err := tn.AuditLog(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, e := range log {
			if e.Action == "export" && strings.HasSuffix(e.Detail, " written while intake refuses") {
				found++
			}
		}
		if found != audits {
			t.Fatalf("%d of %d audit entries written while intake refused are there", found, audits)
		}
		if bad, err := tn.VerifyAudit(); err != nil || len(bad) > 0 {
			t.Fatalf("audit chain: %v %v", bad, err)
		}
		if rep, err := tn.Verify(ctx, nil); err != nil || !rep.Clean() {
			t.Fatalf("verify: %v %+v", err, rep)
		}
	}
	check(tn)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = openFloorProvider(t, dir)
	defer p.Close()
	if tn, err = p.Tenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	check(tn)
}

// TestDiskFullMemoryBounded: refused messages leave nothing behind in
// memory, and a paused index holds no queued documents. The figures are
// heap in use after a collection, with a generous bound.
func TestDiskFullMemoryBounded(t *testing.T) {
	dir := smallDisk(t, 64)
	p := openFloorProvider(t, dir)
	defer p.Close()
	tn := newTenant(t, p, "acme", "acme.example")
	ctx := context.Background()
	// Archive until intake refuses and the index has paused: a batch
	// being written holds its room, so intake may refuse for a moment
	// before the disk is down to the reserve.
	n := 0
	// Generous: under the race detector on a loaded machine the index
	// falls far behind, and its batches hold room that intake then lacks.
	deadline := time.Now().Add(4 * time.Minute)
	for {
		n++
		_, err := tn.Ingest(ctx, floorMessage(n, 40<<10), Source{})
		if err != nil && !errors.Is(err, syscall.ENOSPC) {
			t.Fatal(err)
		}
		if err != nil && tn.Stats().Disk.IndexPaused {
			break
		}
		if err != nil {
			time.Sleep(50 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the index did not pause on a full disk: %+v", tn.Stats())
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	refuse := func(count int) {
		for range count {
			n++
			if _, err := tn.Ingest(ctx, floorMessage(n, 256<<10), Source{}); err == nil {
				t.Fatal("a message was archived below the intake reserve")
			}
		}
	}
	refuse(20)
	before := heap()
	refuse(400) // 100 MiB refused
	after := heap()
	t.Logf("heap in use %d MiB before, %d MiB after 400 refused messages of 256 KiB", before>>20, after>>20)
	if after > before+16<<20 {
		t.Fatalf("heap grew from %d to %d MiB with refused messages", before>>20, after>>20)
	}
	// The paused index keeps no documents, only the watermark.
	if after > 64<<20 {
		t.Fatalf("heap in use on a full disk is %d MiB", after>>20)
	}
}
