package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailvault/mailvault/mailgen"
	"github.com/mailvault/mailvault/mailparse"
)

// referenceEnvelope decodes the envelope with encoding/json, as Envelope
// did before it had a fast path: the fast path must agree with it.
func referenceEnvelope(rec []byte) (*mailparse.Envelope, error) {
	dec := json.NewDecoder(bytes.NewReader(rec))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("no object: %v", err)
	}
	if key, err := dec.Token(); err != nil || key != "e" {
		return nil, fmt.Errorf("no envelope first: %v", err)
	}
	var env mailparse.Envelope
	if err := dec.Decode(&env); err != nil {
		return nil, err
	}
	return &env, nil
}

// sameEnvelope compares field by field; dates by instant and by the offset
// IMAP writes (time.Location pointers differ between parses).
func sameEnvelope(a, b *mailparse.Envelope) bool {
	const layout = "Mon, 02 Jan 2006 15:04:05 -0700"
	if !a.Date.Equal(b.Date) || a.Date.IsZero() != b.Date.IsZero() || a.Date.Format(layout) != b.Date.Format(layout) {
		return false
	}
	x, y := *a, *b
	x.Date, y.Date = time.Time{}, time.Time{}
	return reflect.DeepEqual(x, y)
}

func checkScan(t *testing.T, rec []byte, mustScan bool) {
	t.Helper()
	want, werr := referenceEnvelope(rec)
	got, ok := scanEnvelope(rec)
	if !ok {
		if mustScan {
			t.Errorf("fast path gave up on %s", rec)
		}
		return
	}
	if werr != nil {
		t.Errorf("fast path decoded what encoding/json rejects (%v): %s", werr, rec)
		return
	}
	if !sameEnvelope(got, want) {
		t.Errorf("fast path differs:\n got %#v\nwant %#v\n  in %s", got, want, rec)
	}
}

func marshalEnvelope(t testing.TB, env mailparse.Envelope) []byte {
	s := mailparse.Summary{Envelope: env, Structure: &mailparse.Part{Type: "text", Subtype: "plain", Encoding: "7BIT"}}
	rec, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

var trickyStrings = []string{
	"", "plain", `quote " and \ backslash`, "<html> & co", "line\nbreak\ttab\r", "\x00\x01\x1f",
	"Grüße, 日本語, 🙂", "\u2028\u2029", "invalid \xff\xfe utf-8", "\xc3", "surrogate \xed\xa0\x80",
	"json \\u0041 look-alike", "/slash/", "\u007f", strings.Repeat("long ", 2000),
}

func TestScanEnvelope(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("", 2*3600), time.FixedZone("", -(9*3600 + 30*60)), time.Local}
	for i, s := range trickyStrings {
		a := mailparse.Address{Name: s, Mailbox: "m" + s, Host: s + "h"}
		other := mailparse.Address{Name: "Other", Mailbox: "other", Host: "example.com"}
		env := mailparse.Envelope{
			Subject: s, From: []mailparse.Address{a}, To: []mailparse.Address{a, other},
			InReplyTo: []string{s, "x@y"}, MessageID: s,
		}
		if i%2 == 0 {
			env.Date = time.Date(1900+i*20, time.Month(1+i%12), 1+i, i, 2*i, 3*i, i*1000, zones[i%len(zones)])
			env.RawDate = s
			env.Sender = []mailparse.Address{other}
			env.Cc = []mailparse.Address{{}}
		} else if i%3 == 0 {
			// Groups and source routes.
			env.Cc = []mailparse.Address{{Name: s, Group: mailparse.GroupStart}, a, {Group: mailparse.GroupEnd},
				{Name: s, Mailbox: "r", Host: "h", Route: "@" + s + ",@relay.example"}}
		} else {
			env.ReplyTo = []mailparse.Address{other, a}
			env.Bcc = []mailparse.Address{a}
		}
		checkScan(t, marshalEnvelope(t, env), true)
	}
	checkScan(t, marshalEnvelope(t, mailparse.Envelope{}), true)
	// Shapes encoding/json accepts but never writes go to encoding/json.
	for _, rec := range []string{
		`{"e":{"S":"upper-case key"}}`, `{"e":{ "s":"space"}}`, `{"e":{"f":null}}`, `{"e":{"f":[["a","b"]]}}`,
		`{"e":{"f":[]},"s":{"t":"text"}}`, `{"e":{"irt":[]}}`, `{"e":{"s":"a","s":"b"}}`, `{"e":{"x":1}}`,
		`{"e":{"d":"2024-02-30T00:00:00Z"}}`, `{"e":{"s":"unterminated}}`, `{"e":{"s":"\ud83d\ude42 \ud800"}}`,
		`{"e":{"s":"raw` + "\x01" + `"}}`, `{"e":{}}`, `{"e":{"s":"x"}`, `{"s":{},"e":{"s":"x"}}`,
	} {
		checkScan(t, []byte(rec), false)
	}

	g := mailgen.New(7, []string{"acme.example", "partner.example"}, 30)
	for range 300 {
		checkScan(t, marshalSummary(t, g.Next().Raw), true)
	}
	dir := filepath.Join("..", "..", "shared", "corpus", "messages")
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkScan(t, marshalSummary(t, raw), true)
	}
	if len(files) == 0 {
		t.Log("real-world corpus not present: checked synthetic mail only")
	}
}

func marshalSummary(t testing.TB, raw []byte) []byte {
	rec, err := mailparse.Parse(raw, mailparse.Options{MaxText: -1}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func FuzzScanEnvelope(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s, s, int64(len(s)))
	}
	f.Add(`{"e":{"s":"x"}}`, "", int64(-1))
	f.Fuzz(func(t *testing.T, a, b string, sec int64) {
		// a as a record of its own, and a and b in every field.
		checkScan(t, []byte(a), false)
		env := mailparse.Envelope{
			Subject: a, From: []mailparse.Address{{Name: a, Mailbox: b, Host: a}}, Cc: []mailparse.Address{{Name: b}},
			InReplyTo: []string{b}, MessageID: a,
		}
		if sec >= 0 {
			env.Date = time.Unix(sec%(1<<33), sec%1e9).In(time.FixedZone("", int(sec%(14*3600))))
		}
		checkScan(t, marshalEnvelope(t, env), true)
	})
}

// TestListMessages checks the batched read against one read per message,
// with the folder's summaries scattered in the log, records longer than a
// batch's tail, MIDs out of order and MIDs that do not exist.
func TestListMessages(t *testing.T) {
	p := openProvider(t, t.TempDir())
	defer p.Close()
	tn := newTenant(t, p, "acme", "acme.example")
	ctx := context.Background()
	if _, err := tn.CreateUser(ctx, UserSpec{Login: "bob@acme.example", Password: "pw-bob", Mailbox: true}); err != nil {
		t.Fatal(err)
	}
	g := mailgen.New(3, []string{"acme.example"}, 10)
	g.AvgSize = 2 << 10
	rng := rand.New(rand.NewPCG(1, 2))
	type item struct {
		raw  []byte
		mbox string
	}
	var items []item
	for i := range 200 {
		raw := g.Next().Raw
		if i%37 == 0 {
			// Many header fields: a summary longer than batchTail.
			var h strings.Builder
			for k := range 300 {
				fmt.Fprintf(&h, "X-Filler-%d: %s\r\n", k, strings.Repeat("v", 40))
			}
			raw = append([]byte(h.String()), raw...)
		}
		// Runs of bob's mail leave gaps of many sizes between alice's
		// records, some longer than batchGap.
		n := rng.IntN(4)
		if rng.IntN(10) == 0 {
			n = 40
		}
		for range n {
			items = append(items, item{g.Next().Raw, "bob@acme.example"})
		}
		items = append(items, item{raw, "alice@acme.example"})
	}
	// Concurrent ingest commits in batches; the log keeps roughly this order.
	work := make(chan item)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			var first error
			for it := range work {
				if _, err := tn.Ingest(ctx, it.raw, Source{Mailbox: it.mbox}); err != nil && first == nil {
					first = err
				}
			}
			errs <- first
		}()
	}
	for _, it := range items {
		work <- it
	}
	close(work)
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	snap, err := tn.Snapshot("alice@acme.example", folderID(t, tn, "alice@acme.example", FolderInbox))
	if err != nil {
		t.Fatal(err)
	}
	mids := append([]uint64{0}, snap.MIDs...)
	rng.Shuffle(len(mids), func(i, j int) { mids[i], mids[j] = mids[j], mids[i] })
	mids = append(mids, 1<<40, mids[3])
	got, err := tn.ListMessages(ctx, mids)
	if err != nil {
		t.Fatal(err)
	}
	long := 0
	for i, mid := range mids {
		info, ierr := tn.Message(mid)
		env, eerr := tn.Envelope(ctx, mid)
		if (got[i].Err != nil) != (ierr != nil || eerr != nil) {
			t.Fatalf("MID %d: error %v, one by one %v / %v", mid, got[i].Err, ierr, eerr)
		}
		if ierr != nil {
			continue
		}
		if got[i].MessageInfo != info || !sameEnvelope(got[i].Envelope, env) {
			t.Fatalf("MID %d: %+v %+v, one by one %+v %+v", mid, got[i].MessageInfo, got[i].Envelope, info, env)
		}
		if rec, _ := tn.summaryRecord(ctx, mid); len(rec) > batchTailForTest {
			long++
		}
	}
	if long == 0 {
		t.Error("no summary longer than a batch's tail: the test misses that case")
	}

	// A damaged record costs nothing: the summary is rebuilt from the
	// message, and the others are read as before.
	bad := snap.MIDs[len(snap.MIDs)/2]
	before, err := tn.Envelope(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	badOff := tn.msgs[bad-1].sumOff
	f, err := os.OpenFile(filepath.Join(tn.dir, "summaries.log"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("garbage"), tn.msgs[bad-1].sumOff+40); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, err = tn.ListMessages(ctx, snap.MIDs)
	if err != nil {
		t.Fatal(err)
	}
	for i, mid := range snap.MIDs {
		if got[i].Err != nil {
			t.Errorf("MID %d: error %v after damaging MID %d", mid, got[i].Err, bad)
		}
	}
	if i := slices.Index(snap.MIDs, bad); !sameEnvelope(got[i].Envelope, before) || tn.msgs[bad-1].sumOff == badOff {
		t.Errorf("damaged MID %d: envelope %+v (was %+v), summary at %d (was %d): want it rebuilt", bad, got[i].Envelope, before, tn.msgs[bad-1].sumOff, badOff)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := tn.ListMessages(canceled, mids); err == nil {
		t.Error("ListMessages with an ended context succeeded")
	}
}

// batchTailForTest mirrors the store's batchTail, which is unexported.
const batchTailForTest = 4 << 10
