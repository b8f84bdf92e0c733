package backend

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/mailvault/mailvault/mailparse"
	"github.com/mailvault/mailvault/store"
)

// Source describes where a message came from and where it should go.
type Source struct {
	// Mailbox (an address of an archive mailbox) puts the message into that
	// mailbox's Folder, as an import does. Empty assigns by address: the
	// sender's mailbox gets it in Sent, each recipient's in INBOX.
	Mailbox string
	Folder  string
	// Sender and Recipients are the SMTP envelope of a journaled copy.
	Sender     string
	Recipients []string
	// Journal also files the message in the tenant's journal mailbox.
	Journal bool
	// Received is the INTERNALDATE; zero means now.
	Received time.Time
	// Intake is counted in the metrics.
	Intake Intake
}

// Placement is one folder a message was filed in.
type Placement struct {
	Mailbox string `json:"mailbox"`
	Folder  string `json:"folder"`
	UID     uint32 `json:"uid"`
}

// IngestResult says what happened to one message.
type IngestResult struct {
	MID       uint64      `json:"mid"`
	SHA256    string      `json:"sha256"`
	Size      int64       `json:"size"`
	Duplicate bool        `json:"duplicate"` // the bytes were archived before
	Placed    []Placement `json:"placed"`    // folders newly holding it
}

type target struct {
	mailbox uint64
	folder  string
}

type job struct {
	sum      [32]byte
	size     int64
	bareLFs  uint32 // see msgMeta
	received int64
	summary  *mailparse.Summary
	sealed   []byte // sealed summary record; nil when the message exists already
	// For new content: the raw bytes sealed with the message's own data
	// key (in a pooled buffer), their blob name, and that key.
	blob    []byte
	buf     *[]byte
	blobKey string
	key     store.DataKey
	targets []target
	rcpts   []string
	done    chan error
	res     IngestResult
}

type ingestStats struct {
	archived, duplicates, failed atomic.Int64
	bytes                        atomic.Int64
	last                         atomic.Int64 // unix nanos
}

// Turns orders the commits of a stream of messages that are ingested
// concurrently, as an import does: each message takes a turn in source
// order, and IngestInTurn lets it into the commit queue only after the
// message before it, so that UIDs follow the source while parsing, sealing
// and storing run in parallel. Next is called by one goroutine.
type Turns struct{ last chan struct{} }

// Turn is one message's place in a Turns sequence.
type Turn struct {
	prev <-chan struct{} // closed once the message before is queued or has failed
	mine chan struct{}
}

// NewTurns starts a sequence.
func NewTurns() *Turns {
	c := make(chan struct{})
	close(c)
	return &Turns{last: c}
}

// Next returns the turn of the next message of the source.
func (s *Turns) Next() Turn {
	t := Turn{prev: s.last, mine: make(chan struct{})}
	s.last = t.mine
	return t
}

// Ingest archives one message: it returns only when the message is durable
// (blob, summary and metadata fsynced) or has failed as a whole. Every
// intake (SMTP journal, import, API) goes through here.
func (t *Tenant) Ingest(ctx context.Context, raw []byte, src Source) (IngestResult, error) {
	return t.ingestCounted(ctx, raw, src, nil)
}

// IngestInTurn is Ingest for one message of an ordered stream: the message
// is committed after every message with an earlier turn that succeeds.
// Every turn taken must be passed to IngestInTurn, or the stream stalls.
func (t *Tenant) IngestInTurn(ctx context.Context, raw []byte, src Source, turn Turn) (IngestResult, error) {
	return t.ingestCounted(ctx, raw, src, &turn)
}

func (t *Tenant) ingestCounted(ctx context.Context, raw []byte, src Source, turn *Turn) (IngestResult, error) {
	res, err := t.ingest(ctx, raw, src, turn)
	t.p.met.ingested(src.Intake, len(raw), res, err)
	return res, err
}

func (t *Tenant) ingest(ctx context.Context, raw []byte, src Source, turn *Turn) (IngestResult, error) {
	if turn != nil {
		// A message that fails before the queue passes its turn on too.
		defer turn.pass()
	}
	t.touch()
	if err := t.checkOpen(); err != nil {
		return IngestResult{}, err
	}
	release, err := t.p.space.admit(len(raw))
	if err != nil {
		t.stats.failed.Add(1)
		return IngestResult{}, err
	}
	defer release()
	sum := sha256.Sum256(raw)
	j := &job{sum: sum, size: int64(len(raw)), done: make(chan error, 1)}
	j.received = time.Now().Unix()
	if !src.Received.IsZero() {
		j.received = src.Received.Unix()
	}
	t.mu.RLock()
	mid, exists := t.hashes[sum]
	shredding := exists && t.msgs[mid-1].deleted
	t.mu.RUnlock()
	if shredding {
		return IngestResult{}, fmt.Errorf("message %x is being deleted by retention; retry", sum[:8])
	}

	if q := t.Info().Quotas.Bytes; !exists && q > 0 && t.storedBytes()+j.size > q {
		return IngestResult{}, fmt.Errorf("%w: tenant %q byte quota %d reached", ErrQuota, t.Name, q)
	}
	opt := mailparse.Options{MaxText: t.p.opt.MaxIndexedText}
	if exists {
		opt.MaxText = -1 // only the addresses are needed to place a duplicate
	}
	j.summary = mailparse.Parse(raw, opt)
	// Assign before writing anything, so a message that cannot be placed
	// leaves no blob behind.
	if j.targets, j.rcpts, err = t.assign(ctx, j.summary, src); err != nil {
		t.stats.failed.Add(1)
		return IngestResult{}, err
	}
	if !exists {
		// Messages beyond 4 GiB are refused long before this.
		j.bareLFs = uint32(min(mailparse.BareLFs(raw), math.MaxUint32))
		key := t.seal.BlobKey(sum)
		// Its own data key, so that a deletion can destroy what opens it.
		// The committer stores the blob and the wrapped key once it knows
		// the message is new: two concurrent copies of one content are
		// sealed with different keys, and only the one that becomes the
		// message may be the blob.
		j.key = store.NewDataKey()
		ms, err := t.seal.ForKey(&j.key)
		if err != nil {
			t.stats.failed.Add(1)
			return IngestResult{}, fmt.Errorf("seal message: %w", err)
		}
		j.buf, _ = t.blobBufs.Get().(*[]byte)
		if j.buf == nil {
			j.buf = new([]byte)
		}
		j.blobKey, j.blob = key, ms.AppendSeal((*j.buf)[:0], raw, []byte(key))
		rec, err := encodeSummary(raw, j.summary)
		if err != nil {
			return IngestResult{}, err
		}
		j.sealed = t.seal.SealUncompressed(rec, []byte("summary "+key))
	}
	if turn != nil {
		select {
		case <-turn.prev:
		case <-ctx.Done():
			return IngestResult{}, ctx.Err()
		}
	}
	t.closeMu.RLock()
	if t.closed {
		t.closeMu.RUnlock()
		return IngestResult{}, ErrTenantClosed
	}
	select {
	case t.commitQ <- j:
	case <-ctx.Done():
		t.closeMu.RUnlock()
		return IngestResult{}, ctx.Err()
	}
	t.closeMu.RUnlock()
	if turn != nil {
		// The committer takes jobs in queue order, and so gives UIDs.
		turn.pass()
	}
	// Once queued the commit must be waited for: it may already be on disk.
	if err := <-j.done; err != nil {
		t.stats.failed.Add(1)
		return IngestResult{}, err
	}
	if j.res.Duplicate {
		t.stats.duplicates.Add(1)
	} else {
		t.stats.archived.Add(1)
		t.stats.bytes.Add(j.size)
	}
	t.stats.last.Store(time.Now().UnixNano())
	return j.res, nil
}

// pass lets the next message of the sequence into the commit queue.
func (tn *Turn) pass() {
	if tn.mine != nil {
		close(tn.mine)
		tn.mine = nil
	}
}

func (t *Tenant) checkOpen() error {
	select {
	case <-t.done:
		return ErrTenantClosed
	default:
		return nil
	}
}

func (t *Tenant) storedBytes() int64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.bytes
}

// assign decides the archive mailboxes and folders of a message.
func (t *Tenant) assign(ctx context.Context, s *mailparse.Summary, src Source) ([]target, []string, error) {
	var rcpts []string
	for _, r := range src.Recipients {
		if a, err := NormalizeAddress(r); err == nil {
			rcpts = append(rcpts, a)
		}
	}
	if src.Mailbox != "" {
		addr, err := NormalizeAddress(src.Mailbox)
		if err != nil {
			return nil, nil, err
		}
		t.mu.RLock()
		id, ok := t.addrs[addr]
		t.mu.RUnlock()
		if !ok {
			return nil, nil, fmt.Errorf("archive mailbox %s: %w", addr, ErrNotFound)
		}
		folder, err := CleanFolderName(src.Folder)
		if err != nil {
			return nil, nil, err
		}
		return []target{{id, folder}}, rcpts, nil
	}

	var targets []target
	seen := map[target]bool{}
	add := func(addr, folder string, auto bool) error {
		a, err := NormalizeAddress(addr)
		if err != nil {
			return nil
		}
		t.mu.RLock()
		id, ok := t.addrs[a]
		t.mu.RUnlock()
		if !ok && auto {
			info := t.Info()
			if !info.AutoMailboxes || !info.hasDomain(domainOf(a)) {
				return nil
			}
			mb, err := t.CreateMailbox(ctx, MailboxSpec{Kind: KindUser, Address: a})
			if err != nil && !errors.Is(err, ErrExists) {
				return err
			}
			if mb != nil {
				id, ok = mb.ID, true
			} else {
				t.mu.RLock()
				id, ok = t.addrs[a]
				t.mu.RUnlock()
			}
		}
		if ok && !seen[target{id, folder}] {
			seen[target{id, folder}] = true
			targets = append(targets, target{id, folder})
		}
		return nil
	}
	senders := []string{src.Sender}
	for _, a := range s.Envelope.From {
		if !a.IsGroupMark() {
			senders = append(senders, a.Mailbox+"@"+a.Host)
		}
	}
	for _, a := range senders {
		if err := add(a, FolderSent, true); err != nil {
			return nil, nil, err
		}
	}
	recips := append([]string(nil), rcpts...)
	for _, l := range [][]mailparse.Address{s.Envelope.To, s.Envelope.Cc, s.Envelope.Bcc} {
		for _, a := range l {
			if !a.IsGroupMark() {
				recips = append(recips, a.Mailbox+"@"+a.Host)
			}
		}
	}
	for _, a := range recips {
		if err := add(a, FolderInbox, true); err != nil {
			return nil, nil, err
		}
	}
	if src.Journal || len(targets) == 0 {
		// The journal mailbox keeps every journaled copy, and whatever no
		// mailbox claims, so that nothing archived is out of reach.
		j, err := t.journalMailbox(ctx)
		if err != nil {
			return nil, nil, err
		}
		targets = append(targets, target{j, FolderInbox})
	}
	return targets, rcpts, nil
}

// CleanFolderName normalises an imported folder path: "/"-separated, no
// empty or dot segments; "" and any case of "inbox" mean INBOX.
func CleanFolderName(name string) (string, error) {
	name = strings.Trim(strings.ReplaceAll(name, "\\", "/"), "/")
	if name == "" || strings.EqualFold(name, FolderInbox) {
		return FolderInbox, nil
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" || p == "." || p == ".." || strings.ContainsAny(p, "\x00\r\n*%") {
			return "", fmt.Errorf("%w folder name %q", ErrInvalid, name)
		}
		if i == 0 && strings.EqualFold(p, FolderInbox) {
			p = FolderInbox
		}
		parts[i] = p
	}
	return strings.Join(parts, "/"), nil
}

// committer gathers queued messages into one transaction per batch: one
// fsync of the summary log, the blob directories and the metadata file
// covers them all.
func (t *Tenant) committer() {
	defer t.wg.Done()
	const maxBatch = 512
	batch := make([]*job, 0, maxBatch)
	for {
		select {
		case j := <-t.commitQ:
			batch = append(batch[:0], j)
		case <-t.done:
			// Fail what is still queued; nothing of it was committed.
			for {
				select {
				case j := <-t.commitQ:
					j.done <- ErrTenantClosed
				default:
					return
				}
			}
		}
		deadline := time.After(t.p.opt.CommitDelay)
	gather:
		for len(batch) < maxBatch {
			select {
			case j := <-t.commitQ:
				batch = append(batch, j)
			default:
				if t.p.opt.CommitDelay <= 0 {
					break gather
				}
				select {
				case j := <-t.commitQ:
					batch = append(batch, j)
				case <-deadline:
					break gather
				}
			}
		}
		start := time.Now()
		err := t.commit(batch)
		t.p.met.committed(start, len(batch))
		for _, j := range batch {
			t.releaseBlob(j)
			j.done <- err
		}
		clear(batch) // drop references to message bytes until the next batch
	}
}

// releaseBlob gives a job's sealed blob buffer back to the pool; buffers
// of rare huge messages are left to the collector.
func (t *Tenant) releaseBlob(j *job) {
	if j.buf != nil && cap(j.blob) <= 4<<20 {
		*j.buf = j.blob[:0]
		t.blobBufs.Put(j.buf)
	}
	j.buf, j.blob = nil, nil
}

// messageKeyAAD binds a wrapped message key to its message number.
func messageKeyAAD(dst *[20]byte, mid uint64) []byte {
	copy(dst[:], "message key ")
	binary.BigEndian.PutUint64(dst[12:], mid)
	return dst[:]
}

// commit writes one batch. In-memory state changes only after the metadata
// is durable, so readers never see an unacknowledged message.
func (t *Tenant) commit(batch []*job) (err error) {
	ctx := context.Background()
	t.wmu.Lock()
	defer t.wmu.Unlock()

	// Plan against current state plus what this batch adds.
	type newMsg struct {
		mid uint64
		m   msgMeta
		j   *job
	}
	var (
		news     []newMsg
		newBySum = map[[32]byte]uint64{}
		nextMID  = uint64(len(t.msgs)) + 1
		prev     = t.lastChain
		modseq   = t.modseq + 1
		now      = time.Now()
		newFolds = map[string]*Folder{} // by mailbox/name
		uidNext  = map[uint64]uint32{}
		adds     []struct {
			mid uint64
			mem member
		}
		inFolder = map[[2]uint64]bool{}  // (folder, MID) pairs added in this batch
		touched  = map[uint64]bool{}     // existing mids whose modseq changes
		rcptAdd  = map[uint64][]string{} // envelope recipients each MID gains
	)
	folderID := t.nextFolderID()
	t.mu.RLock()
	for _, j := range batch {
		mid, ok := t.hashes[j.sum]
		if ok && t.msgs[mid-1].deleted {
			// Its bytes are being shredded: it cannot be placed again
			// until they are gone and it arrives as a new message.
			t.mu.RUnlock()
			return fmt.Errorf("message %x is being deleted; retry", j.sum[:8])
		}
		if !ok {
			mid, ok = newBySum[j.sum]
		}
		j.res = IngestResult{SHA256: fmt.Sprintf("%x", j.sum), Size: j.size}
		if ok {
			j.res.Duplicate = true
		} else {
			if j.sealed == nil {
				// Arrived as a duplicate of a message that retention
				// deleted meanwhile: the sender retries, as a new message.
				t.mu.RUnlock()
				return fmt.Errorf("message %x was deleted while it arrived again; retry", j.sum[:8])
			}
			mid = nextMID
			nextMID++
			archived := now.UnixNano()
			m := msgMeta{sum: j.sum, size: j.size, received: j.received, archived: archived, modseq: modseq, bareLFs: j.bareLFs, ownKey: true, parser: mailparse.Version}
			m.chain = chainHash(prev, mid, j.sum, j.size, archived)
			prev = m.chain
			newBySum[j.sum] = mid
			news = append(news, newMsg{mid, m, j})
		}
		j.res.MID = mid
		if len(j.rcpts) > 0 {
			rcptAdd[mid] = append(rcptAdd[mid], j.rcpts...)
		}
		for _, tg := range j.targets {
			mb := t.mailboxes[tg.mailbox]
			if mb == nil {
				continue
			}
			fid, fok := t.folderByNameLocked(tg.mailbox, tg.folder)
			if !fok {
				key := fmt.Sprintf("%d/%s", tg.mailbox, tg.folder)
				nf := newFolds[key]
				if nf == nil {
					nf = &Folder{ID: folderID, Mailbox: tg.mailbox, Name: tg.folder, UIDValidity: uidValidity(now, folderID)}
					if tg.folder == FolderSent {
						nf.Special = `\Sent`
					}
					folderID++
					newFolds[key] = nf
				}
				fid = nf.ID
			}
			if t.memberLocked(mid, fid) || inFolder[[2]uint64{fid, mid}] {
				continue
			}
			inFolder[[2]uint64{fid, mid}] = true
			n, ok := uidNext[fid]
			if !ok {
				n = 1
				if f := t.folders[fid]; f != nil {
					n = f.uidNext
				}
			}
			uidNext[fid] = n + 1
			adds = append(adds, struct {
				mid uint64
				mem member
			}{mid, member{fid, n}})
			if mid <= uint64(len(t.msgs)) {
				touched[mid] = true
			}
			j.res.Placed = append(j.res.Placed, Placement{Mailbox: mb.Address, Folder: tg.folder, UID: n})
		}
	}
	t.mu.RUnlock()

	// Envelope recipients of every copy count, duplicates' too: a second
	// journal copy often names a recipient (a Bcc, an expanded list) the
	// first did not.
	rcpts, err := t.mergedRecipients(rcptAdd)
	if err != nil {
		return err
	}
	for mid := range rcpts {
		if mid <= uint64(len(t.msgs)) {
			touched[mid] = true
		}
	}
	if len(news) == 0 && len(adds) == 0 && len(rcpts) == 0 {
		return nil
	}
	// Durable first: summaries, blob directory entries and the anchor of
	// the state this commit makes (see anchor.go), all in one flush.
	next := t.state
	if len(news) > 0 || len(adds) > 0 {
		next.Time = now.UnixNano()
		next.Messages = nextMID - 1
		next.Chain = prev
		for _, a := range adds {
			next.Placements++
			xorInto(&next.PlaceSum, t.placementHash(a.mem.folder, a.mem.uid, a.mid))
		}
		if err := t.appendAnchor(next); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				t.dropAnchor()
			}
		}()
	}
	if len(news) > 0 {
		var wrapped [store.WrappedKeySize]byte
		var aad [20]byte
		if t.blobsSyncFS {
			for _, n := range news {
				if err := t.blobs.Put(ctx, n.j.blobKey, n.j.blob); err != nil {
					return fmt.Errorf("store message: %w", err)
				}
			}
		} else {
			jobs := make([]*job, len(news))
			for i, n := range news {
				jobs[i] = n.j
			}
			if err := t.putBlobs(ctx, jobs); err != nil {
				return fmt.Errorf("store message: %w", err)
			}
		}
		for _, n := range news {
			w := t.seal.AppendWrapDataKey(wrapped[:0], &n.j.key, messageKeyAAD(&aad, n.mid))
			if err := t.keys.Put(n.mid, w); err != nil {
				return err
			}
		}
		recs := make([][]byte, len(news))
		for i, n := range news {
			recs[i] = n.j.sealed
		}
		offs, err := t.sums.Append(recs)
		if err != nil {
			return err
		}
		for i := range news {
			news[i].m.sumOff = offs[i]
		}
		// The blob store's flush usually covers the summary log and the
		// anchor log too (same filesystem), which makes their own fsyncs
		// nearly free.
		if err := t.blobs.Sync(ctx); err != nil {
			return err
		}
		if err := t.sums.Sync(); err != nil {
			return err
		}
		if err := t.keys.Sync(); err != nil {
			return err
		}
	}
	if len(news) == 0 && len(adds) > 0 || len(news) > 0 && !t.blobsSyncFS {
		// No flush of the packs covered the anchor.
		if err := t.anchors.Sync(); err != nil {
			return err
		}
	}
	existing := map[uint64]msgMeta{}
	t.mu.RLock()
	for mid := range touched {
		m := t.msgs[mid-1]
		m.modseq = modseq
		existing[mid] = m
	}
	t.mu.RUnlock()
	err = t.db.Update(func(tx *buntdb.Tx) error {
		for _, f := range newFolds {
			if err := setJSON(tx, folderKey(f.ID), f); err != nil {
				return err
			}
		}
		for _, n := range news {
			if _, _, err := tx.Set(msgKey(n.mid), encodeMsg(&n.m), nil); err != nil {
				return err
			}
		}
		for mid, list := range rcpts {
			if err := setJSON(tx, rcptKey(mid), list); err != nil {
				return err
			}
		}
		for mid, m := range existing {
			if _, _, err := tx.Set(msgKey(mid), encodeMsg(&m), nil); err != nil {
				return err
			}
		}
		for _, a := range adds {
			if _, _, err := tx.Set(memKey(a.mem.folder, a.mem.uid), fmt.Sprintf("%016x", a.mid), nil); err != nil {
				return err
			}
		}
		for fid, n := range uidNext {
			if _, _, err := tx.Set(fmt.Sprintf("uidnext:%016x", fid), strconv.FormatUint(uint64(n), 10), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit metadata: %w", err)
	}

	t.mu.Lock()
	for _, f := range newFolds {
		t.addFolderLocked(*f)
	}
	for _, n := range news {
		t.msgs = append(t.msgs, n.m)
		t.hashes[n.m.sum] = n.mid
		t.bytes += n.m.size
	}
	for mid := range existing {
		t.msgs[mid-1].modseq = modseq
		for _, mm := range t.msgs[mid-1].members {
			t.folders[mm.folder].changed = modseq
		}
	}
	counts := map[uint64]int{}
	for _, a := range adds {
		f := t.folders[a.mem.folder]
		f.uids = append(f.uids, a.mem.uid)
		f.mids = append(f.mids, a.mid)
		f.uidNext = a.mem.uid + 1
		f.size += t.msgs[a.mid-1].imapSize()
		f.changed = modseq
		m := &t.msgs[a.mid-1]
		m.members = append(m.members, a.mem)
		counts[a.mem.folder] = len(f.uids)
	}
	t.lastChain = prev
	t.modseq = modseq
	t.state = next
	notify := make([]func(uint64, int), 0, len(t.notify))
	for _, fn := range t.notify {
		notify = append(notify, fn)
	}
	t.mu.Unlock()

	for fid, n := range counts {
		for _, fn := range notify {
			fn(fid, n)
		}
	}
	// Hand the batch to the indexer; the index may lag but never loses a
	// message, as it restarts from its watermark.
	for _, n := range news {
		t.queueIndex(indexJob{mid: n.mid, modseq: modseq, summary: n.j.summary})
	}
	for mid := range existing {
		t.queueIndex(indexJob{mid: mid, modseq: modseq})
	}
	return nil
}

// maxParallelPuts bounds the uploads of one commit batch to an object
// store.
const maxParallelPuts = 32

// putBlobs stores the blobs of a commit batch on an object store all at
// once, so that a batch costs about one upload's round trip rather than one
// per message. (Pack files take them one after the other: an append each.)
func (t *Tenant) putBlobs(ctx context.Context, jobs []*job) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	slots := make(chan struct{}, maxParallelPuts)
	for _, j := range jobs {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			if err := t.blobs.Put(ctx, j.blobKey, j.blob); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	return first
}

func uidValidity(now time.Time, folderID uint64) uint32 {
	// Distinct per folder and increasing over time, so a folder re-created
	// under the same name never reuses a UIDVALIDITY.
	return uint32(now.Unix()) + uint32(folderID%1000)
}

func (t *Tenant) folderByNameLocked(mailbox uint64, name string) (uint64, bool) {
	id, ok := t.byName[folderName{mailbox, name}]
	return id, ok
}

// memberLocked reports whether mid is already in folder fid.
func (t *Tenant) memberLocked(mid, fid uint64) bool {
	if mid > uint64(len(t.msgs)) {
		return false
	}
	for _, m := range t.msgs[mid-1].members {
		if m.folder == fid {
			return true
		}
	}
	return false
}

func (t *Tenant) nextFolderID() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.maxFolder + 1
}

func folderKey(id uint64) string  { return fmt.Sprintf("folder:%016x", id) }
func mailboxKey(id uint64) string { return fmt.Sprintf("mbox:%016x", id) }
func rcptKey(mid uint64) string   { return fmt.Sprintf("rcpt:%016x", mid) }
