package backend

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/index"
	"github.com/mailvault/mailvault/mailgen"
	"github.com/mailvault/mailvault/store"
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func openProvider(t testing.TB, dir string) *Provider {
	t.Helper()
	p, err := Open(Options{DataDir: dir, Logger: testLogger(t), CommitDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newTenant creates a tenant with one user who owns alice@<domain>.
func newTenant(t testing.TB, p *Provider, name, domain string) *Tenant {
	t.Helper()
	ctx := context.Background()
	if _, err := p.CreateTenant(ctx, name, []string{domain}, Quotas{}); err != nil {
		t.Fatal(err)
	}
	tn, err := p.Tenant(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tn.CreateUser(ctx, UserSpec{Login: "alice@" + domain, Password: "pw-alice", Mailbox: true}); err != nil {
		t.Fatal(err)
	}
	return tn
}

func corpusDir(t *testing.T) string {
	d := filepath.Join("..", "..", "shared", "corpus", "messages")
	if _, err := os.Stat(d); err != nil {
		t.Skip("real-world corpus not present")
	}
	return d
}

// folderID finds a folder of the user's own mailbox by name.
func folderID(t testing.TB, tn *Tenant, login, name string) uint64 {
	t.Helper()
	for _, mb := range tn.Readable(login) {
		if !mb.Own {
			continue
		}
		f, err := tn.FolderByName(login, mb.ID, name)
		if err != nil {
			t.Fatalf("folder %s of %s: %v", name, login, err)
		}
		return f.ID
	}
	t.Fatalf("%s has no own mailbox", login)
	return 0
}

var messageIDRE = regexp.MustCompile(`(?im)^message-id:[ \t]*<([^>\r\n]+)>`)

// headerMessageID finds the Message-ID in the top-level header only,
// independently of the archive's parser: header = up to the first empty
// line, folded lines joined.
func headerMessageID(raw []byte) []byte {
	hdr := raw
	for _, sep := range [][]byte{[]byte("\r\n\r\n"), []byte("\n\n")} {
		if i := bytes.Index(raw, sep); i >= 0 && i < len(hdr) {
			hdr = raw[:i+len(sep)/2]
		}
	}
	unfolded := regexp.MustCompile(`\r?\n[ \t]+`).ReplaceAll(hdr, []byte(" "))
	m := messageIDRE.FindSubmatch(unfolded)
	if m == nil {
		return nil
	}
	return m[1]
}

// TestCorpusByteExact archives every real-world message into one folder and
// reads each back byte for byte after a restart, and finds each by its
// Message-ID in the index.
func TestCorpusByteExact(t *testing.T) {
	dir := corpusDir(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	p := openProvider(t, data)
	tn := newTenant(t, p, "acme", "acme.example")
	ctx := context.Background()
	want := map[uint32][]byte{}
	var wmu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := tn.Ingest(ctx, raw, Source{Mailbox: "alice@acme.example", Folder: "corpus"})
			if err != nil {
				t.Errorf("%s: %v", e.Name(), err)
				return
			}
			if len(res.Placed) != 1 {
				t.Errorf("%s: placed %d times", e.Name(), len(res.Placed))
				return
			}
			wmu.Lock()
			want[res.Placed[0].UID] = raw
			wmu.Unlock()
		}()
	}
	wg.Wait()
	if len(want) != len(entries) {
		t.Fatalf("archived %d of %d corpus messages", len(want), len(entries))
	}
	if err := tn.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	p = openProvider(t, data)
	defer p.Close()
	tn, err = p.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	fid := folderID(t, tn, "alice@acme.example", "corpus")
	snap, err := tn.Snapshot("alice@acme.example", fid)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.UIDs) != len(want) {
		t.Fatalf("after restart the folder holds %d messages, want %d", len(snap.UIDs), len(want))
	}
	checkedIDs := 0 // messages with a Message-ID, all looked up
	for i, uid := range snap.UIDs {
		got, err := tn.RawMessage(ctx, snap.MIDs[i])
		if err != nil {
			t.Fatalf("uid %d: %v", uid, err)
		}
		if !bytes.Equal(got, want[uid]) {
			t.Fatalf("uid %d: archived bytes differ from the original (%d vs %d bytes)", uid, len(got), len(want[uid]))
		}
		m := headerMessageID(got)
		if m == nil {
			continue
		}
		id := strings.TrimSpace(string(m))
		uids, err := tn.SearchFolder(ctx, "alice@acme.example", fid, index.Header("Message-ID", id))
		if err != nil {
			t.Fatalf("search Message-ID %s: %v", id, err)
		}
		if !containsUID(uids, uid) {
			t.Errorf("message uid %d not found by its Message-ID %q (got %v)", uid, id, uids)
		}
		// HEADER search is substring search: every hit's Message-ID must
		// contain the one searched for.
		for _, u := range uids {
			if !bytes.Contains(bytes.ToLower(headerMessageID(want[u])), bytes.ToLower([]byte(id))) {
				t.Errorf("search for Message-ID %q found uid %d whose Message-ID is %q", id, u, headerMessageID(want[u]))
			}
		}
		checkedIDs++
	}
	if checkedIDs < len(want)*9/10 {
		t.Errorf("only %d of %d messages had a Message-ID to look up", checkedIDs, len(want))
	}
	rep, err := tn.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() || rep.Messages != len(want) {
		t.Fatalf("verify: %d messages, problems %v", rep.Messages, rep.Problems)
	}
}

func containsUID(l []uint32, u uint32) bool {
	for _, x := range l {
		if x == u {
			return true
		}
	}
	return false
}

// TestDedupAcrossMailboxes files one message into three mailboxes (by its
// addresses) and imports it twice more: one blob, one chain entry, three
// placements.
func TestDedupAcrossMailboxes(t *testing.T) {
	p := openProvider(t, t.TempDir())
	defer p.Close()
	tn := newTenant(t, p, "acme", "acme.example")
	ctx := context.Background()
	for _, u := range []string{"bob@acme.example", "carol@acme.example"} {
		if _, err := tn.CreateUser(ctx, UserSpec{Login: u, Password: "x", Mailbox: true}); err != nil {
			t.Fatal(err)
		}
	}
	raw := []byte("From: Alice <alice@acme.example>\r\nTo: bob@acme.example\r\nCc: Carol <CAROL@acme.example>\r\nSubject: dedup\r\nMessage-ID: <dedup-1@acme.example>\r\n\r\nbody\r\n")
	first, err := tn.Ingest(ctx, raw, Source{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || len(first.Placed) != 3 {
		t.Fatalf("first ingest: %+v, want 3 placements", first)
	}
	got := map[string]string{}
	for _, pl := range first.Placed {
		got[pl.Mailbox] = pl.Folder
	}
	want := map[string]string{"alice@acme.example": "Sent", "bob@acme.example": "INBOX", "carol@acme.example": "INBOX"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("placements %v, want %v", got, want)
	}
	// Importing the same bytes again, and into bob's mailbox explicitly,
	// adds nothing: it is already there.
	for _, src := range []Source{{}, {Mailbox: "bob@acme.example"}} {
		again, err := tn.Ingest(ctx, raw, src)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || len(again.Placed) != 0 || again.MID != first.MID {
			t.Fatalf("re-ingest %+v: %+v, want a duplicate with no new placement", src, again)
		}
	}
	st := tn.Stats()
	if st.Messages != 1 || st.Placements != 3 || st.RawBytes != int64(len(raw)) {
		t.Fatalf("stats %+v: want 1 message stored once, 3 placements", st)
	}
	blobs := 0
	tn.blobs.List(ctx, func(string) error { blobs++; return nil })
	if blobs != 1 {
		t.Fatalf("%d blobs stored, want 1", blobs)
	}
	for _, login := range []string{"alice@acme.example", "bob@acme.example", "carol@acme.example"} {
		name := want[login]
		snap, err := tn.Snapshot(login, folderID(t, tn, login, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.MIDs) != 1 || snap.MIDs[0] != first.MID {
			t.Fatalf("%s/%s holds %v, want [%d]", login, name, snap.MIDs, first.MID)
		}
	}
}

// TestVerifyNamesTampering flips a byte of a blob, removes another blob and
// deletes a metadata record, and expects verify to name each.
func TestVerifyNamesTampering(t *testing.T) {
	data := t.TempDir()
	p := openProvider(t, data)
	tn := newTenant(t, p, "acme", "acme.example")
	ctx := context.Background()
	g := mailgen.New(7, []string{"acme.example"}, 5)
	g.AvgSize = 4 << 10
	var sums [][32]byte
	for i := 0; i < 20; i++ {
		m := g.Next()
		if _, err := tn.Ingest(ctx, m.Raw, Source{Mailbox: "alice@acme.example"}); err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sha256.Sum256(m.Raw))
	}
	rep, err := tn.Verify(ctx, nil)
	if err != nil || !rep.Clean() {
		t.Fatalf("fresh archive not clean: %v %+v", err, rep)
	}
	// Flip a byte inside the data of message 4's blob, and remove message
	// 9's blob.
	packs := tn.blobs.(*store.PackBlobs)
	path, off, n, ok := packs.Locate(tn.seal.BlobKey(sums[3]))
	if !ok {
		t.Fatal("blob of message 4 not found")
	}
	if err := tn.blobs.Delete(ctx, tn.seal.BlobKey(sums[8])); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	f.ReadAt(b, off+int64(n/2))
	b[0] ^= 0x01
	f.WriteAt(b, off+int64(n/2))
	f.Close()
	// Remove the record of message 12 behind the archive's back.
	db, err := buntdb.Open(filepath.Join(data, "tenants", "acme", "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *buntdb.Tx) error { _, err := tx.Delete(msgKey(12)); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	p = openProvider(t, data)
	defer p.Close()
	tn, err = p.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	rep, err = tn.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]uint64{}
	for _, pr := range rep.Problems {
		found[pr.Kind] = pr.MID
	}
	want := map[string]uint64{"blob-corrupt": 4, "blob-missing": 9, "record-missing": 12}
	for kind, mid := range want {
		if found[kind] != mid {
			t.Errorf("verify did not report %s for message %d; problems: %+v", kind, mid, rep.Problems)
		}
	}
	if rep.Clean() {
		t.Fatal("verify calls a tampered archive clean")
	}
	// Messages after the removed record are still there and readable.
	if _, err := tn.RawMessage(ctx, 20); err != nil {
		t.Fatalf("message 20 after a removed record: %v", err)
	}
}

// TestTenantIsolation checks that one tenant's users, keys and records give
// no access to another's.
func TestTenantIsolation(t *testing.T) {
	data := t.TempDir()
	p := openProvider(t, data)
	defer p.Close()
	a := newTenant(t, p, "a", "a.example")
	b := newTenant(t, p, "b", "b.example")
	ctx := context.Background()
	raw := []byte("From: x@a.example\r\nTo: alice@a.example\r\nSubject: secret of A\r\n\r\nconfidential\r\n")
	if _, err := a.Ingest(ctx, raw, Source{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Ingest(ctx, raw, Source{Mailbox: "alice@b.example"}); err != nil {
		t.Fatal(err)
	}
	// Same bytes, different tenants: different blob names, different keys.
	sum := sha256.Sum256(raw)
	ka, kb := a.seal.BlobKey(sum), b.seal.BlobKey(sum)
	if ka == kb {
		t.Fatal("blob names are equal across tenants: one tenant could probe another's archive")
	}
	sealedA, err := a.blobs.Get(ctx, ka)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.seal.Open(sealedA, []byte(ka)); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("tenant B's key opened tenant A's blob: %v", err)
	}
	if bytes.Contains(sealedA, []byte("confidential")) {
		t.Fatal("blob stored in clear text")
	}
	// B's user cannot reach A's folders or messages.
	fidA := folderID(t, a, "alice@a.example", FolderInbox)
	if _, err := a.Snapshot("alice@b.example", fidA); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a user of tenant B opened tenant A's folder: %v", err)
	}
	if _, _, err := p.Login(ctx, "alice@a.example", "pw-alice"); err != nil {
		t.Fatal(err)
	}
	if tn, u, err := p.Login(ctx, "alice@b.example", "pw-alice"); err != nil || tn.Name != "b" || u.Login != "alice@b.example" {
		t.Fatalf("login lands in the wrong tenant: %v %v", tn, err)
	}
	if _, _, err := p.Login(ctx, "alice@a.example", "wrong"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("wrong password: %v", err)
	}
	// A domain belongs to one tenant only.
	if err := p.AddDomain(ctx, "b", "a.example"); !errors.Is(err, ErrExists) {
		t.Fatalf("domain of tenant a given to b: %v", err)
	}
	// Each tenant's files sit in its own directory with its own key.
	if _, err := os.Stat(filepath.Join(data, "tenants", "a", "meta.db")); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(mustRead(t, filepath.Join(data, "tenants", "b", "meta.db")), []byte(ka)) {
		t.Fatal("tenant B's metadata mentions tenant A's blob")
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAccessRules covers who reads which archive mailbox.
func TestAccessRules(t *testing.T) {
	p := openProvider(t, t.TempDir())
	defer p.Close()
	tn := newTenant(t, p, "acme", "acme.example")
	ctx := context.Background()
	mk := func(login string, roles ...Role) {
		if _, err := tn.CreateUser(ctx, UserSpec{Login: login, Password: "x", Roles: roles, Mailbox: true}); err != nil {
			t.Fatal(err)
		}
	}
	mk("bob@acme.example")
	mk("admin@acme.example", RoleAdmin)
	mk("cathy@acme.example", RoleCompliance)
	if _, err := tn.CreateMailbox(ctx, MailboxSpec{Kind: KindShared, Address: "sales@acme.example"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.Ingest(ctx, []byte("From: a@b.example\r\nTo: sales@acme.example\r\n\r\nx\r\n"), Source{Journal: true}); err != nil {
		t.Fatal(err)
	}
	names := func(login string) string {
		var out []string
		for _, mb := range tn.Readable(login) {
			out = append(out, mb.Address)
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	if got := names("admin@acme.example"); got != "admin@acme.example" {
		t.Fatalf("admin reads %s; an admin reads only what is granted", got)
	}
	if got := names("bob@acme.example"); got != "bob@acme.example" {
		t.Fatalf("bob reads %s", got)
	}
	if got := names("cathy@acme.example"); got != "cathy@acme.example,journal@acme.example" {
		t.Fatalf("compliance user reads %s", got)
	}
	if err := tn.CreateGroup(ctx, "sales", nil); err != nil {
		t.Fatal(err)
	}
	if err := tn.SetGroupMember(ctx, "sales", "bob@acme.example", true); err != nil {
		t.Fatal(err)
	}
	if err := tn.Grant(ctx, "sales@acme.example", "sales"); err != nil {
		t.Fatal(err)
	}
	if got := names("bob@acme.example"); got != "bob@acme.example,sales@acme.example" {
		t.Fatalf("after the group grant bob reads %s", got)
	}
	if err := tn.Grant(ctx, "journal@acme.example", "bob@acme.example"); err == nil {
		t.Fatal("a journal mailbox was granted to a non-compliance user")
	}
	if err := tn.SetGroupMember(ctx, "sales", "bob@acme.example", false); err != nil {
		t.Fatal(err)
	}
	if got := names("bob@acme.example"); got != "bob@acme.example" {
		t.Fatalf("after leaving the group bob reads %s", got)
	}
	if _, err := tn.StoreFlags(ctx, "bob@acme.example", folderID(t, tn, "bob@acme.example", FolderInbox), []uint32{1}, FlagsAdd, []string{FlagDeleted}); !errors.Is(err, ErrDenied) {
		t.Fatalf("\\Deleted accepted: %v", err)
	}
	if bad, err := tn.VerifyAudit(); err != nil || len(bad) != 0 {
		t.Fatalf("audit chain: %v %v", bad, err)
	}
}

// TestFlagOverlayLogged: a flag change made through IMAP's StoreFlags moves
// the user's flag change log that JMAP states are built on, and never
// touches the archived message or another user's flags.
func TestFlagOverlayLogged(t *testing.T) {
	p := openProvider(t, t.TempDir())
	defer p.Close()
	tn := newTenant(t, p, "acme", "acme.example")
	ctx := context.Background()
	if _, err := tn.CreateUser(ctx, UserSpec{Login: "bob@acme.example", Password: "x", Mailbox: true}); err != nil {
		t.Fatal(err)
	}
	if err := tn.Grant(ctx, "alice@acme.example", "bob@acme.example"); err != nil {
		t.Fatal(err)
	}
	raw := []byte("From: x@y.example\r\nTo: alice@acme.example\r\n\r\nhi\r\n")
	res, err := tn.Ingest(ctx, raw, Source{})
	if err != nil {
		t.Fatal(err)
	}
	fid := folderID(t, tn, "alice@acme.example", FolderInbox)
	before, _ := tn.FlagSeq("alice@acme.example")
	got, err := tn.StoreFlags(ctx, "alice@acme.example", fid, []uint32{res.Placed[0].UID}, FlagsAdd, []string{`\Flagged`, "$label1"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got[res.Placed[0].UID]) != `[$label1 \Flagged \Seen]` {
		t.Fatalf("flags after STORE: %v", got)
	}
	after, _ := tn.FlagSeq("alice@acme.example")
	mids, _, ok, err := tn.FlagChanges("alice@acme.example", before)
	if err != nil || !ok || after != before+1 || len(mids) != 1 || mids[0] != res.MID {
		t.Fatalf("flag log: seq %d -> %d, changes %v ok=%v err=%v", before, after, mids, ok, err)
	}
	bobs, err := tn.Flags("bob@acme.example", fid, []uint32{res.Placed[0].UID})
	if err != nil || fmt.Sprint(bobs[res.Placed[0].UID]) != `[\Seen]` {
		t.Fatalf("bob's flags changed with alice's: %v %v", bobs, err)
	}
	if back, err := tn.RawMessage(ctx, res.MID); err != nil || !bytes.Equal(back, raw) {
		t.Fatalf("archived message changed by a flag: %v", err)
	}
}
