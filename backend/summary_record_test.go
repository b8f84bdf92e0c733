package backend

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	"github.com/mailvault/mailvault/mailgen"
	"github.com/mailvault/mailvault/mailparse"
)

// ListHeads gives each message its header block as presented (CRLF) and
// its MIME tree, for new messages from their summary records and for
// messages archived before records held heads from the message, whose
// summary is derived again and stored with its head; verify stays clean.
func TestListHeads(t *testing.T) {
	p := openProvider(t, t.TempDir())
	defer p.Close()
	tn := newTenant(t, p, "acme", "acme.example")
	ctx := context.Background()
	g := mailgen.New(11, []string{"acme.example"}, 5)
	g.AvgSize = 3 << 10
	ingestN(t, tn, g, 40)
	bare := []byte("From: bob@acme.example\nTo: alice@acme.example\nSubject: bare\n  folded\n\nline one\nline two\n")
	if _, err := tn.Ingest(ctx, bare, Source{Mailbox: "alice@acme.example"}); err != nil {
		t.Fatal(err)
	}
	snap, err := tn.Snapshot("alice@acme.example", folderID(t, tn, "alice@acme.example", FolderInbox))
	if err != nil {
		t.Fatal(err)
	}
	// Every third record as an older version wrote it: the JSON alone.
	type was struct {
		mid uint64
		old int64
	}
	var oldMIDs []uint64
	var old []was
	for i, mid := range snap.MIDs {
		if i%3 == 0 {
			oldMIDs = append(oldMIDs, mid)
		}
	}
	writeOldForm(t, tn, oldMIDs)
	for _, mid := range oldMIDs {
		old = append(old, was{mid, tn.msgs[mid-1].sumOff})
	}
	check := func(round string) {
		got, err := tn.ListHeads(ctx, snap.MIDs, true, true)
		if err != nil {
			t.Fatal(err)
		}
		for i, mid := range snap.MIDs {
			l := got[i]
			if l.Err != nil || l.Head == nil || l.Envelope == nil {
				t.Fatalf("%s: MID %d: %v", round, mid, l.Err)
			}
			raw, _ := tn.RawMessage(ctx, mid)
			sum, _ := tn.Summary(ctx, mid)
			env, _ := tn.Envelope(ctx, mid)
			_, end, _ := sum.Section(nil, "HEADER")
			if want := mailparse.AppendCRLF(nil, raw[:end]); !bytes.Equal(l.Head.Header, want) {
				t.Errorf("%s: MID %d: header %q, want %q", round, mid, l.Head.Header, want)
			}
			if !reflect.DeepEqual(l.Head.Structure, sum.Structure) {
				t.Errorf("%s: MID %d: structure differs from the summary's", round, mid)
			}
			if !sameEnvelope(l.Envelope, env) {
				t.Errorf("%s: MID %d: envelope %+v, want %+v", round, mid, l.Envelope, env)
			}
		}
	}
	check("older records")
	for _, r := range old {
		rec, err := tn.summaryRecord(ctx, r.mid)
		if err != nil {
			t.Fatal(err)
		}
		if head, _ := splitRecord(rec); head == nil || tn.msgs[r.mid-1].sumOff == r.old {
			t.Errorf("MID %d: the older record was not stored again with its head", r.mid)
		}
		if was, err := tn.sums.Read(r.old); err != nil || len(bytes.Trim(was, "\x00")) > 0 {
			t.Errorf("MID %d: the record replaced was not wiped (%v)", r.mid, err)
		}
	}
	check("stored again")
	last := snap.MIDs[len(snap.MIDs)-1]
	got, _ := tn.ListHeads(ctx, []uint64{last}, false, false)
	if string(got[0].Head.Header) != "From: bob@acme.example\r\nTo: alice@acme.example\r\nSubject: bare\r\n  folded\r\n\r\n" || got[0].Envelope != nil || got[0].Head.Structure != nil {
		t.Errorf("bare LF message: header %q, envelope %v", got[0].Head.Header, got[0].Envelope)
	}
	rep, err := tn.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Errorf("verify: %+v", rep.Problems)
	}
}
