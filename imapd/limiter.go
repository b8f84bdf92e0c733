package imapd

import (
	"net"
	"strings"
	"sync"
	"time"
)

// limiter slows down password guessing: after a few failures for an account
// or from an address, every further attempt for it waits, twice as long per
// failure, up to a cap. Waiting instead of locking out means an attacker
// cannot lock a real user out, only slow them down while attacking.
type limiter struct {
	free   int           // failures allowed without delay (typos)
	base   time.Duration // delay after the first failure beyond free
	max    time.Duration
	forget time.Duration // failures older than this no longer count

	mu    sync.Mutex
	fails map[string]*failures
}

type failures struct {
	n    int
	last time.Time
}

// maxLimiterEntries bounds memory under a distributed attack; old entries
// are dropped first, then the map is cleared.
const maxLimiterEntries = 100_000

func newLimiter() *limiter {
	return &limiter{free: 3, base: 500 * time.Millisecond, max: 16 * time.Second, forget: 15 * time.Minute, fails: map[string]*failures{}}
}

// delay returns how long an attempt for the keys must wait.
func (l *limiter) delay(keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var d time.Duration
	now := time.Now()
	for _, k := range keys {
		f := l.fails[k]
		if f == nil || now.Sub(f.last) > l.forget || f.n < l.free {
			continue
		}
		kd := l.max
		if shift := f.n - l.free; shift < 16 {
			kd = min(l.base<<shift, l.max)
		}
		d = max(d, kd)
	}
	return d
}

// fail records a failed attempt for each key.
func (l *limiter) fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if len(l.fails) >= maxLimiterEntries {
		for k, f := range l.fails {
			if now.Sub(f.last) > l.forget {
				delete(l.fails, k)
			}
		}
		if len(l.fails) >= maxLimiterEntries {
			clear(l.fails)
		}
	}
	for _, k := range keys {
		f := l.fails[k]
		if f == nil || now.Sub(f.last) > l.forget {
			f = &failures{}
			l.fails[k] = f
		}
		f.n++
		f.last = now
	}
}

// succeed forgets the failures of key.
func (l *limiter) succeed(key string) {
	l.mu.Lock()
	delete(l.fails, key)
	l.mu.Unlock()
}

func accountKey(login string) string { return "account " + strings.ToLower(login) }

// addressKey groups IPv6 addresses by /64, as one host usually has a whole
// /64 to rotate through.
func addressKey(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return "address " + a.String()
	}
	ip := ta.IP
	if ip.To4() == nil {
		ip = ip.Mask(net.CIDRMask(64, 128))
	}
	return "address " + ip.String()
}
