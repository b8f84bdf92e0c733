package backend

import (
	"bufio"
	"container/list"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrLoginBusy means the password checks are all taken and too many
// logins wait already: the client should try again in a moment. The
// login was not checked.
var ErrLoginBusy = errors.New("too many logins at once")

// ErrLoginThrottled is matched (errors.Is) by a *ThrottledError.
var ErrLoginThrottled = errors.New("too many failed logins")

// ThrottledError refuses a login without checking it: this account, or
// this account from this address, failed too often lately.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed logins; try again in %s", e.RetryAfter.Round(time.Second))
}

// Is lets errors.Is(err, ErrLoginThrottled) match.
func (e *ThrottledError) Is(target error) bool { return target == ErrLoginThrottled }

// LoginLimits bound the password checks of a provider. Zero fields take
// the defaults sized to the machine.
type LoginLimits struct {
	// Checks is how many argon2id checks run at once; each holds about
	// 19 MiB. Default: the number of cores, at most what 1/16 of the
	// memory holds.
	Checks int
	// Waiting is how many logins may wait for a check before further ones
	// are refused with ErrLoginBusy. Default: 16 per check.
	Waiting int
}

// LoginStats counts what the gate did since the provider opened.
type LoginStats struct {
	Checks    int64 // argon2id checks run, real and dummy
	Busy      int64 // refused with ErrLoginBusy
	Throttled int64 // refused with a ThrottledError
}

// Throttle rules. Failures count per account and address (one guesser) and
// per account (guessers spread over many addresses); never per address
// alone, as one address may be a whole office behind NAT or a webmail
// proxy. An address only gets its fair share of the queue.
const (
	pairFreeFailures    = 3  // typos of one user
	accountFreeFailures = 10 // before every address not known good is slowed
	failureBase         = 5 * time.Second
	failureMax          = time.Minute
	failureForget       = 15 * time.Minute
	knownGoodFor        = 30 * 24 * time.Hour
	gateEntries         = 1 << 16 // per map; the least recently failed go first
	waitingPerCheck     = 16
	waitingShare        = 4 // of the waiters, at most 1/waitingShare from one address
	// refusalPause delays every refusal, so that a flood answered with
	// refusals does not spin on the CPU the password checks need. A
	// waiting connection costs no CPU.
	refusalPause = time.Second
)

// loginGate admits password logins for every front end (IMAP, JMAP, SMTP
// AUTH): it bounds how many argon2id checks run at once and how many wait,
// throttles failing accounts, and serves waiters fairly. An account and
// address that logged in before and has not failed since ("known good")
// goes first, so a user's mail client keeps working while the same address
// floods; other waiters take turns by address.
type loginGate struct {
	dummyHash   string // checked for unknown users, so they cost the same
	slots       int
	maxWaiting  int
	maxFromAddr int

	mu       sync.Mutex
	free     int
	waiting  int
	priority []*waiter            // known good, first come first served
	byAddr   map[string][]*waiter // the others, per address
	turns    []string             // addresses with waiters, in turn order
	pair     *lruMap[failures]    // account + "\x00" + address
	account  *lruMap[failures]
	good     *lruMap[time.Time] // account + "\x00" + address -> last login

	checks, busy, throttled atomic.Int64
}

type failures struct {
	n    int
	last time.Time
}

// wait is how long from now further attempts are refused.
func (f *failures) wait(free int, now time.Time) time.Duration {
	if f == nil || f.n < free || now.Sub(f.last) > failureForget {
		return 0
	}
	w := failureMax
	if shift := f.n - free; shift < 16 {
		w = min(failureBase<<shift, failureMax)
	}
	return f.last.Add(w).Sub(now)
}

type waiter struct {
	addr    string
	ready   chan struct{} // closed when a slot is handed over
	granted bool          // under gate.mu
}

func newLoginGate(lim LoginLimits) *loginGate {
	if lim.Checks <= 0 {
		lim.Checks = defaultChecks()
	}
	if lim.Waiting <= 0 {
		lim.Waiting = waitingPerCheck * lim.Checks
	}
	return &loginGate{
		dummyHash:   HashPassword("mailvault timing equaliser"),
		slots:       lim.Checks,
		free:        lim.Checks,
		maxWaiting:  lim.Waiting,
		maxFromAddr: max(1, lim.Waiting/waitingShare),
		byAddr:      map[string][]*waiter{},
		pair:        newLRUMap[failures](gateEntries),
		account:     newLRUMap[failures](gateEntries),
		good:        newLRUMap[time.Time](gateEntries),
	}
}

// defaultChecks is one check per core (argon2id here is single-threaded,
// more would only queue in the scheduler), bounded by memory.
func defaultChecks() int {
	n := runtime.NumCPU()
	if mem := memTotal(); mem > 0 {
		n = min(n, int(mem/16/(argonMemory*1024)))
	}
	return max(1, n)
}

// memTotal reads the machine's memory from /proc/meminfo; 0 if unknown.
func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

type remoteKey struct{}

// WithRemote returns ctx carrying the client's address, which logins are
// throttled and queued by. Front ends set it; without it all logins count
// as from one unknown address.
func WithRemote(ctx context.Context, addr netip.Addr) context.Context {
	return context.WithValue(ctx, remoteKey{}, addr)
}

// addrKey groups IPv6 addresses by /64, as one host usually has a whole
// /64 to rotate through.
func addrKey(ctx context.Context) string {
	a, _ := ctx.Value(remoteKey{}).(netip.Addr)
	a = a.Unmap()
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is6():
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// attempt is one login passing the gate: begin, at most one check, end.
type attempt struct {
	g         *loginGate
	account   string
	pair      string
	addr      string
	knownGood bool
}

// begin admits a login for account or refuses it when the account is
// throttled; nothing is checked then.
func (g *loginGate) begin(ctx context.Context, account string) (*attempt, error) {
	a := &attempt{g: g, account: account, addr: addrKey(ctx)}
	a.pair = account + "\x00" + a.addr
	if d := g.admit(a, time.Now()); d > 0 {
		g.throttled.Add(1)
		pause(ctx)
		return nil, &ThrottledError{RetryAfter: d}
	}
	return a, nil
}

// admit tells whether the attempt is known good and how long it must wait.
func (g *loginGate) admit(a *attempt, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	pf := g.pair.get(a.pair)
	if last := g.good.get(a.pair); last != nil && now.Sub(*last) < knownGoodFor && (pf == nil || now.Sub(pf.last) > failureForget) {
		a.knownGood = true
	}
	d := pf.wait(pairFreeFailures, now)
	if !a.knownGood {
		// A guesser spread over many addresses slows the account's other
		// addresses, but not those it logged in from before.
		d = max(d, g.account.get(a.account).wait(accountFreeFailures, now))
	}
	return d
}

func pause(ctx context.Context) {
	t := time.NewTimer(refusalPause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// check verifies an argon2id hash once a slot is free.
func (a *attempt) check(ctx context.Context, hash, password string) (bool, error) {
	if err := a.g.acquire(ctx, a); err != nil {
		return false, err
	}
	defer a.g.release()
	a.g.checks.Add(1)
	return checkPassword(hash, password), nil
}

// fail spends a check on nothing and returns ErrAuthFailed, for logins
// that are wrong before any password is looked at (unknown user or domain,
// malformed name), so they cost what a wrong password costs.
func (a *attempt) fail(ctx context.Context, password string) error {
	if _, err := a.check(ctx, a.g.dummyHash, password); err != nil {
		return err
	}
	return ErrAuthFailed
}

// end records the outcome: ErrAuthFailed counts against the account and
// the account+address; success forgets the latter's failures and makes it
// known good. Other errors (busy, directory down) count for nothing.
func (a *attempt) end(err error) {
	g := a.g
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case err == nil:
		g.pair.del(a.pair)
		*g.good.put(a.pair) = now
	case errors.Is(err, ErrAuthFailed):
		for _, f := range []*failures{g.pair.put(a.pair), g.account.put(a.account)} {
			if now.Sub(f.last) > failureForget {
				f.n = 0
			}
			f.n++
			f.last = now
		}
	}
}

// acquire takes a check slot, waiting in the queue of its class.
func (g *loginGate) acquire(ctx context.Context, a *attempt) error {
	g.mu.Lock()
	if g.free > 0 && g.waiting == 0 {
		g.free--
		g.mu.Unlock()
		return nil
	}
	if g.waiting >= g.maxWaiting || (!a.knownGood && len(g.byAddr[a.addr]) >= g.maxFromAddr) {
		g.mu.Unlock()
		g.busy.Add(1)
		pause(ctx)
		return ErrLoginBusy
	}
	w := &waiter{addr: a.addr, ready: make(chan struct{})}
	g.waiting++
	if a.knownGood {
		g.priority = append(g.priority, w)
	} else {
		if len(g.byAddr[a.addr]) == 0 {
			g.turns = append(g.turns, a.addr)
		}
		g.byAddr[a.addr] = append(g.byAddr[a.addr], w)
	}
	g.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	if w.granted {
		g.mu.Unlock()
		g.release()
	} else {
		g.remove(w)
		g.mu.Unlock()
	}
	return ctx.Err()
}

// release hands the slot to the next waiter: known good first, then the
// addresses in turn.
func (g *loginGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	var w *waiter
	switch {
	case len(g.priority) > 0:
		w, g.priority = g.priority[0], g.priority[1:]
	case len(g.turns) > 0:
		addr := g.turns[0]
		q := g.byAddr[addr]
		w = q[0]
		g.turns = g.turns[1:]
		if len(q) == 1 {
			delete(g.byAddr, addr)
		} else {
			g.byAddr[addr] = q[1:]
			g.turns = append(g.turns, addr)
		}
	default:
		g.free++
		return
	}
	g.waiting--
	w.granted = true
	close(w.ready)
}

// remove takes a waiter that gave up out of its queue; under g.mu.
func (g *loginGate) remove(w *waiter) {
	g.waiting--
	if i := indexOf(g.priority, w); i >= 0 {
		g.priority = append(g.priority[:i], g.priority[i+1:]...)
		return
	}
	q := g.byAddr[w.addr]
	if i := indexOf(q, w); i >= 0 {
		q = append(q[:i], q[i+1:]...)
	}
	if len(q) > 0 {
		g.byAddr[w.addr] = q
		return
	}
	delete(g.byAddr, w.addr)
	if i := indexOf(g.turns, w.addr); i >= 0 {
		g.turns = append(g.turns[:i], g.turns[i+1:]...)
	}
}

func indexOf[T comparable](s []T, v T) int {
	for i := range s {
		if s[i] == v {
			return i
		}
	}
	return -1
}

// LoginStats returns the login gate's counters.
func (p *Provider) LoginStats() LoginStats {
	g := p.gate
	return LoginStats{Checks: g.checks.Load(), Busy: g.busy.Load(), Throttled: g.throttled.Load()}
}

// lruMap is a map bounded to max entries; putting a key makes it the
// newest, and the oldest is dropped beyond max. A flood of random names
// thus pushes out only entries that stopped failing long ago.
type lruMap[V any] struct {
	max   int
	m     map[string]*list.Element
	order list.List // front newest; values *lruEntry[V]
}

type lruEntry[V any] struct {
	key string
	v   V
}

func newLRUMap[V any](n int) *lruMap[V] {
	return &lruMap[V]{max: n, m: map[string]*list.Element{}}
}

// get returns the value of key, or nil.
func (c *lruMap[V]) get(key string) *V {
	if e := c.m[key]; e != nil {
		return &e.Value.(*lruEntry[V]).v
	}
	return nil
}

// put returns the value of key, created zero if new, as the newest.
func (c *lruMap[V]) put(key string) *V {
	if e := c.m[key]; e != nil {
		c.order.MoveToFront(e)
		return &e.Value.(*lruEntry[V]).v
	}
	if len(c.m) >= c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.m, old.Value.(*lruEntry[V]).key)
	}
	ent := &lruEntry[V]{key: key}
	c.m[key] = c.order.PushFront(ent)
	return &ent.v
}

func (c *lruMap[V]) del(key string) {
	if e := c.m[key]; e != nil {
		c.order.Remove(e)
		delete(c.m, key)
	}
}
