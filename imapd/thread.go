package imapd

import (
	"slices"

	"github.com/emersion/go-imap/v2"
)

// container is a node of the REFERENCES algorithm's tree: a message, or a
// dummy for a message that is referenced but not among those threaded.
type container struct {
	msg      *sorted // nil for a dummy
	parent   *container
	children []*container
}

// isAncestor reports whether a is c or above c.
func (a *container) isAncestorOf(c *container) bool {
	for ; c != nil; c = c.parent {
		if c == a {
			return true
		}
	}
	return false
}

// adopt makes child the last child of c. A first child gets room for two
// from spare, a slab shared by the containers of one THREAD, instead of
// an allocation of its own (most containers have one or two children).
func (c *container) adopt(child *container, spare *[]*container) {
	child.parent = c
	if c.children == nil {
		if len(*spare) < 2 {
			*spare = make([]*container, 4096)
		}
		c.children, *spare = (*spare)[:0:2], (*spare)[2:]
	}
	c.children = append(c.children, child)
}

func (c *container) unlink() {
	if p := c.parent; p != nil {
		if i := slices.Index(p.children, c); i >= 0 {
			p.children = slices.Delete(p.children, i, i+1)
		}
		c.parent = nil
	}
}

// first is the message that stands for c when sorting and merging: c's
// own, or its first child's.
func (c *container) first() *sorted {
	for c.msg == nil && len(c.children) > 0 {
		c = c.children[0]
	}
	return c.msg
}

// references is THREAD=REFERENCES (RFC 5256 section 3), step by step.
func references(msgs []sorted, num func(*sorted) uint32) []imap.ThreadData {
	// (1) Link messages by Message-ID and References. Containers come
	// in blocks (their addresses must not move), as many as there are
	// messages and distinct references: counting references with their
	// repetitions overestimated that several times, and zeroing and
	// scattering over the larger memory was a good part of the time.
	byID := newIDTable(len(msgs))
	var spare []*container
	var blocks [][]container
	newContainer := func() *container {
		if k := len(blocks) - 1; k < 0 || len(blocks[k]) == cap(blocks[k]) {
			blocks = append(blocks, make([]container, 0, max(len(msgs)/4, 64)))
		}
		b := &blocks[len(blocks)-1]
		*b = append(*b, container{})
		return &(*b)[len(*b)-1]
	}
	for i := range msgs {
		m := &msgs[i]
		var c *container
		if id := m.key.ID; id != 0 {
			slot := byID.slot(id)
			if c = *slot; c == nil {
				c = newContainer()
				*slot = c
			} else if c.msg != nil {
				c = newContainer() // a second message with this ID: its own
			}
		} else {
			c = newContainer()
		}
		c.msg = m
		// (A) Each reference is the parent of the next, unless it has a
		// parent already or that would make a loop.
		var prev *container
		for _, r := range m.key.Refs {
			slot := byID.slot(r)
			rc := *slot
			if rc == nil {
				rc = newContainer()
				*slot = rc
			}
			if prev != nil && rc.parent == nil && !rc.isAncestorOf(prev) {
				prev.adopt(rc, &spare)
			}
			prev = rc
		}
		// (B) The last reference is the message's parent.
		c.unlink()
		if prev != nil && !c.isAncestorOf(prev) {
			prev.adopt(c, &spare)
		}
	}
	// (2) The root set.
	var roots []*container
	for _, b := range blocks {
		for i := range b {
			if c := &b[i]; c.parent == nil {
				roots = append(roots, c)
			}
		}
	}
	// (4) Prune dummies.
	roots = prune(roots, true)
	// (5) Gather the roots that share a base subject, by its hash (as
	// IDs are), which the key holds: hashing the strings again was most
	// of this step.
	subject := func(c *container) uint64 {
		if m := c.first(); m != nil {
			return m.key.SubjectHash
		}
		return 0
	}
	isReply := func(c *container) bool { return c.msg != nil && c.msg.key.Reply }
	table := newIDTable(len(roots))
	for _, c := range roots {
		s := subject(c)
		if s == 0 {
			continue
		}
		slot := table.slot(s)
		if e := *slot; e == nil || e.msg != nil && (c.msg == nil || isReply(e) && !isReply(c)) {
			*slot = c
		}
	}
	var added []*container
	for _, c := range roots {
		s := subject(c)
		if s == 0 || c.parent != nil {
			continue
		}
		slot := table.slot(s)
		e := *slot
		if e == c {
			continue
		}
		switch {
		case e.msg == nil && c.msg == nil:
			for _, ch := range c.children {
				e.adopt(ch, &spare)
			}
			c.children = nil
			c.parent = e // gone from the roots
		case e.msg == nil, isReply(c) && !isReply(e):
			e.adopt(c, &spare)
		default:
			d := &container{}
			d.adopt(e, &spare)
			d.adopt(c, &spare)
			*slot = d
			added = append(added, d)
		}
	}
	kept := roots[:0]
	for _, c := range append(roots, added...) {
		if c.parent == nil {
			kept = append(kept, c)
		}
	}
	// (6) Sort siblings by sent date, children first, so that a dummy
	// sorts by its first child.
	sortTree(kept)
	// (7) The threads.
	w := &threadWriter{num: num, nums: make([]uint32, 0, len(msgs)), nodes: make([]imap.ThreadData, 0, len(msgs)+len(kept))}
	out := make([]imap.ThreadData, len(kept))
	for i, c := range kept {
		out[i] = w.data(c)
	}
	return out
}

// prune removes dummies without children and replaces the others by their
// children, except a dummy among the roots with several children.
func prune(list []*container, root bool) []*container {
	if !slices.ContainsFunc(list, func(c *container) bool { return c.msg == nil }) {
		// Nothing to remove or replace here: most lists.
		for _, c := range list {
			c.children = prune(c.children, false)
		}
		return list
	}
	out := list[:0:0]
	for _, c := range list {
		c.children = prune(c.children, false)
		if c.msg == nil {
			if len(c.children) == 0 {
				continue
			}
			if !root || len(c.children) == 1 {
				for _, ch := range c.children {
					ch.parent = c.parent
				}
				out = append(out, c.children...)
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

func sortTree(list []*container) {
	for _, c := range list {
		sortTree(c.children)
	}
	slices.SortStableFunc(list, func(a, b *container) int { return bySent(a.first(), b.first()) })
}

// threadWriter builds the answer's threads, their chains and lists of
// subthreads cut from two arrays instead of two allocations per thread.
// Each message is in one chain, so nums never grows; pieces cut before
// nodes grows stay valid in the old array.
type threadWriter struct {
	num   func(*sorted) uint32
	nums  []uint32
	nodes []imap.ThreadData
}

func (w *threadWriter) data(c *container) imap.ThreadData {
	var td imap.ThreadData
	start := len(w.nums)
	if c.msg != nil {
		w.nums = append(w.nums, w.num(c.msg))
	}
	// A single child continues the chain, iteratively: reply chains can
	// be long.
	for len(c.children) == 1 && c.children[0].msg != nil {
		c = c.children[0]
		w.nums = append(w.nums, w.num(c.msg))
	}
	if end := len(w.nums); end > start {
		td.Chain = w.nums[start:end:end]
	}
	if k := len(c.children); k > 0 {
		n := len(w.nodes)
		w.nodes = slices.Grow(w.nodes, k)[:n+k]
		td.SubThreads = w.nodes[n : n+k : n+k]
		for i, ch := range c.children {
			td.SubThreads[i] = w.data(ch)
		}
	}
	return td
}

// idTable finds the container of a Message-ID or subject hash. Both are
// keyed hashes (backend.ThreadKey), uniformly spread, so their low bits
// index an open-addressing table directly, key and value side by side; it
// took half the time of a map, which was the largest part of threading a
// large folder.
type idTable struct {
	slots []idSlot
	mask  uint64
	used  int
}

type idSlot struct {
	key uint64
	c   *container
}

func newIDTable(n int) *idTable {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	return &idTable{slots: make([]idSlot, size), mask: uint64(size - 1)}
}

// slot returns where the container of id is or goes, valid until the
// next call. The table doubles when half full.
func (t *idTable) slot(id uint64) **container {
	if id == 0 {
		id = 1 // 0 marks a free slot; a hash is 0 or 1 once in 2^63
	}
	i := id & t.mask
	for t.slots[i].key != id {
		if t.slots[i].key == 0 {
			if 2*(t.used+1) > len(t.slots) {
				t.grow()
				return t.slot(id)
			}
			t.slots[i].key = id
			t.used++
			break
		}
		i = (i + 1) & t.mask
	}
	return &t.slots[i].c
}

func (t *idTable) grow() {
	old := t.slots
	t.slots, t.mask = make([]idSlot, 2*len(old)), uint64(2*len(old)-1)
	for _, s := range old {
		if s.key != 0 {
			i := s.key & t.mask
			for t.slots[i].key != 0 {
				i = (i + 1) & t.mask
			}
			t.slots[i] = s
		}
	}
}
