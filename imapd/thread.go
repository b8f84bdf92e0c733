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

func (c *container) adopt(child *container) {
	child.parent = c
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
	// (1) Link messages by Message-ID and References.
	// One allocation for every container: a message's own and one per
	// reference at most.
	n := len(msgs)
	for i := range msgs {
		n += len(msgs[i].key.Refs)
	}
	byID := newIDTable(n)
	all := make([]container, 0, n)
	newContainer := func() *container {
		all = append(all, container{})
		return &all[len(all)-1]
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
				prev.adopt(rc)
			}
			prev = rc
		}
		// (B) The last reference is the message's parent.
		c.unlink()
		if prev != nil && !c.isAncestorOf(prev) {
			prev.adopt(c)
		}
	}
	// (2) The root set.
	var roots []*container
	for i := range all {
		if c := &all[i]; c.parent == nil {
			roots = append(roots, c)
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
				e.adopt(ch)
			}
			c.children = nil
			c.parent = e // gone from the roots
		case e.msg == nil, isReply(c) && !isReply(e):
			e.adopt(c)
		default:
			d := &container{}
			d.adopt(e)
			d.adopt(c)
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
	out := make([]imap.ThreadData, len(kept))
	for i, c := range kept {
		out[i] = threadData(c, num)
	}
	return out
}

// prune removes dummies without children and replaces the others by their
// children, except a dummy among the roots with several children.
func prune(list []*container, root bool) []*container {
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

func threadData(c *container, num func(*sorted) uint32) imap.ThreadData {
	var td imap.ThreadData
	if c.msg != nil {
		td.Chain = []uint32{num(c.msg)}
	}
	// A single child continues the chain, iteratively: reply chains can
	// be long.
	for len(c.children) == 1 && c.children[0].msg != nil {
		c = c.children[0]
		td.Chain = append(td.Chain, num(c.msg))
	}
	if len(c.children) > 0 {
		td.SubThreads = make([]imap.ThreadData, len(c.children))
		for i, ch := range c.children {
			td.SubThreads[i] = threadData(ch, num)
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

// slot returns where the container of id is or goes. The table is made
// for every ID it will hold, so it never fills.
func (t *idTable) slot(id uint64) **container {
	if id == 0 {
		id = 1 // 0 marks a free slot; a hash is 0 or 1 once in 2^63
	}
	i := id & t.mask
	for t.slots[i].key != id {
		if t.slots[i].key == 0 {
			t.slots[i].key = id
			break
		}
		i = (i + 1) & t.mask
	}
	return &t.slots[i].c
}
