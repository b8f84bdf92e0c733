package backend

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/index"
	"github.com/mailvault/mailvault/store"
)

// Tenant is one customer organisation, sealed off from every other: its own
// data key, metadata file, blob directory, summary log and index.
type Tenant struct {
	Name string

	p     *Provider
	log   *slog.Logger
	dir   string
	db    *buntdb.DB
	seal  *store.Sealer
	blobs store.Blobs
	// blobsSyncFS: the blob store's Sync flushes the tenant's filesystem
	// (syncfs), which makes the logs beside it durable too.
	blobsSyncFS bool
	sums        *store.RecordLog
	keys        *store.KeySlots // wrapped message keys by MID
	ix          *index.Index

	infoMu sync.Mutex
	info   *TenantInfo

	// wmu serialises writers (commit batches and administrative changes) so
	// that id and UID allocation sees a stable state; mu guards the
	// in-memory state for readers and is held only to apply a finished
	// write.
	wmu       sync.Mutex
	mu        sync.RWMutex
	msgs      []msgMeta // by MID-1; MIDs are dense and double as the chain sequence
	hashes    map[[32]byte]uint64
	folders   map[uint64]*folderState
	byName    map[folderName]uint64
	maxFolder uint64
	maxMbox   uint64
	mailboxes map[uint64]*Mailbox
	addrs     map[string]uint64 // every primary and alias address -> mailbox
	users     map[string]*User
	groups    map[string]*Group
	modseq    uint64
	lastChain [32]byte
	bytes     int64
	notify    map[uint64]func(folder uint64, count int)
	watchSeq  uint64

	// anchors holds the sealed state before each commit (see anchor.go);
	// state is the state of the committed records now.
	anchors   *store.FixedLog
	state     anchor
	placeKey  [32]byte
	integrity []Problem // found by the checks at open; verify reports them

	commitQ  chan *job
	blobBufs sync.Pool // *[]byte: sealed blobs on their way to the committer
	indexQ   chan indexJob
	ixs      indexState
	lastUse  atomic.Int64
	done     chan struct{}
	wg       sync.WaitGroup
	closeMu  sync.RWMutex // held for reading while a job is queued, so none is queued after close
	closed   bool
	holders  atomic.Int64
	stats    ingestStats

	// reparsing is set while the summary pass runs (reparse.go);
	// outdatedLeft is what it has left, for scrapes.
	reparsing    atomic.Bool
	outdatedLeft atomic.Int64

	// retGen changes with every change of policies or holds: a deletion
	// judges again when it moved. runMu lets one deletion run at a time.
	retGen       atomic.Uint64
	runMu        sync.Mutex
	runProgress  atomic.Pointer[RetentionProgress]
	deletedCount int // messages deleted by retention (guarded by mu)
	// inPlace is held for reading by a backup while it copies the files,
	// for writing while a deletion destroys bytes in them in place.
	inPlace sync.RWMutex
	// staleSums are summary records replaced but not wiped yet (a backup
	// was copying the log); staleKeys the pending-wipe records in meta.db
	// that list them.
	staleMu   sync.Mutex
	staleSums []int64
	staleKeys []string
	// summariesPointed, when set (by tests), runs between the transaction
	// that points message records at new summaries and the wipe of the
	// records they replace.
	summariesPointed func()
	// keysDestroyed, when set (by tests), runs between the destruction of
	// deleted messages' keys and the shredding of their bytes.
	keysDestroyed func()
	tkeys         threadKeys  // made on first use, see ThreadKeys
	renders       renderCache // see Rendered
}

type folderName struct {
	mailbox uint64
	name    string
}

type member struct {
	folder uint64
	uid    uint32
}

// msgMeta is the in-memory record of one unique message; kept small, as
// there is one per archived message.
type msgMeta struct {
	sum      [32]byte
	chain    [32]byte
	size     int64
	received int64 // unix seconds, INTERNALDATE
	archived int64 // unix nanoseconds, when it entered the chain
	sumOff   int64 // offset of the sealed summary in the summary log
	modseq   uint64
	members  []member
	// bareLFs counts the line feeds without CR before them; IMAP presents
	// the message with CRLF, size+bareLFs bytes. Beside missing it fits
	// in what would be padding.
	bareLFs uint32
	// parser is the mailparse.Version that derived the summary and
	// bareLFs from the message, 0 for records stored before versions
	// existed; an older one is derived again (see reparse.go).
	parser  uint8
	missing bool // the metadata record is gone (only verify looks at it)
	deleted bool // removed by retention: a deletion record keeps its place in the chain
	// ownKey: the blob is sealed with the message's own data key, kept
	// wrapped in the key file (keys.dat); else with the tenant's key, as
	// every message archived before message keys existed.
	ownKey bool
}

// imapSize is the size of the message as IMAP presents it, with CRLF.
func (m *msgMeta) imapSize() int64 { return m.size + int64(m.bareLFs) }

type folderState struct {
	Folder
	uids    []uint32 // ascending
	mids    []uint64 // parallel to uids
	uidNext uint32
	size    int64
	removed uint64 // modseq of the last deletion of a placement here (JMAP states, marks)
	// changed is the modseq of the last commit that added, changed or
	// removed a member: the base of IMAP's HIGHESTMODSEQ (modseq.go).
	changed uint64
}

func openTenant(ctx context.Context, p *Provider, info *TenantInfo, key []byte) (*Tenant, error) {
	dir := p.tenantDir(info.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	seal, err := store.NewSealer(key)
	if err != nil {
		return nil, err
	}
	t := &Tenant{
		Name: info.Name, p: p, log: p.log.With("tenant", info.Name), dir: dir, seal: seal, info: info,
		hashes: map[[32]byte]uint64{}, folders: map[uint64]*folderState{}, byName: map[folderName]uint64{}, mailboxes: map[uint64]*Mailbox{},
		addrs: map[string]uint64{}, users: map[string]*User{}, groups: map[string]*Group{}, notify: map[uint64]func(uint64, int){},
		commitQ: make(chan *job, 1024), indexQ: make(chan indexJob, 4096), done: make(chan struct{}),
	}
	t.placeKey = seal.DeriveKey("placements")
	t.touch()
	ok := false
	defer func() {
		if !ok {
			t.closeFiles()
		}
	}()
	if t.blobs, err = p.openBlobs(ctx, dir, info.Name, t.log); err != nil {
		return nil, err
	}
	_, t.blobsSyncFS = t.blobs.(*store.PackBlobs)
	if err := restoreCompaction(dir); err != nil {
		return nil, err
	}
	if t.db, err = store.OpenKV(filepath.Join(dir, "meta.db")); err != nil {
		return nil, err
	}
	if t.sums, err = store.OpenRecordLog(filepath.Join(dir, "summaries.log")); err != nil {
		return nil, err
	}
	if t.keys, err = store.OpenKeySlots(filepath.Join(dir, "keys.dat")); err != nil {
		return nil, err
	}
	if t.ix, err = index.Open(filepath.Join(dir, "index"), t.log); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := t.load(); err != nil {
		return nil, err
	}
	if err := t.finishWipes(); err != nil {
		return nil, err
	}
	if err := t.finishShreds(ctx); err != nil {
		return nil, err
	}
	ok = true
	t.wg.Add(3)
	go t.committer()
	go t.indexer()
	go func() {
		defer t.wg.Done()
		rctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			<-t.done
			cancel()
		}()
		t.resumeRun(rctx)
	}()
	t.log.Info("tenant opened", "messages", len(t.msgs), "mailboxes", len(t.mailboxes), "took", time.Since(start).Round(time.Millisecond))
	t.startReparse()
	return t, nil
}

func chainGenesis(tenant string) [32]byte {
	return sha256.Sum256([]byte("mailvault chain " + tenant))
}

// chainHash links a message into the tenant's hash chain.
func chainHash(prev [32]byte, mid uint64, sum [32]byte, size int64, archived int64) [32]byte {
	var b [32 + 8 + 32 + 8 + 8]byte
	copy(b[:32], prev[:])
	binary.BigEndian.PutUint64(b[32:], mid)
	copy(b[40:72], sum[:])
	binary.BigEndian.PutUint64(b[72:], uint64(size))
	binary.BigEndian.PutUint64(b[80:], uint64(archived))
	return sha256.Sum256(b[:])
}

func msgKey(mid uint64) string { return fmt.Sprintf("msg:%016x", mid) }
func memKey(folder uint64, uid uint32) string {
	return fmt.Sprintf("mem:%016x:%08x", folder, uid)
}

var b64 = base64.RawURLEncoding

// encodeMsg is the stored form of msgMeta (members are stored as mem: keys).
// A deleted message's record starts with "D": it keeps the fields the hash
// chain covers, so the chain still verifies across it. A message with its
// own data key starts with "K", one sealed with the tenant's key with "1".
func encodeMsg(m *msgMeta) string {
	tag := "1 "
	switch {
	case m.deleted:
		tag = "D "
	case m.ownKey:
		tag = "K "
	}
	return tag + b64.EncodeToString(m.sum[:]) + " " + strconv.FormatInt(m.size, 10) + " " +
		strconv.FormatInt(m.received, 10) + " " + strconv.FormatInt(m.archived, 10) + " " +
		b64.EncodeToString(m.chain[:]) + " " + strconv.FormatInt(m.sumOff, 10) + " " +
		strconv.FormatUint(m.modseq, 10) + derivedFields(m)
}

// derivedFields are the optional last fields of a message record: the
// bare-LF count and the parser version that derived it and the summary.
// Records written before the version existed have the count alone, or
// neither (a count of 0, version 0).
func derivedFields(m *msgMeta) string {
	if m.parser == 0 && m.bareLFs == 0 {
		return ""
	}
	s := " " + strconv.FormatUint(uint64(m.bareLFs), 10)
	if m.parser == 0 {
		return s
	}
	return s + " " + strconv.FormatUint(uint64(m.parser), 10)
}

func decodeMsg(s string) (msgMeta, error) {
	var m msgMeta
	f := strings.Fields(s)
	if len(f) < 8 || len(f) > 10 || f[0] != "1" && f[0] != "D" && f[0] != "K" {
		return m, fmt.Errorf("bad message record %q", s)
	}
	if len(f) >= 9 {
		n, err := strconv.ParseUint(f[8], 10, 32)
		if err != nil {
			return m, fmt.Errorf("bad message record %q", s)
		}
		m.bareLFs = uint32(n)
	}
	if len(f) == 10 {
		v, err := strconv.ParseUint(f[9], 10, 8)
		if err != nil || v == 0 {
			return m, fmt.Errorf("bad message record %q", s)
		}
		m.parser = uint8(v)
	}
	sum, err1 := b64.DecodeString(f[1])
	chain, err2 := b64.DecodeString(f[5])
	var err3, err4, err5, err6, err7 error
	m.size, err3 = strconv.ParseInt(f[2], 10, 64)
	m.received, err4 = strconv.ParseInt(f[3], 10, 64)
	m.archived, err5 = strconv.ParseInt(f[4], 10, 64)
	m.sumOff, err6 = strconv.ParseInt(f[6], 10, 64)
	m.modseq, err7 = strconv.ParseUint(f[7], 10, 64)
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7); err != nil || len(sum) != 32 || len(chain) != 32 {
		return m, fmt.Errorf("bad message record %q", s)
	}
	copy(m.sum[:], sum)
	copy(m.chain[:], chain)
	m.deleted = f[0] == "D"
	m.ownKey = f[0] == "K"
	return m, nil
}

// load reads the metadata into memory and repairs what a torn final commit
// (power loss in the middle of a write) can leave: records after a gap in
// the message sequence and memberships of messages that do not exist. Such
// records were never acknowledged, as acknowledgement follows the fsync.
func (t *Tenant) load() error {
	byMID := map[uint64]msgMeta{}
	var maxMID uint64
	type mem struct {
		folder, mid uint64
		uid         uint32
		key         string
	}
	var mems []mem
	last, prev, anchors, err := t.openAnchors()
	if err != nil {
		return fmt.Errorf("open anchor log: %w", err)
	}
	var lastAudit string
	anchored := false
	var removed [][2]uint64 // folder, modseq of its last deletion
	err = t.db.View(func(tx *buntdb.Tx) error {
		var ierr error
		tx.Ascend("", func(k, v string) bool {
			kind, rest, _ := strings.Cut(k, ":")
			switch kind {
			case "msg":
				mid, err := strconv.ParseUint(rest, 16, 64)
				if err != nil {
					ierr = fmt.Errorf("key %q: %w", k, err)
					return false
				}
				m, err := decodeMsg(v)
				if err != nil {
					ierr = err
					return false
				}
				byMID[mid] = m
				maxMID = max(maxMID, mid)
			case "mem":
				fs, us, _ := strings.Cut(rest, ":")
				f, err1 := strconv.ParseUint(fs, 16, 64)
				u, err2 := strconv.ParseUint(us, 16, 32)
				mid, err3 := strconv.ParseUint(v, 16, 64)
				if err := errors.Join(err1, err2, err3); err != nil {
					ierr = fmt.Errorf("key %q: %w", k, err)
					return false
				}
				mems = append(mems, mem{f, mid, uint32(u), k})
			case "mbox":
				var mb Mailbox
				if ierr = json.Unmarshal([]byte(v), &mb); ierr != nil {
					return false
				}
				t.putMailboxLocked(&mb)
			case "folder":
				var f Folder
				if ierr = json.Unmarshal([]byte(v), &f); ierr != nil {
					return false
				}
				t.addFolderLocked(f)
			case "user":
				var u User
				if ierr = json.Unmarshal([]byte(v), &u); ierr != nil {
					return false
				}
				t.users[u.Login] = &u
			case "group":
				var g Group
				if ierr = json.Unmarshal([]byte(v), &g); ierr != nil {
					return false
				}
				t.groups[g.Name] = &g
			case "audit":
				lastAudit = v // keys ascend: the last one seen is the newest
			case "anchors":
				anchored = true
			case "removed":
				if id, err := strconv.ParseUint(rest, 16, 64); err == nil {
					removed = append(removed, [2]uint64{id, parseUintOr0(v)})
				}
			}
			return true
		})
		return ierr
	})
	if err != nil {
		return fmt.Errorf("load metadata: %w", err)
	}

	var drop []string
	keepTo, tornFrom, pending := t.checkMessages(byMID, maxMID, last, prev, anchors, anchored)
	t.msgs = make([]msgMeta, 0, max(len(byMID), int(keepTo)))
	var missing []uint64
	t.lastChain = chainGenesis(t.Name)
	for mid := uint64(1); mid <= max(keepTo, maxMID); mid++ {
		m, ok := byMID[mid]
		if mid >= tornFrom {
			if ok {
				drop = append(drop, msgKey(mid))
			}
			continue
		}
		if !ok {
			// A record missing in the middle of the chain, or of the
			// anchored count at its end, was removed by someone: keep the
			// slot so verify names it.
			missing = append(missing, mid)
			m = msgMeta{missing: true}
		}
		t.msgs = append(t.msgs, m)
		switch {
		case m.deleted:
			t.deletedCount++
			t.lastChain = m.chain
		case !m.missing:
			t.hashes[m.sum] = mid
			t.bytes += m.size
			t.lastChain = m.chain
		}
		t.modseq = max(t.modseq, m.modseq)
	}
	if len(missing) > 0 {
		t.log.Error("message records missing: the archive was altered; run verify", "records", len(missing), "first_mid", missing[0], "last_mid", missing[len(missing)-1])
	}
	if len(drop) > 0 {
		t.log.Warn("dropped unacknowledged messages of a torn final commit", "from_mid", tornFrom, "records", len(drop))
	}
	if n := uint64(len(t.msgs)); n > 0 && t.msgs[n-1].missing {
		// The records at the end were removed; the anchors know the head.
		for _, a := range []anchor{last, prev} {
			if a.Messages == n {
				t.lastChain = a.Chain
			}
		}
	}
	st := anchor{Messages: uint64(len(t.msgs)), Chain: t.lastChain}
	for _, mm := range mems {
		f := t.folders[mm.folder]
		if mm.mid == 0 || mm.mid > uint64(len(t.msgs)) || f == nil {
			drop = append(drop, mm.key)
			continue
		}
		st.Placements++
		xorInto(&st.PlaceSum, t.placementHash(mm.folder, mm.uid, mm.mid))
		if t.msgs[mm.mid-1].missing || t.msgs[mm.mid-1].deleted {
			continue
		}
		m := &t.msgs[mm.mid-1]
		m.members = append(m.members, member{mm.folder, mm.uid})
		f.uids = append(f.uids, mm.uid) // keys ascend, so UIDs come sorted
		f.mids = append(f.mids, mm.mid)
		f.size += m.imapSize()
		f.uidNext = max(f.uidNext, mm.uid+1)
		f.changed = max(f.changed, m.modseq)
	}
	if lastAudit != "" {
		var e AuditEntry
		if err := json.Unmarshal([]byte(lastAudit), &e); err != nil {
			return fmt.Errorf("load audit log: %w", err)
		}
		st.Audit, st.AuditHash = e.Seq, auditHashBytes(e.Hash)
	}
	t.state = st
	for _, r := range removed {
		if f := t.folders[r[0]]; f != nil {
			f.removed = r[1]
			f.changed = max(f.changed, r[1])
		}
	}
	t.checkAnchoredState(st, last, prev, anchors, pending)
	if len(drop) > 0 {
		t.log.Warn("repairing metadata", "records_removed", len(drop))
		err := t.db.Update(func(tx *buntdb.Tx) error {
			for _, k := range drop {
				if _, err := tx.Delete(k); err != nil && err != buntdb.ErrNotFound {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("repair metadata: %w", err)
		}
	}
	// The UID counter of a folder must never go back, even if its newest
	// messages were dropped above: keep a floor record per folder.
	err = t.db.View(func(tx *buntdb.Tx) error {
		return tx.AscendKeys("uidnext:*", func(k, v string) bool {
			id, err1 := strconv.ParseUint(strings.TrimPrefix(k, "uidnext:"), 16, 64)
			n, err2 := strconv.ParseUint(v, 10, 32)
			if f := t.folders[id]; f != nil && err1 == nil && err2 == nil {
				f.uidNext = max(f.uidNext, uint32(n))
			}
			return true
		})
	})
	if err != nil {
		return err
	}
	return t.startAnchors()
}

// tornTail finds where a torn final commit starts: a gap in the MID
// sequence after which every record carries the same, newest archive time
// (one commit batch shares one timestamp). Anything else is not a crash
// artefact and is left for verify to report. It returns maxMID+1 when the
// tail is whole.
func (t *Tenant) tornTail(byMID map[uint64]msgMeta, maxMID uint64) uint64 {
	var gap uint64
	for mid := uint64(1); mid <= maxMID; mid++ {
		if _, ok := byMID[mid]; !ok {
			gap = mid
			break
		}
	}
	if gap == 0 {
		return maxMID + 1
	}
	batch := byMID[maxMID].archived
	for mid := gap + 1; mid <= maxMID; mid++ {
		if m, ok := byMID[mid]; ok && m.archived != batch {
			return maxMID + 1
		}
	}
	// The torn batch may also have left records before the gap.
	start := gap
	for start > 1 {
		m, ok := byMID[start-1]
		if !ok || m.archived != batch {
			break
		}
		start--
	}
	return start
}

func parseUintOr0(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

func (t *Tenant) touch() { t.lastUse.Store(time.Now().UnixNano()) }

// Hold keeps the tenant open (not closed for idleness) until release is
// called; long-lived sessions such as IMAP connections hold their tenant.
func (t *Tenant) Hold() (release func()) {
	t.holders.Add(1)
	var once sync.Once
	return func() { once.Do(func() { t.holders.Add(-1); t.touch() }) }
}

func (t *Tenant) idleSince(d time.Duration) bool {
	if len(t.commitQ) > 0 || len(t.indexQ) > 0 || t.holders.Load() > 0 {
		return false
	}
	t.mu.RLock()
	watchers := len(t.notify)
	t.mu.RUnlock()
	return watchers == 0 && time.Since(time.Unix(0, t.lastUse.Load())) > d
}

func (t *Tenant) setInfo(info *TenantInfo) {
	t.infoMu.Lock()
	t.info = info
	t.infoMu.Unlock()
}

// Info returns the tenant's registry entry.
func (t *Tenant) Info() TenantInfo {
	t.infoMu.Lock()
	defer t.infoMu.Unlock()
	return *t.info
}

// Closed is closed when the tenant closes (idle, or with the provider):
// front ends release what they keep of the tenant then.
func (t *Tenant) Closed() <-chan struct{} { return t.done }

func (t *Tenant) close() error {
	t.closeMu.Lock()
	if t.closed {
		t.closeMu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	t.closeMu.Unlock()
	t.wg.Wait()
	return errors.Join(t.closeAnchors(), t.closeFiles())
}

func (t *Tenant) closeFiles() error {
	var errs []error
	if t.ix != nil {
		errs = append(errs, t.ix.Close())
	}
	if t.sums != nil {
		errs = append(errs, t.sums.Close())
	}
	if t.keys != nil {
		errs = append(errs, t.keys.Close())
	}
	if t.db != nil {
		errs = append(errs, t.db.Close())
	}
	if t.blobs != nil {
		errs = append(errs, t.blobs.Close())
	}
	if t.anchors != nil {
		errs = append(errs, t.anchors.Close())
	}
	t.seal.Close()
	return errors.Join(errs...)
}

// sortedFolderIDs returns folder ids of a mailbox ordered by name.
func (t *Tenant) sortedFolders(mailbox uint64) []*folderState {
	var out []*folderState
	for _, f := range t.folders {
		if f.Mailbox == mailbox {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return folderLess(out[i].Name, out[j].Name) })
	return out
}

// folderLess puts INBOX first, then names in order.
func folderLess(a, b string) bool {
	if (a == FolderInbox) != (b == FolderInbox) {
		return a == FolderInbox
	}
	return a < b
}

func (t *Tenant) addFolderLocked(f Folder) *folderState {
	fs := &folderState{Folder: f, uidNext: 1}
	t.folders[f.ID] = fs
	t.byName[folderName{f.Mailbox, f.Name}] = f.ID
	t.maxFolder = max(t.maxFolder, f.ID)
	return fs
}

func (t *Tenant) putMailboxLocked(mb *Mailbox) {
	if old := t.mailboxes[mb.ID]; old != nil {
		for _, a := range old.Addresses() {
			delete(t.addrs, a)
		}
	}
	t.mailboxes[mb.ID] = mb
	for _, a := range mb.Addresses() {
		t.addrs[a] = mb.ID
	}
	t.maxMbox = max(t.maxMbox, mb.ID)
}
