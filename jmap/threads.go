package jmap

import (
	"context"
	"hash/maphash"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/mailparse"
)

// threadTable assigns every message of a tenant to a thread, in MID order:
// a message joins the thread of the first of its References, its
// In-Reply-To or its own Message-ID that an earlier message mentioned,
// else it starts a thread named by its MID. A message also makes the ids it
// mentions point to its thread, so a parent archived after its reply joins
// the reply's thread. The outcome depends only on the messages in MID
// order, which never changes: thread ids are stable across restarts
// although the table lives in memory, rebuilt from the stored summaries.
type threadTable struct {
	tenant   *backend.Tenant // the open tenant it was built for
	updating sync.Mutex      // one update at a time

	mu   sync.RWMutex
	root []uint64 // by MID-1: the thread's first MID
	next []uint64 // by MID-1: the next MID of the same thread, 0 at the end
	tail []uint64 // by MID-1, used for roots: the thread's last MID
	ids  map[uint64]uint64
	seed maphash.Seed
}

// threadsOf returns the tenant's thread table, caught up with every
// message archived so far. The table is released when the tenant closes
// (tens of MB at a million messages), and built again when it is next
// needed.
func (h *Handler) threadsOf(ctx context.Context, t *backend.Tenant) (*threadTable, error) {
	h.mu.Lock()
	tt := h.threads[t.Name]
	if tt == nil || tt.tenant != t {
		tt = &threadTable{tenant: t, ids: map[uint64]uint64{}, seed: maphash.MakeSeed()}
		h.threads[t.Name] = tt
		h.watchLocked(t)
	}
	h.mu.Unlock()
	return tt, tt.update(ctx, t)
}

// watchLocked drops the tenant's thread table and folder caches once it
// has closed (a closed tenant must not keep them: 63 MB for the table at
// 1,000,000 messages); they are built again when the tenant is next used.
// h.mu is held.
func (h *Handler) watchLocked(t *backend.Tenant) {
	if h.watched[t.Name] == t {
		return
	}
	h.watched[t.Name] = t
	go func() {
		select {
		case <-t.Closed():
		case <-h.done:
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.watched[t.Name] != t {
			return // a reopened tenant is watched on its own
		}
		delete(h.watched, t.Name)
		if tt := h.threads[t.Name]; tt != nil && tt.tenant == t {
			delete(h.threads, t.Name)
		}
		for k := range h.marks {
			if k.tenant == t.Name {
				delete(h.marks, k)
			}
		}
	}()
}

// mentions are the ids a message's thread is found by, in order of
// preference: its References, its In-Reply-To, its own Message-ID.
type mentions [3][]string

func mentionsOf(s *mailparse.Summary) mentions {
	if s == nil {
		return mentions{}
	}
	m := mentions{s.References, s.Envelope.InReplyTo}
	if s.Envelope.MessageID != "" {
		m[2] = []string{s.Envelope.MessageID}
	}
	return m
}

// threadChunk messages are read in parallel, then assigned in order.
const threadChunk = 4096

// update assigns the messages archived since the last update. Reading the
// summaries is the cost (about 70 µs a message), so it runs on all cores;
// readers of the table wait only while a chunk is assigned.
func (tt *threadTable) update(ctx context.Context, t *backend.Tenant) error {
	n := t.MessageCount()
	tt.mu.RLock()
	done := uint64(len(tt.root))
	tt.mu.RUnlock()
	if done >= n {
		return nil
	}
	tt.updating.Lock()
	defer tt.updating.Unlock()
	tt.mu.RLock()
	done = uint64(len(tt.root))
	tt.mu.RUnlock()
	chunk := make([]mentions, threadChunk)
	for first := done + 1; first <= n; first += threadChunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		count := min(uint64(threadChunk), n-first+1)
		var next atomic.Uint64
		var wg sync.WaitGroup
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < count; i = next.Add(1) - 1 {
					// A summary that cannot be read (verify reports it)
					// leaves the message in a thread of its own.
					s, _ := t.Summary(ctx, first+i)
					chunk[i] = mentionsOf(s)
				}
			})
		}
		wg.Wait()
		tt.mu.Lock()
		for i := range count {
			tt.assign(first+i, chunk[i])
		}
		tt.mu.Unlock()
	}
	return nil
}

func (tt *threadTable) hash(id string) uint64 {
	return maphash.String(tt.seed, strings.TrimSpace(id))
}

func (tt *threadTable) assign(mid uint64, m mentions) {
	root := mid
find:
	for _, list := range m {
		for _, id := range list {
			if r, ok := tt.ids[tt.hash(id)]; ok {
				root = r
				break find
			}
		}
	}
	for _, list := range m {
		for _, id := range list {
			if h := tt.hash(id); tt.ids[h] == 0 {
				tt.ids[h] = root
			}
		}
	}
	tt.root = append(tt.root, root)
	tt.next = append(tt.next, 0)
	tt.tail = append(tt.tail, mid)
	if root != mid {
		tt.next[tt.tail[root-1]-1] = mid
		tt.tail[root-1] = mid
	}
}

// threadOf returns the thread (its root MID) of a message, 0 if unknown.
func (tt *threadTable) threadOf(mid uint64) uint64 {
	tt.mu.RLock()
	defer tt.mu.RUnlock()
	if mid == 0 || mid > uint64(len(tt.root)) {
		return 0
	}
	return tt.root[mid-1]
}

// threadsOfAll maps mids to their threads under one lock.
func (tt *threadTable) threadsOfAll(mids []uint64) []uint64 {
	out := make([]uint64, len(mids))
	tt.mu.RLock()
	defer tt.mu.RUnlock()
	for i, mid := range mids {
		if mid > 0 && mid <= uint64(len(tt.root)) {
			out[i] = tt.root[mid-1]
		}
	}
	return out
}

// members returns the MIDs of a thread in MID order; nil if root does not
// start a thread.
func (tt *threadTable) members(root uint64) []uint64 {
	tt.mu.RLock()
	defer tt.mu.RUnlock()
	if root == 0 || root > uint64(len(tt.root)) || tt.root[root-1] != root {
		return nil
	}
	var out []uint64
	for mid := root; mid != 0; mid = tt.next[mid-1] {
		out = append(out, mid)
	}
	return out
}
