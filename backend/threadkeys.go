package backend

import (
	"context"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"sync"

	"github.com/mailvault/mailvault/mailparse"
)

// ThreadKey is what sorting and threading a folder compares of a message
// (IMAP SORT and THREAD, RFC 5256). It is made once per message from its
// envelope and References and kept while the tenant is open: archived mail
// never changes, so a key never goes stale.
type ThreadKey struct {
	// Sent is the Date field's time in Unix seconds, else the internal date.
	Sent     int64
	Received int64 // the internal date, Unix seconds
	Size     int64
	// Subject is the base subject (mailparse.BaseSubject) in ASCII upper
	// case, as RFC 5256 compares it; Reply says it was a reply or forward.
	Subject string
	Reply   bool
	// SubjectHash is a keyed hash of Subject (0 for none), which THREAD
	// groups by instead of hashing each string again.
	SubjectHash uint64
	// From, To and Cc are the mailboxes (unquoted local parts, or a group's
	// name) of the first address of each field, in ASCII upper case.
	From, To, Cc string
	// ID and Refs are keyed hashes of the Message-ID (0 without one) and of
	// the identifiers of References, else of the first of In-Reply-To.
	ID   uint64
	Refs []uint64
}

// threadKeys caches the ThreadKey of each message sorted or threaded so
// far: about 200 bytes per message. keys is indexed by MID-1 (MIDs are
// dense), so that a SORT of 100,000 messages finds their keys by index
// rather than by as many map lookups; it grows to the highest MID used,
// 8 bytes per message of the tenant.
type threadKeys struct {
	mu     sync.Mutex
	seeded bool
	seed   maphash.Seed
	keys   []*ThreadKey
}

// get returns the key of mid, nil if none was made.
func (tk *threadKeys) get(mid uint64) *ThreadKey {
	if mid == 0 || mid > uint64(len(tk.keys)) {
		return nil
	}
	return tk.keys[mid-1]
}

// forget drops the keys of deleted messages.
func (tk *threadKeys) forget(mids []uint64) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	for _, mid := range mids {
		if mid > 0 && mid <= uint64(len(tk.keys)) {
			tk.keys[mid-1] = nil
		}
	}
}

// keyChunk is how many messages one read of the summary log covers when
// keys are made.
const keyChunk = 256

// ThreadKeys returns the ThreadKeys of mids, in order. A message's first
// key is made from its summary record (several hundred messages per read,
// spread over the CPUs); later calls read memory only. Like Message, it is
// for MIDs taken from a snapshot the caller was allowed to take.
// The keys are shared: callers must not change them.
func (t *Tenant) ThreadKeys(ctx context.Context, mids []uint64) ([]*ThreadKey, error) {
	tk := &t.tkeys
	tk.mu.Lock()
	if !tk.seeded {
		tk.seed, tk.seeded = maphash.MakeSeed(), true
	}
	var missing []uint64
	for _, mid := range mids {
		if tk.get(mid) == nil {
			missing = append(missing, mid)
		}
	}
	seed := tk.seed
	tk.mu.Unlock()
	if len(missing) > 0 {
		made, err := t.makeThreadKeys(ctx, missing, seed)
		if err != nil {
			return nil, err
		}
		tk.mu.Lock()
		if top := slices.Max(missing); top > uint64(len(tk.keys)) {
			tk.keys = slices.Grow(tk.keys, int(top)-len(tk.keys))[:top]
		}
		for i, mid := range missing {
			tk.keys[mid-1] = &made[i]
		}
		tk.mu.Unlock()
	}
	out := make([]*ThreadKey, len(mids))
	tk.mu.Lock()
	defer tk.mu.Unlock()
	for i, mid := range mids {
		if out[i] = tk.get(mid); out[i] == nil {
			return nil, fmt.Errorf("message %d: %w", mid, ErrNotFound)
		}
	}
	return out, nil
}

// makeThreadKeys reads the envelopes and heads of mids, in chunks over the
// CPUs.
func (t *Tenant) makeThreadKeys(ctx context.Context, mids []uint64, seed maphash.Seed) ([]ThreadKey, error) {
	out := make([]ThreadKey, len(mids))
	chunks := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), (len(mids)+keyChunk-1)/keyChunk) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range chunks {
				hi := min(lo+keyChunk, len(mids))
				list, err := t.ListHeads(ctx, mids[lo:hi], true, false)
				if err == nil {
					for k := range list {
						if err = list[k].Err; err != nil {
							break
						}
						out[lo+k] = threadKey(&list[k], seed)
					}
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
feed:
	for lo := 0; lo < len(mids); lo += keyChunk {
		select {
		case chunks <- lo:
		case err := <-errs:
			errs <- err
			break feed
		}
	}
	close(chunks)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
		return out, nil
	}
}

func threadKey(l *ListedMessage, seed maphash.Seed) ThreadKey {
	env := l.Envelope
	k := ThreadKey{Received: l.Received.Unix(), Size: l.Size, Sent: l.Received.Unix()}
	if !env.Date.IsZero() {
		k.Sent = env.Date.Unix()
	}
	base, reply := mailparse.BaseSubject(env.Subject)
	k.Subject, k.Reply = asciiUpper(base), reply
	if k.Subject != "" {
		k.SubjectHash = maphash.String(seed, k.Subject)
	}
	// RFC 5256 sorts by the addr-mailbox of the envelope's first address:
	// a group's name when the field starts with a group.
	first := func(l []mailparse.Address) string {
		switch {
		case len(l) == 0:
			return ""
		case l[0].Group == mailparse.GroupStart:
			return asciiUpper(l[0].Name)
		}
		return asciiUpper(l[0].LocalPart())
	}
	k.From, k.To, k.Cc = first(env.From), first(env.To), first(env.Cc)
	if env.MessageID != "" {
		k.ID = maphash.String(seed, env.MessageID)
	}
	refs := l.Head.References()
	if len(refs) == 0 && len(env.InReplyTo) > 0 {
		refs = env.InReplyTo[:1]
	}
	if len(refs) > 0 {
		k.Refs = make([]uint64, len(refs))
		for i, r := range refs {
			k.Refs[i] = maphash.String(seed, r)
		}
	}
	return k
}

// asciiUpper upper-cases ASCII letters only (RFC 4790's i;ascii-casemap),
// in a copy: the key must not hold on to the record it came from.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
