package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/index"
	"github.com/mailvault/mailvault/store"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

func date(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 12, 0, 0, 0, time.UTC) }

type retentionFixture struct {
	p     *Provider
	tn    *Tenant
	clock *clock
	dir   string
}

// newRetentionFixture opens a tenant acme with alice (reader), bob
// (reader) and carol (compliance), each with an own mailbox.
func newRetentionFixture(t *testing.T) *retentionFixture {
	t.Helper()
	f := &retentionFixture{clock: &clock{now: date(2020, 6, 1)}, dir: t.TempDir()}
	f.open(t)
	ctx := context.Background()
	if _, err := f.p.CreateTenant(ctx, "acme", []string{"acme.example"}, Quotas{}); err != nil {
		t.Fatal(err)
	}
	f.tenant(t)
	for _, u := range []UserSpec{
		{Login: "alice@acme.example", Password: "pw-alice-1", Mailbox: true},
		{Login: "bob@acme.example", Password: "pw-bob-12", Mailbox: true},
		{Login: "carol@acme.example", Password: "pw-carol-1", Mailbox: true, Roles: []Role{RoleCompliance}},
	} {
		if _, err := f.tn.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *retentionFixture) open(t *testing.T) {
	t.Helper()
	p, err := Open(Options{DataDir: f.dir, Logger: testLogger(t), CommitDelay: time.Millisecond, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
}

func (f *retentionFixture) tenant(t *testing.T) {
	t.Helper()
	tn, err := f.p.Tenant(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	f.tn = tn
}

func (f *retentionFixture) reopen(t *testing.T) {
	t.Helper()
	if err := f.p.Close(); err != nil {
		t.Fatal(err)
	}
	f.open(t)
	f.tenant(t)
}

// mail archives a message from -> to dated at d (its INTERNALDATE).
func (f *retentionFixture) mail(t *testing.T, from, to, subject string, d time.Time, src Source) uint64 {
	t.Helper()
	raw := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@acme.example>\r\n\r\nbody of %s\r\n",
		from, to, subject, d.Format(time.RFC1123Z), subject, subject)
	src.Received = d
	res, err := f.tn.Ingest(context.Background(), []byte(raw), src)
	if err != nil {
		t.Fatal(err)
	}
	return res.MID
}

func (f *retentionFixture) indexed(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.tn.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
}

func (f *retentionFixture) policies(t *testing.T, ps []Policy) {
	t.Helper()
	if _, err := f.tn.SetRetentionPolicies(context.Background(), "carol@acme.example", ps); err != nil {
		t.Fatal(err)
	}
}

func (f *retentionFixture) gone(t *testing.T, mid uint64) bool {
	t.Helper()
	_, err := f.tn.RawMessage(context.Background(), mid)
	return errors.Is(err, ErrNotFound)
}

func (f *retentionFixture) verifyClean(t *testing.T) *VerifyReport {
	t.Helper()
	rep, err := f.tn.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() {
		t.Fatalf("verify not clean: %+v", rep.Problems)
	}
	return rep
}

func TestRetentionPoliciesMatchInOrder(t *testing.T) {
	f := newRetentionFixture(t)
	defer func() { f.p.Close() }()
	ctx := context.Background()
	ps, err := f.tn.RetentionPolicies()
	if err != nil || len(ps.Policies) != 1 || ps.Policies[0].Name != "default" || ps.Policies[0].Min.Years != 10 || !ps.Policies[0].Min.EndOfYear {
		t.Fatalf("a new tenant's policies %+v %v, want 10 years from the end of the year", ps, err)
	}
	news := f.mail(t, "news@vendor.example", "alice@acme.example", "newsletter", date(2019, 3, 10), Source{})
	invoice := f.mail(t, "billing@vendor.example", "alice@acme.example", "invoice", date(2019, 3, 11), Source{})
	project := f.mail(t, "bob@acme.example", "alice@acme.example", "project", date(2019, 3, 12), Source{})
	f.indexed(t)
	if _, err := f.tn.SetRetentionPolicies(ctx, "alice@acme.example", []Policy{DefaultPolicy()}); !errors.Is(err, ErrDenied) {
		t.Fatalf("a reader set policies: %v", err)
	}
	for _, bad := range []Policy{
		{Name: "x", Min: Period{Years: 2}, Max: &Period{Years: 1}, MaxAction: ActionDelete},
		{Name: "x", Min: Period{Years: 2}, Max: &Period{Years: 3}},
		{Name: "x", Min: Period{From: "yesterday"}},
		{Name: "x", Query: json.RawMessage(`{"nope":1}`)},
	} {
		if _, err := f.tn.SetRetentionPolicies(ctx, "carol@acme.example", []Policy{bad}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("policy %+v accepted: %v", bad, err)
		}
	}
	// Shorter periods above longer ones; first match wins.
	f.policies(t, []Policy{
		{Name: "newsletters", Query: json.RawMessage(`{"subject":"newsletter"}`), Min: Period{Days: 30}, Max: &Period{Years: 1}, MaxAction: ActionDelete},
		{Name: "vendor", Addresses: []string{"vendor.example"}, Min: Period{Years: 6, EndOfYear: true}},
		{Name: "internal", Mailboxes: []string{"alice@acme.example"}, Folders: []string{"INBOX"}, Min: Period{Years: 8, From: FromArchived}},
		DefaultPolicy(),
	})
	want := map[uint64]struct {
		policy string
		min    time.Time
	}{
		news:    {"newsletters", date(2019, 4, 9)},
		invoice: {"vendor", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		project: {"internal", time.Unix(0, f.tn.msgs[project-1].archived).UTC().AddDate(8, 0, 0)},
	}
	for mid, w := range want {
		r, err := f.tn.EffectiveRetention(ctx, mid)
		if err != nil {
			t.Fatal(err)
		}
		var inbox *PlacementRetention
		for i := range r.Placements {
			if r.Placements[i].Mailbox == "alice@acme.example" {
				inbox = &r.Placements[i]
			}
		}
		if inbox == nil || inbox.Policy != w.policy || !inbox.MinUntil.Equal(w.min) {
			t.Fatalf("message %d: %+v, want policy %s until %s", mid, r.Placements, w.policy, w.min)
		}
		if r.PolicyVersion != 1 {
			t.Fatalf("policy version %d", r.PolicyVersion)
		}
	}
	// bob's Sent copy of the project mail is not in alice's INBOX: default.
	r, _ := f.tn.EffectiveRetention(ctx, project)
	for _, pl := range r.Placements {
		if pl.Mailbox == "bob@acme.example" && (pl.Policy != "default" || !pl.MinUntil.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))) {
			t.Fatalf("bob's placement %+v, want default until 2030-01-01", pl)
		}
	}
	if !r.MinUntil.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) && r.MinUntil.Before(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("the bytes are protected until %s, want the longest minimum", r.MinUntil)
	}
	// Versioned and audited.
	f.policies(t, []Policy{DefaultPolicy()})
	hist, err := f.tn.PolicyHistory()
	if err != nil || len(hist) != 1 || hist[0].Version != 1 || len(hist[0].Policies) != 4 {
		t.Fatalf("history %+v %v", hist, err)
	}
	log, _ := f.tn.AuditLog(0, 0)
	n := 0
	for _, e := range log {
		if e.Action == "retention-policies" && e.Actor == "carol@acme.example" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d policy changes audited, want 2", n)
	}
}

func TestRetentionJobDeletesAfterMaximumOnly(t *testing.T) {
	f := newRetentionFixture(t)
	defer func() { f.p.Close() }()
	ctx := context.Background()
	f.policies(t, []Policy{
		{Name: "short", Mailboxes: []string{"alice@acme.example"}, Min: Period{Years: 1}, Max: &Period{Years: 2}, MaxAction: ActionDelete},
		{Name: "reviewed", Mailboxes: []string{"bob@acme.example"}, Min: Period{Years: 1}, Max: &Period{Years: 2}, MaxAction: ActionReview},
		DefaultPolicy(),
	})
	// One message for alice only, one shared by alice and bob, one for bob.
	own := f.mail(t, "x@outside.example", "alice@acme.example", "own", date(2020, 1, 10), Source{})
	shared := f.mail(t, "x@outside.example", "alice@acme.example, bob@acme.example", "shared", date(2020, 1, 11), Source{})
	bobs := f.mail(t, "x@outside.example", "bob@acme.example", "bobs", date(2020, 1, 12), Source{})
	f.indexed(t)
	key := f.tn.seal.BlobKey(f.tn.msgs[own-1].sum)
	sealed, err := f.tn.blobs.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, now := range []time.Time{date(2020, 6, 1), date(2021, 6, 1), date(2022, 1, 9)} {
		f.clock.Set(now)
		rep, err := f.tn.RunRetention(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Placements != 0 {
			t.Fatalf("at %s the job deleted %d placements before their maximum", now, rep.Placements)
		}
	}
	f.clock.Set(date(2022, 1, 11))
	dry, err := f.tn.RetentionDryRun(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dry.Placements != 2 || dry.Messages != 1 || len(dry.Review) != 1 || dry.Review[0].MID != shared {
		t.Fatalf("dry run %+v: want alice's two placements, one message whose last placement goes, bob's shared one for review", dry)
	}
	rep, err := f.tn.RunRetention(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Placements != 2 || rep.Messages != 1 || rep.Review != 1 {
		t.Fatalf("run %+v", rep)
	}
	if !f.gone(t, own) || f.gone(t, shared) || f.gone(t, bobs) {
		t.Fatal("wrong messages deleted")
	}
	// The shared message's bytes stay: bob's placement keeps them.
	snap, err := f.tn.Snapshot("bob@acme.example", folderID(t, f.tn, "bob@acme.example", "INBOX"))
	if err != nil || len(snap.MIDs) != 2 {
		t.Fatalf("bob's INBOX %v %v", snap, err)
	}
	snap, _ = f.tn.Snapshot("alice@acme.example", folderID(t, f.tn, "alice@acme.example", "INBOX"))
	if len(snap.MIDs) != 0 {
		t.Fatalf("alice's INBOX still holds %v", snap.MIDs)
	}
	// Irrecoverable: the sealed record's bytes are in no pack file.
	names, _ := filepath.Glob(filepath.Join(f.dir, "tenants", "acme", "packs", "*"))
	for _, name := range names {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, sealed[:64]) {
			t.Fatalf("the deleted message's sealed bytes are still in %s", name)
		}
	}
	if _, err := f.tn.blobs.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the blob still opens: %v", err)
	}
	f.indexed(t)
	mids, _, err := f.tn.ix.Find(ctx, []uint64{folderID(t, f.tn, "alice@acme.example", "INBOX")}, mustFilter(t, `{"text":"own"}`), nil, 0, -1)
	if err != nil || len(mids) != 0 {
		t.Fatalf("search still finds %v %v", mids, err)
	}
	vr := f.verifyClean(t)
	if vr.Deleted != 1 || vr.Messages != 2 {
		t.Fatalf("verify counts %d messages, %d deleted", vr.Messages, vr.Deleted)
	}
	f.reopen(t)
	if !f.gone(t, own) || f.gone(t, shared) {
		t.Fatal("after reopen")
	}
	f.verifyClean(t)
	if st := f.tn.Stats(); st.Deleted != 1 || st.Messages != 2 {
		t.Fatalf("stats %+v", st)
	}
	if reps, _ := f.tn.RetentionReports(); len(reps) != 1 || reps[0].Messages != 1 {
		t.Fatalf("reports %+v", reps)
	}
}

func mustFilter(t *testing.T, s string) index.Query {
	t.Helper()
	q, err := compileFilter(json.RawMessage(s))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestLegalHoldsBlockEveryDeletion(t *testing.T) {
	f := newRetentionFixture(t)
	defer func() { f.p.Close() }()
	ctx := context.Background()
	f.policies(t, []Policy{{Name: "short", Min: Period{Days: 1}, Max: &Period{Days: 2}, MaxAction: ActionDelete}})
	a := f.mail(t, "x@outside.example", "alice@acme.example", "merger talks", date(2020, 1, 10), Source{})
	b := f.mail(t, "x@outside.example", "bob@acme.example", "lunch", date(2020, 1, 10), Source{})
	f.indexed(t)
	if _, err := f.tn.PlaceHold(ctx, "alice@acme.example", Hold{Case: "C-1", Reason: "r", Mailboxes: []string{"alice@acme.example"}}); !errors.Is(err, ErrDenied) {
		t.Fatalf("a reader placed a hold: %v", err)
	}
	h1, err := f.tn.PlaceHold(ctx, "carol@acme.example", Hold{Case: "C-1", Reason: "litigation", Mailboxes: []string{"alice@acme.example"}})
	if err != nil {
		t.Fatal(err)
	}
	h2, err := f.tn.PlaceHold(ctx, "carol@acme.example", Hold{Case: "TAX-2020", Reason: "tax audit", Query: json.RawMessage(`{"subject":"invoice"}`)})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Set(date(2020, 6, 1))
	// A query hold covers mail journaled after it was placed.
	late := f.mail(t, "x@outside.example", "bob@acme.example", "invoice 42", date(2020, 1, 11), Source{Journal: true})
	f.indexed(t)
	r, err := f.tn.EffectiveRetention(ctx, late)
	if err != nil || len(r.Holds) != 1 || r.Holds[0].ID != h2.ID {
		t.Fatalf("late mail's retention %+v %v: want hold %s", r, err, h2.ID)
	}
	rep, err := f.tn.RunRetention(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Held == 0 || f.gone(t, a) || f.gone(t, late) || !f.gone(t, b) {
		t.Fatalf("job %+v: held mail deleted or free mail kept", rep)
	}
	// A compliance user cannot delete held mail either.
	req := DeleteRequest{All: true}
	dry, err := f.tn.DryRun(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if dry.Placements != 0 || dry.Held == 0 {
		t.Fatalf("dry run %+v: everything left is held", dry)
	}
	if _, err := f.tn.Delete(ctx, "alice@acme.example", req, dry.Token); !errors.Is(err, ErrDenied) {
		t.Fatalf("a reader deleted: %v", err)
	}
	if rep, err := f.tn.Delete(ctx, "carol@acme.example", req, dry.Token); err != nil || rep.Placements != 0 {
		t.Fatalf("delete of held mail: %+v %v", rep, err)
	}
	// Lifting the hold frees alice's mail; a stale token is refused.
	if _, err := f.tn.LiftHold(ctx, "carol@acme.example", h1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.tn.Delete(ctx, "carol@acme.example", req, dry.Token); !errors.Is(err, ErrStale) {
		t.Fatalf("stale token: %v", err)
	}
	dry, err = f.tn.DryRun(ctx, DeleteRequest{Mailboxes: []string{"alice@acme.example"}})
	if err != nil || dry.Placements != 1 || dry.Items[0].MID != a {
		t.Fatalf("dry run after lifting %+v %v", dry, err)
	}
	if _, err := f.tn.Delete(ctx, "carol@acme.example", DeleteRequest{Mailboxes: []string{"alice@acme.example"}}, dry.Token); err != nil {
		t.Fatal(err)
	}
	if !f.gone(t, a) || f.gone(t, late) {
		t.Fatal("after lifting")
	}
	holds, _ := f.tn.Holds()
	if len(holds) != 2 || holds[0].Active() || !holds[1].Active() {
		t.Fatalf("holds %+v", holds)
	}
	f.verifyClean(t)
}

func TestNothingDeletableBeforeMinimum(t *testing.T) {
	f := newRetentionFixture(t)
	defer func() { f.p.Close() }()
	ctx := context.Background()
	mid := f.mail(t, "x@outside.example", "alice@acme.example", "young", date(2019, 5, 1), Source{})
	f.indexed(t)
	// The default: 10 years from the end of 2019.
	for _, now := range []time.Time{date(2025, 1, 1), time.Date(2029, 12, 31, 23, 59, 0, 0, time.UTC)} {
		f.clock.Set(now)
		dry, err := f.tn.DryRun(ctx, DeleteRequest{All: true})
		if err != nil || dry.Placements != 0 || dry.Protected != 1 {
			t.Fatalf("at %s: %+v %v", now, dry, err)
		}
		if _, err := f.tn.Delete(ctx, "carol@acme.example", DeleteRequest{All: true}, dry.Token); err != nil || f.gone(t, mid) {
			t.Fatalf("deleted before its minimum: %v", err)
		}
	}
	f.clock.Set(time.Date(2030, 1, 1, 0, 0, 1, 0, time.UTC))
	dry, err := f.tn.DryRun(ctx, DeleteRequest{All: true})
	if err != nil || dry.Placements != 1 {
		t.Fatalf("after the minimum %+v %v", dry, err)
	}
	if _, err := f.tn.Delete(ctx, "carol@acme.example", DeleteRequest{All: true}, dry.Token); err != nil || !f.gone(t, mid) {
		t.Fatalf("delete after the minimum: %v", err)
	}
	// Archived again, the same bytes are a new message.
	again := f.mail(t, "x@outside.example", "alice@acme.example", "young", date(2019, 5, 1), Source{})
	if again == mid || f.gone(t, again) {
		t.Fatalf("re-archived as %d", again)
	}
	f.verifyClean(t)
	f.reopen(t)
	if f.gone(t, again) {
		t.Fatal("re-archived copy lost at reopen")
	}
	f.verifyClean(t)
}

func TestVerifyNamesUnrecordedDeletion(t *testing.T) {
	f := newRetentionFixture(t)
	defer func() { f.p.Close() }()
	mid := f.mail(t, "x@outside.example", "alice@acme.example", "victim", date(2019, 5, 1), Source{})
	f.mail(t, "x@outside.example", "alice@acme.example", "other", date(2019, 5, 2), Source{})
	f.indexed(t)
	f.p.Close()
	// Someone marks a message deleted in meta.db behind the archive's back.
	db, err := buntdb.Open(filepath.Join(f.dir, "tenants", "acme", "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *buntdb.Tx) error {
		v, err := tx.Get(msgKey(mid))
		if err != nil {
			return err
		}
		m, err := decodeMsg(v)
		if err != nil {
			return err
		}
		m.deleted = true
		_, _, err = tx.Set(msgKey(mid), encodeMsg(&m), nil)
		return err
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	f.open(t)
	f.tenant(t)
	rep, err := f.tn.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, p := range rep.Problems {
		kinds[p.Kind] = true
	}
	if !kinds["deletion-unauthenticated"] || rep.Clean() {
		t.Fatalf("verify %+v: want deletion-unauthenticated", rep.Problems)
	}
}

// TestRunAcrossBatches deletes messages filed in two mailboxes whose
// placements fall into different batches of one run: each message goes
// with its last placement, in the same run.
func TestRunAcrossBatches(t *testing.T) {
	f := newRetentionFixture(t)
	defer func() { f.p.Close() }()
	ctx := context.Background()
	f.policies(t, []Policy{{Name: "short", Min: Period{Days: 1}, Max: &Period{Days: 2}, MaxAction: ActionDelete}})
	n := runBatch + runBatch/5
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				raw := fmt.Sprintf("From: x@outside.example\r\nTo: alice@acme.example, bob@acme.example\r\nSubject: shared %d\r\n\r\nbody %d\r\n", i, i)
				if _, err := f.tn.Ingest(ctx, []byte(raw), Source{Received: date(2019, 1, 1)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	f.indexed(t)
	rep, err := f.tn.RunRetention(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Placements != 2*n || rep.Messages != n {
		t.Fatalf("run %+v: want %d placements and %d messages", rep, 2*n, n)
	}
	if st := f.tn.Stats(); st.Messages != 0 || st.Deleted != n {
		t.Fatalf("stats %+v", st)
	}
	f.verifyClean(t)
}

// TestTenantEndOfLife schedules a tenant's deletion: it works through the
// grace period, a legal hold keeps it, and once lifted the tenant goes
// with its key and files.
func TestTenantEndOfLife(t *testing.T) {
	f := newRetentionFixture(t)
	defer func() { f.p.Close() }()
	ctx := context.Background()
	f.mail(t, "x@outside.example", "alice@acme.example", "last words", date(2019, 1, 1), Source{})
	h, err := f.tn.PlaceHold(ctx, "carol@acme.example", Hold{Case: "C-9", Reason: "pending"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.p.ScheduleTenantDeletion(ctx, "acme", 30*24*time.Hour); !errors.Is(err, ErrDenied) {
		t.Fatalf("scheduled under a hold: %v", err)
	}
	if _, err := f.tn.LiftHold(ctx, "carol@acme.example", h.ID); err != nil {
		t.Fatal(err)
	}
	info, err := f.p.ScheduleTenantDeletion(ctx, "acme", 30*24*time.Hour)
	if err != nil || info.DeleteAfter == nil {
		t.Fatalf("schedule: %+v %v", info, err)
	}
	// A hold placed during the grace period keeps the tenant.
	if _, err := f.tn.PlaceHold(ctx, "carol@acme.example", Hold{Case: "C-10", Reason: "new claim"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(date(2020, 8, 1))
	if done, err := f.p.deleteDueTenants(ctx); err != nil || len(done) != 0 {
		t.Fatalf("deleted under a hold: %v %v", done, err)
	}
	if _, err := f.tn.LiftHold(ctx, "carol@acme.example", "h0002"); err != nil {
		t.Fatal(err)
	}
	dir := f.p.tenantDir("acme")
	if done, err := f.p.deleteDueTenants(ctx); err != nil || len(done) != 1 {
		t.Fatalf("end of life: %v %v", done, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("tenant files left: %v", err)
	}
	if _, err := f.p.Tenant(ctx, "acme"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("tenant still opens: %v", err)
	}
	if _, err := f.p.TenantForDomain("acme.example"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("domain still assigned: %v", err)
	}
	recs, _ := f.p.DeletedTenants()
	if len(recs) != 1 || recs[0].Name != "acme" {
		t.Fatalf("records %+v", recs)
	}
	// The wrapped key is gone from the registry file, not only unlinked.
	f.p.Close()
	raw, err := os.ReadFile(filepath.Join(f.dir, "provider.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("wrapped_key")) {
		t.Fatal("provider.db still holds the wrapped key")
	}
	f.open(t)
}

func TestDeleteSelectsFolderAnyCase(t *testing.T) {
	f := newRetentionFixture(t)
	defer func() { f.p.Close() }()
	ctx := context.Background()
	f.policies(t, []Policy{{Name: "short", Min: Period{Days: 1}}})
	f.mail(t, "x@outside.example", "alice@acme.example", "in inbox", date(2019, 1, 1), Source{})
	f.indexed(t)
	for _, folder := range []string{"inbox", "INBOX", "Inbox/*"} {
		dry, err := f.tn.DryRun(ctx, DeleteRequest{Folders: []string{folder}})
		if err != nil || dry.Placements != 1 {
			t.Fatalf("folder %q: %+v %v", folder, dry, err)
		}
	}
}
