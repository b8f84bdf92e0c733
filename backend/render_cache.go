package backend

import "sync"

// renderCacheBytes bounds a tenant's render cache.
const renderCacheBytes = 64 << 20

// renderCache keeps bytes a protocol server made from a message and would
// otherwise make again for every read (IMAP's BODYSTRUCTURE as written,
// the header fields a client lists folders by),
// by MID and slot (the server's kind of rendering), up to renderCacheBytes
// per tenant. When full, it drops about a quarter of its entries, in no
// particular order. Shredding a message drops its entries.
type renderCache struct {
	mu    sync.Mutex
	m     map[renderKey][]byte
	bytes int
}

type renderKey struct {
	mid  uint64
	slot uint64
}

// Rendered looks up what was kept for mids in slot: out[i] is nil where
// nothing was. The bytes are shared and must not be changed.
func (t *Tenant) Rendered(mids []uint64, slot uint64, out [][]byte) {
	c := &t.renders
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, mid := range mids {
		out[i] = c.m[renderKey{mid, slot}]
	}
}

// KeepRendered keeps b, made from message mid's archived content, in slot.
// The caller must not change b afterwards.
func (t *Tenant) KeepRendered(mid uint64, slot uint64, b []byte) {
	c := &t.renders
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[renderKey][]byte{}
	}
	k := renderKey{mid, slot}
	if old, ok := c.m[k]; ok {
		c.bytes -= len(old)
	}
	c.m[k] = b
	c.bytes += len(b)
	if c.bytes > renderCacheBytes {
		for k, v := range c.m {
			if c.bytes <= renderCacheBytes*3/4 {
				break
			}
			delete(c.m, k)
			c.bytes -= len(v)
		}
	}
}

// forget drops what was kept for deleted messages.
func (c *renderCache) forget(mids []uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		return
	}
	drop := make(map[uint64]bool, len(mids))
	for _, mid := range mids {
		drop[mid] = true
	}
	for k, v := range c.m {
		if drop[k.mid] {
			delete(c.m, k)
			c.bytes -= len(v)
		}
	}
}
