package index

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blugelabs/bluge"
	blugeindex "github.com/blugelabs/bluge/index"
	"github.com/blugelabs/bluge/search"
	"github.com/blugelabs/bluge/search/searcher"
)

// maxExpansion bounds how many index terms one prefix may stand for. It is
// also bluge's process-wide searcher.DisjunctionMaxClauseCount, set by the
// first Open.
const maxExpansion = 1024

// setClauseCap sets bluge's package variable once, before any index of this
// process can search.
var setClauseCap sync.Once

const (
	watermarkFile = "watermark" // inside the bluge directory, which ignores it
	formatFile    = "format"
	vocabGenFile  = "vocabgen" // see vocabMark
	// indexFormat changes when documents gain what searches rely on (2: the
	// vocabulary for substrings, body positions, sent days). An index of
	// another format is fed again from the archive.
	indexFormat = "2"
)

// ErrClosed is returned after Close.
var ErrClosed = errors.New("index closed")

// ErrPaused is returned by writes while the index is paused.
var ErrPaused = errors.New("index paused")

// ErrNotFound is returned by Snippet for a message that is not indexed.
var ErrNotFound = errors.New("message not indexed")

// Index is the full-text index of one tenant. It is safe for concurrent use;
// writes are serialized.
type Index struct {
	dir string
	log *slog.Logger
	an  *analyzers

	writeMu   sync.Mutex // serializes batches and the watermark file
	watermark atomic.Uint64
	vocabGen  atomic.Uint64 // see vocabMark

	cfg    bluge.Config
	mu     sync.RWMutex // guards w, paused and closed
	w      *bluge.Writer
	paused bool // w is closed until Resume; searches open the files read-only
	closed bool
}

// Open opens the index in dir, creating it if missing. Bluge locks the
// directory: a second Open of the same directory fails.
func Open(dir string, log *slog.Logger) (*Index, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	setClauseCap.Do(func() { searcher.DisjunctionMaxClauseCount = maxExpansion })
	cfg := bluge.DefaultConfig(dir)
	cfg.Logger = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	w, err := bluge.OpenWriter(cfg)
	if err != nil {
		return nil, fmt.Errorf("open index %q: %w", dir, err)
	}
	ix := &Index{dir: dir, log: log, an: newAnalyzers(), cfg: cfg, w: w}
	wm, err := readWatermark(filepath.Join(dir, watermarkFile))
	if err != nil {
		// Safe: the caller re-feeds from 0, and Put replaces documents.
		log.Warn("index watermark unreadable, starting from 0", "dir", dir, "err", err)
	}
	if f, _ := os.ReadFile(filepath.Join(dir, formatFile)); string(f) != indexFormat {
		if wm > 0 {
			log.Info("index of an older format: indexing the archive again", "dir", dir)
			if err := writeWatermark(filepath.Join(dir, watermarkFile), 0); err != nil {
				w.Close()
				return nil, err
			}
			wm = 0
		}
		if err := os.WriteFile(filepath.Join(dir, formatFile), []byte(indexFormat), 0o600); err != nil {
			w.Close()
			return nil, fmt.Errorf("open index %q: %w", dir, err)
		}
	}
	ix.watermark.Store(wm)
	gen, err := readWatermark(filepath.Join(dir, vocabGenFile))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open index %q: %w", dir, err)
	}
	ix.vocabGen.Store(gen)
	return ix, nil
}

// Close closes the index; searches running on a snapshot finish.
func (ix *Index) Close() error {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return ErrClosed
	}
	ix.closed = true
	if ix.w == nil {
		return nil
	}
	err := ix.w.Close()
	ix.w = nil
	if err != nil {
		return fmt.Errorf("close index %q: %w", ix.dir, err)
	}
	return nil
}

// Pause closes the writer: no segment is written and no merge runs until
// Resume, and bluge's memory for segments not yet persisted (a batch that
// failed on a full disk) is released. Commit and Delete return ErrPaused;
// searches read the last persisted state, opening its files per search.
// What a failed batch had added is gone, so the caller re-feeds from the
// watermark after Resume.
func (ix *Index) Pause() error {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return ErrClosed
	}
	if ix.paused {
		return nil
	}
	err := ix.w.Close()
	ix.w, ix.paused = nil, true
	if err != nil {
		return fmt.Errorf("pause index %q: %w", ix.dir, err)
	}
	return nil
}

// Resume reopens the writer after Pause.
func (ix *Index) Resume() error {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return ErrClosed
	}
	if !ix.paused {
		return nil
	}
	w, err := bluge.OpenWriter(ix.cfg)
	if err != nil {
		return fmt.Errorf("resume index %q: %w", ix.dir, err)
	}
	ix.w, ix.paused = w, false
	return nil
}

// Paused reports whether the index is paused.
func (ix *Index) Paused() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.paused
}

// Watermark returns the upTo of the last successful Put, persisted across
// restarts: everything the caller fed up to it is indexed.
func (ix *Index) Watermark() uint64 { return ix.watermark.Load() }

// analyzedDoc is a document Put already analyzed: bluge's workers run
// Analyze in goroutines of their own, where a panic could not be recovered.
type analyzedDoc struct {
	bluge.Document
	id bluge.Identifier
}

func (analyzedDoc) Analyze() {}

// Put indexes docs in one batch, replacing documents with the same MID, then
// records upTo as the watermark. Of docs with equal MIDs the last one counts.
func (ix *Index) Put(ctx context.Context, docs []Doc, upTo uint64) error {
	b, err := ix.Prepare(ctx, docs)
	if err != nil {
		return err
	}
	return ix.Commit(ctx, b, upTo)
}

// Prepared is a batch of documents analyzed by Prepare, for Commit.
type Prepared struct {
	docs    []analyzedDoc
	vocab   *analyzedDoc // nil without docs
	deletes []uint64
}

// Len is the number of documents in the batch.
func (b *Prepared) Len() int { return len(b.docs) + len(b.deletes) }

// Delete adds the removal of the documents of mids to the batch; Commit
// applies them after its updates.
func (b *Prepared) Delete(mids ...uint64) { b.deletes = append(b.deletes, mids...) }

// Prepare analyzes docs on all cores. It may run while Commit writes an
// earlier batch: an indexer that pipelines the two keeps both cores busy
// without splitting batches into more segments for the merger.
func (ix *Index) Prepare(ctx context.Context, docs []Doc) (*Prepared, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	built, vocab, err := ix.analyze(dedupByMID(docs))
	if err != nil {
		return nil, err
	}
	return &Prepared{docs: built, vocab: vocab}, nil
}

// Commit writes a prepared batch as one segment, replacing documents with
// the same MIDs, then records upTo as the watermark. Commits must come in
// the order of their upTo; a failed Commit may be retried with the same
// batch.
func (ix *Index) Commit(ctx context.Context, b *Prepared, upTo uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	ix.mu.RLock()
	err := ix.writableLocked()
	ix.mu.RUnlock()
	if err != nil {
		return err
	}
	if len(b.docs) > 0 || len(b.deletes) > 0 {
		batch := bluge.NewBatch()
		for _, d := range b.docs {
			batch.Update(d.id, d)
		}
		if b.vocab != nil {
			batch.Update(b.vocab.id, b.vocab)
		}
		for _, m := range b.deletes {
			batch.Delete(docID(m))
		}
		if err := ix.batch(batch); err != nil {
			return fmt.Errorf("index %d messages: %w", len(b.docs), err)
		}
	}
	if err := writeWatermark(filepath.Join(ix.dir, watermarkFile), upTo); err != nil {
		return err
	}
	ix.watermark.Store(upTo)
	return nil
}

// Rewind sets the watermark back, so that the caller re-feeds everything
// after upTo (a rebuild from the archive). Documents stay searchable until
// they are replaced.
func (ix *Index) Rewind(upTo uint64) error {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	if upTo >= ix.watermark.Load() {
		return nil
	}
	if upTo == 0 {
		// A rebuild writes the vocabulary again in a new generation:
		// without this, it would keep the words of deleted messages for
		// good.
		gen := ix.vocabGen.Load() + 1
		if err := writeWatermark(filepath.Join(ix.dir, vocabGenFile), gen); err != nil {
			return err
		}
		ix.vocabGen.Store(gen)
		if err := ix.dropVocabulary(); err != nil {
			ix.log.Warn("index: vocabulary kept for the rebuild", "err", err)
		}
	}
	if err := writeWatermark(filepath.Join(ix.dir, watermarkFile), upTo); err != nil {
		return err
	}
	ix.watermark.Store(upTo)
	return nil
}

// dropVocabulary deletes every vocabulary document; their ids are the
// terms of the id field that start with "v".
func (ix *Index) dropVocabulary() (err error) {
	defer ix.recoverPanic(&err, "drop vocabulary")
	r, err := ix.reader()
	if err != nil {
		return err
	}
	defer r.Close()
	it, err := r.DictionaryIterator(fieldID, nil, []byte("v"), []byte("w"))
	if err != nil {
		return fmt.Errorf("drop vocabulary: %w", err)
	}
	defer it.Close()
	batch := bluge.NewBatch()
	n := 0
	for {
		e, err := it.Next()
		if err != nil {
			return fmt.Errorf("drop vocabulary: %w", err)
		}
		if e == nil {
			break
		}
		batch.Delete(bluge.Identifier(e.Term()))
		n++
	}
	if n == 0 {
		return nil
	}
	return ix.batch(batch)
}

// dedupByMID keeps the last doc of each MID, in input order.
func dedupByMID(docs []Doc) []*Doc {
	last := make(map[uint64]int, len(docs))
	for i := range docs {
		last[docs[i].MID] = i
	}
	out := make([]*Doc, 0, len(last))
	for i := range docs {
		if last[docs[i].MID] == i {
			out = append(out, &docs[i])
		}
	}
	return out
}

// analyze builds and analyzes the documents on all cores, and the
// vocabulary document of the words earlier batches did not have (see
// vocabulary.go).
func (ix *Index) analyze(docs []*Doc) (out []analyzedDoc, vocab *analyzedDoc, err error) {
	ran := false
	err = ix.withSnapshot(context.Background(), func(snap search.Reader) error {
		ran = true
		out, vocab, err = ix.analyzeOn(snap, docs)
		return err
	})
	if !ran {
		// Without a snapshot every word goes into the vocabulary.
		ix.log.Debug("index: no snapshot for the vocabulary", "err", err)
		out, vocab, err = ix.analyzeOn(nil, docs)
	}
	return out, vocab, err
}

func (ix *Index) analyzeOn(snap search.Reader, docs []*Doc) ([]analyzedDoc, *analyzedDoc, error) {
	out := make([]analyzedDoc, len(docs))
	errs := make([]error, len(docs))
	var next atomic.Int64
	var wg sync.WaitGroup
	sets := make([]vocabSet, min(runtime.GOMAXPROCS(0), len(docs)))
	mark := vocabMark(ix.vocabGen.Load())
	for w := range sets {
		sets[w].mark = mark
		sets[w].words = make(map[string]bool)
		if snap != nil {
			// One lookup per worker: it holds cursors of its own.
			if l, err := snap.DictionaryLookup(fieldVocab); err == nil {
				sets[w].known = l
			}
		}
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(docs) {
					return
				}
				out[i], errs[i] = ix.analyzeOne(docs[i])
				if errs[i] == nil {
					sets[w].addDoc(out[i].Document)
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil || len(docs) == 0 {
		return out, nil, err
	}
	words := sets[0].words
	for _, s := range sets[1:] {
		for w, isNew := range s.words {
			words[w] = words[w] || isNew
		}
	}
	first, last := docs[0].MID, docs[0].MID
	for _, d := range docs {
		first, last = min(first, d.MID), max(last, d.MID)
	}
	v := vocabDoc(vocabID(first, last, time.Now().UnixNano()), words, mark, ix.an.scratch)
	return out, &v, nil
}

func (ix *Index) analyzeOne(d *Doc) (ad analyzedDoc, err error) {
	defer ix.recoverPanic(&err, "analyze message "+strconv.FormatUint(d.MID, 10))
	doc := ix.an.document(d)
	doc.Analyze()
	return analyzedDoc{Document: doc, id: docID(d.MID)}, nil
}

// recoverPanic turns a panic into *err; bluge is unmaintained and has known
// panics. It must be deferred directly.
func (ix *Index) recoverPanic(err *error, what string) {
	if r := recover(); r != nil {
		ix.log.Error("index: recovered panic", "op", what, "panic", r, "stack", string(debug.Stack()))
		*err = fmt.Errorf("%s: panic in bluge: %v", what, r)
	}
}

func (ix *Index) batch(b *blugeindex.Batch) (err error) {
	defer ix.recoverPanic(&err, "batch")
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if err := ix.writableLocked(); err != nil {
		return err
	}
	return ix.w.Batch(b)
}

func (ix *Index) writableLocked() error {
	switch {
	case ix.closed:
		return ErrClosed
	case ix.paused:
		return ErrPaused
	}
	return nil
}

func docID(mid uint64) bluge.Identifier { return bluge.Identifier(strconv.FormatUint(mid, 10)) }

// Delete removes the documents of mids.
func (ix *Index) Delete(ctx context.Context, mids []uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(mids) == 0 {
		return nil
	}
	batch := bluge.NewBatch()
	for _, m := range mids {
		batch.Delete(docID(m))
	}
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	if err := ix.batch(batch); err != nil {
		return fmt.Errorf("delete %d messages: %w", len(mids), err)
	}
	return nil
}

// Count returns the number of indexed messages.
func (ix *Index) Count() (n uint64, err error) {
	defer ix.recoverPanic(&err, "count")
	r, err := ix.reader()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	n, err = r.Count()
	if err != nil {
		return 0, fmt.Errorf("count index %q: %w", ix.dir, err)
	}
	// Vocabulary documents are not messages.
	var vocab uint64
	req := &collectRequest{query: termsQuery{field: fieldKind, terms: []string{vocabKind}}, hit: func() { vocab++ }}
	if _, err := r.Search(context.Background(), req); err != nil {
		return 0, fmt.Errorf("count index %q: %w", ix.dir, err)
	}
	return n - min(vocab, n), nil
}

// reader returns a snapshot of what all finished batches wrote.
func (ix *Index) reader() (*bluge.Reader, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return nil, ErrClosed
	}
	var r *bluge.Reader
	var err error
	if ix.paused {
		r, err = bluge.OpenReader(ix.cfg)
	} else {
		r, err = ix.w.Reader()
	}
	if err != nil {
		return nil, fmt.Errorf("index %q reader: %w", ix.dir, err)
	}
	return r, nil
}

// The watermark file: 8 bytes big-endian value, 4 bytes CRC-32C of them.
func readWatermark(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read watermark: %w", err)
	}
	if len(b) != 12 || crc32.Checksum(b[:8], crc32.MakeTable(crc32.Castagnoli)) != binary.BigEndian.Uint32(b[8:]) {
		return 0, fmt.Errorf("watermark %q: corrupt", path)
	}
	return binary.BigEndian.Uint64(b[:8]), nil
}

// writeWatermark replaces the file atomically and durably. Syncing the
// directory also makes bluge's new segment files durable: bluge never
// syncs the directory itself.
func writeWatermark(path string, v uint64) error {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], v)
	binary.BigEndian.PutUint32(b[8:], crc32.Checksum(b[:8], crc32.MakeTable(crc32.Castagnoli)))
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write watermark: %w", err)
	}
	_, err = f.Write(b[:])
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("write watermark %q: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
