package jmap

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Push (RFC 8620 7.3): a text/event-stream of "state" events carrying a
// StateChange for the accounts whose states changed, after new mail (the
// tenant's Watch) or the user's keyword changes. The first event gives the
// current states. Events are at most one per pushDelay, so a burst of
// ingest becomes one event.

const (
	pushDelay = 100 * time.Millisecond
	maxPing   = 3600 // seconds
)

// pushTypes are the data types whose states are pushed.
var pushTypes = []string{"Email", "EmailDelivery", "Mailbox", "Thread"}

func (h *Handler) serveEventSource(w http.ResponseWriter, r *http.Request, u *user) {
	q := r.URL.Query()
	types := map[string]bool{}
	if t := q.Get("types"); t == "" || t == "*" {
		for _, n := range pushTypes {
			types[n] = true
		}
	} else {
		for _, n := range strings.Split(t, ",") {
			types[strings.TrimSpace(n)] = true
		}
	}
	closeAfterState := false
	switch q.Get("closeafter") {
	case "", "no":
	case "state":
		closeAfterState = true
	default:
		http.Error(w, `closeafter must be "state" or "no"`, http.StatusBadRequest)
		return
	}
	ping := 0
	if p := q.Get("ping"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			http.Error(w, "ping must be a number of seconds", http.StatusBadRequest)
			return
		}
		ping = min(n, maxPing)
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	release, ok := h.acquireStream(u.key())
	if !ok {
		http.Error(w, "too many event streams", http.StatusTooManyRequests)
		return
	}
	defer release()

	wake := make(chan struct{}, 1)
	signal := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	// The watch also keeps the tenant open while the stream lasts.
	unwatch := u.t.Watch(func(uint64, int) { signal() })
	defer unwatch()
	unsubscribe := h.subscribeFlags(u.key(), wake)
	defer unsubscribe()

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()

	rq := &request{h: h, ctx: r.Context(), u: u}
	sent := map[string]map[string]string{}
	push := func() (bool, error) {
		rq.readable = nil // grants may have changed
		changed := map[string]map[string]string{}
		for _, acct := range rq.accounts() {
			st, _, err := rq.state(acct)
			if err != nil {
				continue // access removed meanwhile
			}
			id := accountID(acct.ID)
			now := map[string]string{"Email": st.email(), "Mailbox": st.mailbox(), "Thread": st.thread(),
				"EmailDelivery": joinState('d', st.maxMID)}
			diff := map[string]string{}
			for typ, s := range now {
				if types[typ] && sent[id][typ] != s {
					diff[typ] = s
				}
			}
			sent[id] = now
			if len(diff) > 0 {
				changed[id] = diff
			}
		}
		if len(changed) == 0 {
			return false, nil
		}
		b, err := json.Marshal(map[string]any{"@type": "StateChange", "changed": changed})
		if err != nil {
			return false, err
		}
		if _, err := fmt.Fprintf(w, "event: state\ndata: %s\n\n", b); err != nil {
			return false, err
		}
		flusher.Flush()
		return true, nil
	}

	var tick <-chan time.Time
	if ping > 0 {
		t := time.NewTicker(time.Duration(ping) * time.Second)
		defer t.Stop()
		tick = t.C
	}
	pushed, err := push()
	for err == nil && !(closeAfterState && pushed) {
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case <-tick:
			_, err = fmt.Fprintf(w, "event: ping\ndata: {\"interval\":%d}\n\n", ping)
			flusher.Flush()
		case <-wake:
			// Let a burst settle into one event.
			select {
			case <-time.After(pushDelay):
			case <-r.Context().Done():
				return
			case <-h.done:
				return
			}
			pushed, err = push()
		}
	}
}

func (h *Handler) acquireStream(key string) (func(), bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams[key] >= maxStreamsPerUser {
		return nil, false
	}
	h.streams[key]++
	sessions := h.met.Load().Sessions
	sessions.Inc()
	return func() {
		sessions.Dec()
		h.mu.Lock()
		if h.streams[key]--; h.streams[key] == 0 {
			delete(h.streams, key)
		}
		h.mu.Unlock()
	}, true
}

// subscribeFlags registers ch to be signalled when the user changes
// keywords.
func (h *Handler) subscribeFlags(key string, ch chan struct{}) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.flagSub[key] == nil {
		h.flagSub[key] = map[chan struct{}]bool{}
	}
	h.flagSub[key][ch] = true
	return func() {
		h.mu.Lock()
		delete(h.flagSub[key], ch)
		if len(h.flagSub[key]) == 0 {
			delete(h.flagSub, key)
		}
		h.mu.Unlock()
	}
}

func (h *Handler) notifyFlags(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.flagSub[key] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
