package index

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/blugelabs/bluge"
	"github.com/blugelabs/bluge/search"
	"github.com/blugelabs/bluge/search/searcher"
	"github.com/blugelabs/bluge/search/similarity"
	segment "github.com/blugelabs/bluge_segment_api"
)

// SearchFolder returns the UIDs, ascending, of the messages in folder that
// match q.
func (ix *Index) SearchFolder(ctx context.Context, folder uint64, q Query) ([]uint32, error) {
	c := ix.compile(q)
	if c.none {
		return nil, nil
	}
	scope := termsQuery{field: fieldFolder, terms: []string{strconv.FormatUint(folder, 10)}}
	var uids []uint32
	visit := func(_ string, term []byte) {
		if m, ok := decodeMeta(term); ok {
			uids = appendUIDs(uids, m.members, folder)
		}
	}
	if err := ix.collect(ctx, scoped(scope, c), []string{fieldMeta}, visit, nil); err != nil {
		return nil, fmt.Errorf("search folder %d: %w", folder, err)
	}
	slices.Sort(uids)
	return slices.Compact(uids), nil
}

// appendUIDs appends the UIDs of folder from encoded members, which are
// sorted by folder.
func appendUIDs(uids []uint32, members []byte, folder uint64) []uint32 {
	for len(members) > 0 {
		f, n := readVar(members)
		if n == 0 || f > folder {
			return uids
		}
		uid, m := readVar(members[n:])
		if m == 0 {
			return uids
		}
		if f == folder {
			uids = append(uids, uint32(uid))
		}
		members = members[n+m:]
	}
	return uids
}

// Sort orders Find results. Ties are broken by MID, ascending.
type Sort struct {
	Field string // SortReceived, SortSent, SortSize, SortFrom or SortSubject
	Desc  bool
}

// Sort fields. From sorts by the first sender's display name, else address;
// subject by the subject without Re:/Fwd: prefixes; both lower case, by
// bytes. An unknown date sorts as the oldest.
const (
	SortReceived = "received"
	SortSent     = "sent"
	SortSize     = "size"
	SortFrom     = "from"
	SortSubject  = "subject"
)

// hitKey holds what a hit is sorted by.
type hitKey struct {
	// primary is the first sort key when it is a number, made ascending:
	// most comparisons end there, without the general comparator.
	primary                   uint64
	mid, received, sent, size uint64
	from, subject             []byte
}

// Find returns the MIDs of messages in any of folders matching q, sorted,
// from offset, at most limit of them (limit < 0: all), and the number of
// matches. No folders, no matches. The default order is newest received
// first.
func (ix *Index) Find(ctx context.Context, folders []uint64, q Query, sort []Sort, offset, limit int) (mids []uint64, total int, err error) {
	if len(sort) == 0 {
		sort = []Sort{{Field: SortReceived, Desc: true}}
	}
	fields := []string{fieldMeta}
	for _, s := range sort {
		switch s.Field {
		case SortReceived, SortSent, SortSize:
		case SortFrom:
			if !slices.Contains(fields, fieldSortFrom) {
				fields = append(fields, fieldSortFrom)
			}
		case SortSubject:
			if !slices.Contains(fields, fieldSortSubj) {
				fields = append(fields, fieldSortSubj)
			}
		default:
			return nil, 0, fmt.Errorf("find: unknown sort field %q", s.Field)
		}
	}
	offset = max(offset, 0)
	c := ix.compile(q)
	if c.none || len(folders) == 0 {
		return nil, 0, nil
	}
	scope := termsQuery{field: fieldFolder}
	for _, f := range folders {
		scope.terms = append(scope.terms, strconv.FormatUint(f, 10))
	}
	slices.Sort(scope.terms)
	scope.terms = slices.Compact(scope.terms)

	order := func(a, b *hitKey) int {
		for _, s := range sort {
			var c int
			switch s.Field {
			case SortReceived:
				c = cmp.Compare(a.received, b.received)
			case SortSent:
				c = cmp.Compare(a.sent, b.sent)
			case SortSize:
				c = cmp.Compare(a.size, b.size)
			case SortFrom:
				c = bytes.Compare(a.from, b.from)
			case SortSubject:
				c = bytes.Compare(a.subject, b.subject)
			}
			if s.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return cmp.Compare(a.mid, b.mid)
	}
	keep := offset + limit
	if limit < 0 {
		keep = -1
	}
	top := topN{keep: keep, cmp: order}
	var cur hitKey
	visit := func(field string, term []byte) {
		switch field {
		case fieldMeta: // first: the fields are visited in order
			if m, ok := decodeMeta(term); ok {
				cur.mid, cur.received, cur.sent, cur.size = m.mid, m.received, m.sent, m.size
			}
			cur.primary = 0 // string sorts compare in order
			switch sort[0].Field {
			case SortReceived:
				cur.primary = cur.received
			case SortSent:
				cur.primary = cur.sent
			case SortSize:
				cur.primary = cur.size
			}
			if sort[0].Desc {
				cur.primary = ^cur.primary
			}
			if len(cur.from) > 0 {
				cur.from = cur.from[:0]
			}
			if len(cur.subject) > 0 {
				cur.subject = cur.subject[:0]
			}
		case fieldSortFrom:
			cur.from = append(cur.from, term...)
		case fieldSortSubj:
			cur.subject = append(cur.subject, term...)
		}
	}
	hit := func() {
		total++
		top.offer(&cur)
	}
	if err := ix.collect(ctx, scoped(scope, c), fields, visit, hit); err != nil {
		return nil, 0, fmt.Errorf("find: %w", err)
	}
	keys := top.sorted()
	if offset >= len(keys) {
		return nil, total, nil
	}
	mids = make([]uint64, 0, len(keys)-offset)
	for _, k := range keys[offset:] {
		mids = append(mids, k.mid)
	}
	return mids, total, nil
}

// topN keeps the keep smallest keys (all when keep < 0). The heap holds
// indexes into keys, worst on top, so that sifting moves no keys.
type topN struct {
	keep int
	cmp  func(a, b *hitKey) int
	keys []hitKey
	heap []int32
}

func (t *topN) offer(k *hitKey) {
	switch {
	case t.keep < 0 || len(t.keys) < t.keep:
		t.keys = append(t.keys, hitKey{})
		t.keys[len(t.keys)-1].copyFrom(k)
		if t.keep >= 0 {
			t.heap = append(t.heap, int32(len(t.keys)-1))
			t.up(len(t.heap) - 1)
		}
	case t.keep > 0 && t.compare(k, &t.keys[t.heap[0]]) < 0:
		t.keys[t.heap[0]].copyFrom(k) // reuses the evicted key's buffers
		t.down(0)
	}
}

func (t *topN) compare(a, b *hitKey) int {
	if a.primary != b.primary {
		return cmp.Compare(a.primary, b.primary)
	}
	return t.cmp(a, b)
}

func (k *hitKey) copyFrom(o *hitKey) {
	k.primary, k.mid, k.received, k.sent, k.size = o.primary, o.mid, o.received, o.sent, o.size
	if len(o.from)+len(k.from) > 0 {
		k.from = append(k.from[:0], o.from...)
	}
	if len(o.subject)+len(k.subject) > 0 {
		k.subject = append(k.subject[:0], o.subject...)
	}
}

// worse tells whether heap entry i sorts after entry j.
func (t *topN) worse(i, j int) bool { return t.compare(&t.keys[t.heap[i]], &t.keys[t.heap[j]]) > 0 }

func (t *topN) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.worse(i, p) {
			return
		}
		t.heap[p], t.heap[i] = t.heap[i], t.heap[p]
		i = p
	}
}

func (t *topN) down(i int) {
	for {
		l, worst := 2*i+1, i
		if l < len(t.heap) && t.worse(l, worst) {
			worst = l
		}
		if r := l + 1; r < len(t.heap) && t.worse(r, worst) {
			worst = r
		}
		if worst == i {
			return
		}
		t.heap[i], t.heap[worst] = t.heap[worst], t.heap[i]
		i = worst
	}
}

func (t *topN) sorted() []*hitKey {
	keys := make([]*hitKey, len(t.keys))
	for i := range t.keys {
		keys[i] = &t.keys[i]
	}
	slices.SortFunc(keys, t.compare)
	return keys
}

// collect runs q on a snapshot; for every hit it calls visit for each doc
// value of fields, in the order of fields, then hit (unless nil).
func (ix *Index) collect(ctx context.Context, q bluge.Query, fields []string, visit segment.DocumentValueVisitor, hit func()) (err error) {
	defer ix.recoverPanic(&err, "search")
	r, err := ix.reader()
	if err != nil {
		return err
	}
	defer r.Close()
	req := &collectRequest{query: q, fields: fields, visit: visit, hit: hit}
	_, err = r.Search(ctx, req)
	return err
}

// collectRequest is a bluge search request and its own collector: it reads
// doc values straight from the snapshot, without bluge's per-hit maps and
// without scoring, which are the expensive part of a search with many hits.
type collectRequest struct {
	query  bluge.Query
	fields []string
	visit  segment.DocumentValueVisitor
	hit    func()
	reader search.Reader
}

func (c *collectRequest) Searcher(r search.Reader, _ bluge.Config) (search.Searcher, error) {
	c.reader = r
	return c.query.Searcher(r, unscored())
}

// unscored are searcher options without scoring, which lets bluge answer
// conjunctions and disjunctions of plain terms with bitmap operations.
func unscored() search.SearcherOptions {
	return search.SearcherOptions{
		SimilarityForField: func(string) search.Similarity { return similarity.NewBM25Similarity() },
		Score:              "none",
	}
}

func (c *collectRequest) Collector() search.Collector               { return c }
func (c *collectRequest) AddAggregation(string, search.Aggregation) {}
func (c *collectRequest) Aggregations() search.Aggregations         { return nil }
func (c *collectRequest) Size() int                                 { return 0 }
func (c *collectRequest) BackingSize() int                          { return 0 }
func (c *collectRequest) Collect(ctx context.Context, _ search.Aggregations, s search.Collectible) (search.DocumentMatchIterator, error) {
	defer s.Close()
	sctx := search.NewSearchContext(s.DocumentMatchPoolSize(), 0)
	dvr, err := c.reader.DocumentValueReader(c.fields)
	if err != nil {
		return nil, err
	}
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		dm, err := s.Next(sctx)
		if err != nil {
			return nil, err
		}
		if dm == nil {
			return doneIterator{}, nil
		}
		if c.visit != nil {
			if err := dvr.VisitDocumentValues(dm.Number, c.visit); err != nil {
				return nil, err
			}
		}
		if c.hit != nil {
			c.hit()
		}
		sctx.DocumentMatchPool.Put(dm)
	}
}

// doneIterator is the empty result of a collectRequest: hits went to the
// callbacks.
type doneIterator struct{}

func (doneIterator) Next() (*search.DocumentMatch, error) { return nil, nil }
func (doneIterator) Aggregations() *search.Bucket         { return nil }

// termsQuery matches any of its exact terms in field, unscored and without
// bluge's clause cap (the terms are few, or MIDs the caller chose).
type termsQuery struct {
	field string
	terms []string
}

func (q termsQuery) Searcher(r search.Reader, opts search.SearcherOptions) (search.Searcher, error) {
	return termsSearcher(r, q.field, q.terms, opts)
}

func termsSearcher(r search.Reader, field string, terms []string, opts search.SearcherOptions) (search.Searcher, error) {
	if len(terms) == 1 {
		return searcher.NewTermSearcher(r, terms[0], field, 1, similarity.ConstantScorer(1), opts)
	}
	return searcher.NewMultiTermSearcher(r, terms, field, 1, similarity.ConstantScorer(1), similarity.NewCompositeSumScorer(), opts, false)
}

// metaRangeQuery matches lo <= v < hi, where v is the size or the sent time
// of the packed meta. Sent time and size are not indexed as numbers: bluge
// writes 16 terms per number, nearly all unique, and building their
// dictionaries was a quarter of the indexing cost. Inside a conjunction the
// filter only reads the meta of the candidates the other clauses advance to.
type metaRangeQuery struct {
	sent   bool // else size
	lo, hi uint64
}

func (q metaRangeQuery) Searcher(r search.Reader, opts search.SearcherOptions) (search.Searcher, error) {
	dvr, err := r.DocumentValueReader([]string{fieldMeta})
	if err != nil {
		return nil, err
	}
	all, err := searcher.NewMatchAllSearcher(r, 1, similarity.ConstantScorer(1), opts)
	if err != nil {
		return nil, err
	}
	return searcher.NewFilteringSearcher(all, func(d *search.DocumentMatch) bool {
		var ok bool
		err := dvr.VisitDocumentValues(d.Number, func(_ string, term []byte) {
			if m, valid := decodeMeta(term); valid {
				v := m.size
				if q.sent {
					v = m.sent
				}
				ok = q.lo <= v && v < q.hi
			}
		})
		return err == nil && ok
	}), nil
}

// phraseQuery matches terms at consecutive positions of field; the last
// term also matches as a prefix of an indexed term.
type phraseQuery struct {
	ix    *Index
	field string
	terms []string
	// address: a word without "@" need not expand to the full-address and
	// domain terms: the local part, which starts the same, is always there.
	address bool
}

func (q phraseQuery) Searcher(r search.Reader, opts search.SearcherOptions) (search.Searcher, error) {
	last, err := q.ix.expand(r, q.field, q.terms[len(q.terms)-1], q.address)
	if err != nil {
		return nil, err
	}
	if len(q.terms) == 1 {
		return termsSearcher(r, q.field, last, opts)
	}
	phrase := make([][]string, len(q.terms))
	for i, t := range q.terms[:len(q.terms)-1] {
		phrase[i] = []string{t}
	}
	phrase[len(phrase)-1] = last
	return searcher.NewMultiPhraseSearcher(r, phrase, q.field, similarity.ConstantScorer(1), opts)
}

// expand returns the terms of field starting with prefix, without those
// holding "@" if noAt. Beyond maxExpansion of them the prefix matches whole
// terms only.
func (ix *Index) expand(r search.Reader, field, prefix string, noAt bool) (terms []string, err error) {
	it, err := r.DictionaryIterator(field, nil, []byte(prefix), prefixEnd(prefix))
	if err != nil {
		return nil, fmt.Errorf("expand %q: %w", prefix, err)
	}
	defer it.Close()
	for {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("expand %q: %w", prefix, err)
		}
		if e == nil {
			break
		}
		if noAt && strings.IndexByte(e.Term(), '@') >= 0 {
			continue
		}
		if len(terms) == maxExpansion {
			ix.log.Debug("index: prefix too common, matching whole words", "field", field, "prefix", prefix)
			return []string{prefix}, nil
		}
		terms = append(terms, e.Term())
	}
	if len(terms) == 0 {
		return []string{prefix}, nil
	}
	return terms, nil
}

// prefixEnd is the first key after all keys starting with prefix, nil when
// there is none.
func prefixEnd(prefix string) []byte {
	end := []byte(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// snapshotRequest runs fn on the search.Reader of a bluge.Reader, which
// bluge only hands to a search: fn needs dictionary lookups that
// bluge.Reader does not offer.
type snapshotRequest struct {
	fn     func(search.Reader) error
	reader search.Reader
}

func (s *snapshotRequest) Searcher(r search.Reader, _ bluge.Config) (search.Searcher, error) {
	s.reader = r
	return searcher.NewMatchNoneSearcher(r, search.SearcherOptions{})
}

func (s *snapshotRequest) Collector() search.Collector               { return s }
func (s *snapshotRequest) AddAggregation(string, search.Aggregation) {}
func (s *snapshotRequest) Aggregations() search.Aggregations         { return nil }
func (s *snapshotRequest) Size() int                                 { return 0 }
func (s *snapshotRequest) BackingSize() int                          { return 0 }
func (s *snapshotRequest) Collect(_ context.Context, _ search.Aggregations, sr search.Collectible) (search.DocumentMatchIterator, error) {
	defer sr.Close()
	return doneIterator{}, s.fn(s.reader)
}

// withSnapshot calls fn with a snapshot of what all finished batches wrote.
func (ix *Index) withSnapshot(ctx context.Context, fn func(search.Reader) error) error {
	r, err := ix.reader()
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = r.Search(ctx, &snapshotRequest{fn: fn})
	return err
}
