package backend

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/mailgen"
)

// ingestN archives n generated messages into alice's INBOX, one commit each.
func ingestN(t *testing.T, tn *Tenant, g *mailgen.Generator, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := tn.Ingest(context.Background(), g.Next().Raw, Source{Mailbox: "alice@acme.example"}); err != nil {
			t.Fatal(err)
		}
	}
}

// editMeta changes meta.db of a stopped tenant as someone with access to
// the files could.
func editMeta(t *testing.T, data string, fn func(tx *buntdb.Tx) error) {
	t.Helper()
	db, err := buntdb.Open(filepath.Join(data, "tenants", "acme", "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func kinds(r *VerifyReport) []string {
	var out []string
	for _, p := range r.Problems {
		out = append(out, p.Kind)
	}
	return out
}

// TestTornFinalCommit simulates a power loss that persisted only part of
// the last commit: its anchor (written before meta.db) claims three new
// messages, meta.db holds two of them. Those were never acknowledged and
// are dropped at open; the archive stays consistent and verify is clean.
func TestTornFinalCommit(t *testing.T) {
	data := t.TempDir()
	p := openProvider(t, data)
	tn := newTenant(t, p, "acme", "acme.example")
	ctx := context.Background()
	g := mailgen.New(3, []string{"acme.example"}, 3)
	g.AvgSize = 2 << 10
	ingestN(t, tn, g, 5)
	// The commit of messages 6-8 anchors its state, then the power goes.
	tn.wmu.Lock()
	next := tn.state
	next.Messages += 3
	next.Placements += 3
	if err := tn.appendAnchor(next); err != nil {
		t.Fatal(err)
	}
	tn.wmu.Unlock()
	anchors := filepath.Join(data, "tenants", "acme", "anchors.log")
	crashed, err := os.ReadFile(anchors)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if err := os.WriteFile(anchors, crashed, 0o600); err != nil { // no clean-close anchor
		t.Fatal(err)
	}
	var last string
	editMeta(t, data, func(tx *buntdb.Tx) error {
		last, _ = tx.Get(msgKey(5))
		for _, mid := range []uint64{6, 7} {
			if _, _, err := tx.Set(msgKey(mid), last, nil); err != nil {
				return err
			}
		}
		return nil
	})
	p = openProvider(t, data)
	defer p.Close()
	tn, err = p.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if st := tn.Stats(); st.Messages != 5 {
		t.Fatalf("%d messages after repair, want 5", st.Messages)
	}
	rep, err := tn.Verify(ctx, nil)
	if err != nil || !rep.Clean() {
		t.Fatalf("verify after repair: %v %+v", err, rep)
	}
	ingestN(t, tn, g, 1)
	if rep, err := tn.Verify(ctx, nil); err != nil || !rep.Clean() || rep.Messages != 6 {
		t.Fatalf("verify after new mail: %v %+v", err, rep)
	}
}

// TestRemovalAtTheEndIsNamed removes records at the end of meta.db of a
// stopped archive, as a hostile operator could: message records (with
// their placements), one placement, audit entries. Nothing of what is left
// may be dropped, and verify names the removal, also after further
// restarts.
func TestRemovalAtTheEndIsNamed(t *testing.T) {
	ctx := context.Background()
	const n = 8
	for _, tc := range []struct {
		name  string
		edit  func(tx *buntdb.Tx) error
		want  []string // problem kinds verify must name
		msgs  int      // message slots after open
		alive int      // messages still readable
	}{
		{"intact", func(*buntdb.Tx) error { return nil }, nil, n, n},
		{"last three messages", removeMessages(6, 7, 8), []string{"records-truncated", "record-missing", "placements-altered"}, n, n - 3},
		{"last message only", removeMessages(8), []string{"records-truncated", "record-missing", "placements-altered"}, n, n - 1},
		{"one placement", removePlacement(n), []string{"placements-altered"}, n, n},
		{"last audit entries", removeAudit(2), []string{"audit-truncated"}, n, n},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			p := openProvider(t, data)
			tn := newTenant(t, p, "acme", "acme.example")
			g := mailgen.New(4, []string{"acme.example"}, 3)
			g.AvgSize = 2 << 10
			ingestN(t, tn, g, n)
			tn.Audit(ctx, "admin@acme.example", "test", "one")
			tn.Audit(ctx, "admin@acme.example", "test", "two")
			p.Close()
			editMeta(t, data, tc.edit)
			for round := 0; round < 2; round++ { // findings outlive a restart
				p = openProvider(t, data)
				tn, err := p.Tenant(ctx, "acme")
				if err != nil {
					t.Fatal(err)
				}
				if st := tn.Stats(); st.Messages != tc.msgs {
					t.Errorf("round %d: %d message slots, want %d", round, st.Messages, tc.msgs)
				}
				alive := 0
				for mid := uint64(1); mid <= n; mid++ {
					if _, err := tn.RawMessage(ctx, mid); err == nil {
						alive++
					}
				}
				if alive != tc.alive {
					t.Errorf("round %d: %d messages readable, want %d", round, alive, tc.alive)
				}
				rep, err := tn.Verify(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				got := kinds(rep)
				for _, k := range tc.want {
					if !slices.Contains(got, k) {
						t.Errorf("round %d: verify names %v, want %s among them", round, got, k)
					}
				}
				if rep.Clean() != (len(tc.want) == 0) {
					t.Errorf("round %d: verify clean=%v with %v", round, rep.Clean(), got)
				}
				p.Close()
			}
		})
	}
}

func removeMessages(mids ...uint64) func(tx *buntdb.Tx) error {
	return func(tx *buntdb.Tx) error {
		var keys []string
		tx.AscendKeys("mem:*", func(k, v string) bool {
			mid, _ := strconv.ParseUint(v, 16, 64)
			if slices.Contains(mids, mid) {
				keys = append(keys, k)
			}
			return true
		})
		for _, mid := range mids {
			keys = append(keys, msgKey(mid))
		}
		for _, k := range keys {
			if _, err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}
}

func removePlacement(mid uint64) func(tx *buntdb.Tx) error {
	return func(tx *buntdb.Tx) error {
		var key string
		tx.AscendKeys("mem:*", func(k, v string) bool {
			if m, _ := strconv.ParseUint(v, 16, 64); m == mid {
				key = k
			}
			return true
		})
		_, err := tx.Delete(key)
		return err
	}
}

func removeAudit(count int) func(tx *buntdb.Tx) error {
	return func(tx *buntdb.Tx) error {
		var keys []string
		tx.DescendKeys("audit:*", func(k, v string) bool {
			keys = append(keys, k)
			return len(keys) < count
		})
		for _, k := range keys {
			if !strings.HasPrefix(k, "audit:") {
				continue
			}
			if _, err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}
}

// TestDamagedSummaryServed flips a byte in one summary record and one in
// the checksum of another: both messages are whole, so both are served
// (envelope, summary, raw bytes), verify names what it finds as what it
// is, and reading rebuilds the records so that verify is clean again.
func TestDamagedSummaryServed(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	p := openProvider(t, data)
	tn := newTenant(t, p, "acme", "acme.example")
	g := mailgen.New(5, []string{"acme.example"}, 3)
	g.AvgSize = 2 << 10
	ingestN(t, tn, g, 6)
	want := map[uint64]string{}
	for mid := uint64(1); mid <= 6; mid++ {
		env, err := tn.Envelope(ctx, mid)
		if err != nil {
			t.Fatal(err)
		}
		want[mid] = env.Subject
	}
	payload, crc := tn.msgs[1].sumOff+8+20, tn.msgs[3].sumOff+4
	p.Close()
	f, err := os.OpenFile(filepath.Join(data, "tenants", "acme", "summaries.log"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{payload, crc} {
		b := make([]byte, 1)
		f.ReadAt(b, off)
		b[0] ^= 0x20
		f.WriteAt(b, off)
	}
	f.Close()

	p = openProvider(t, data)
	defer p.Close()
	tn, err = p.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := tn.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(rep); !slices.Equal(got, []string{"summary-corrupt", "summary-checksum"}) || rep.Problems[0].MID != 2 || rep.Problems[1].MID != 4 {
		t.Fatalf("verify names %+v, want summary-corrupt of 2 and summary-checksum of 4", rep.Problems)
	}
	list, err := tn.ListMessages(ctx, []uint64{1, 2, 3, 4, 5, 6})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		if l.Err != nil || l.Envelope == nil || l.Envelope.Subject != want[l.MID] {
			t.Errorf("message %d listed as %+v", l.MID, l)
		}
	}
	for mid := uint64(1); mid <= 6; mid++ {
		if s, err := tn.Summary(ctx, mid); err != nil || s.Envelope.Subject != want[mid] {
			t.Errorf("summary of %d: %v", mid, err)
		}
		if _, err := tn.RawMessage(ctx, mid); err != nil {
			t.Errorf("message %d: %v", mid, err)
		}
	}
	if rep, err := tn.Verify(ctx, nil); err != nil || !rep.Clean() {
		t.Fatalf("verify after the rebuild: %v %+v", err, rep)
	}
	entries, _ := tn.AuditLog(0, 0)
	if n := len(slices.DeleteFunc(entries, func(e AuditEntry) bool { return e.Action != "summary-rebuilt" })); n != 2 {
		t.Errorf("%d summary-rebuilt audit entries, want 2", n)
	}
}
