package hub

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"outpost/sync/wire"
)

// The hub listens on the internet. A stranger can make it do a TLS
// handshake and answer one refusal per request; everything after that
// costs only a request that proved who it is. Failed attempts (a request
// without a client certificate, an unknown or revoked device, a bad
// enrolment token, a wrong admin token) are counted per source address:
// past a burst, the source is answered 429 with Retry-After (before its
// body or token is looked at on enrolment and the admin API; instead of
// the refusal on the other sync paths, so an enrolled box behind the same
// NAT is still served), and each failure is logged, through a limiter of
// its own so a flood cannot fill the disk with log lines.

const (
	// failureBurst failures are heard from a source before it must wait;
	// then one more every failureEvery. A technician mistyping a token, or
	// a revoked box retrying (every 10 minutes at most), stays far below.
	failureBurst = 10
	failureEvery = 6 * time.Second
	// maxSources bounds the table of sources (a few hundred bytes each).
	// When it is full the source whose last failure is oldest is
	// forgotten: a source the hub forgot starts again with a full burst.
	maxSources = 4096
	// Failure log lines: a burst of 20, then one a second; the next line
	// after a gap says how many were not logged.
	logBurst = 20
	logEvery = time.Second
)

// sourceLimiter counts failed attempts per source.
type sourceLimiter struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[netip.Prefix]*list.Element // of *sourceEntry
	lru     *list.List                     // front: latest failure
}

type sourceEntry struct {
	src netip.Prefix
	lim *rate.Limiter
}

func newSourceLimiter(now func() time.Time) *sourceLimiter {
	return &sourceLimiter{now: now, entries: map[netip.Prefix]*list.Element{}, lru: list.New()}
}

// sourceOf is the source a request is counted under: its IPv4 address, or
// the /64 of its IPv6 address (one site or one host gets a whole /64, so
// counting single IPv6 addresses would let one attacker use billions).
func sourceOf(r *http.Request) netip.Prefix {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// wait is how long src must wait before its next attempt is heard; 0 if
// it may go on.
func (l *sourceLimiter) wait(src netip.Prefix) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.entries[src]
	if !ok {
		return 0
	}
	tokens := el.Value.(*sourceEntry).lim.TokensAt(l.now())
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) * float64(failureEvery)))
}

// fail counts a failed attempt from src.
func (l *sourceLimiter) fail(src netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	el, ok := l.entries[src]
	if ok {
		l.lru.MoveToFront(el)
	} else {
		if l.lru.Len() >= maxSources {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.entries, old.Value.(*sourceEntry).src)
		}
		el = l.lru.PushFront(&sourceEntry{src: src, lim: rate.NewLimiter(rate.Every(failureEvery), failureBurst)})
		l.entries[src] = el
	}
	el.Value.(*sourceEntry).lim.AllowN(now, 1)
}

// size is how many sources the table holds.
func (l *sourceLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// failureLog logs refused requests, at most logBurst at once and then one
// per logEvery, counting what it drops.
type failureLog struct {
	lim     *rate.Limiter
	dropped atomic.Int64
}

func newFailureLog() *failureLog {
	return &failureLog{lim: rate.NewLimiter(rate.Every(logEvery), logBurst)}
}

// refused counts a failed attempt from r's source, logs it (rate-limited)
// and says how the connection must end: a peer that failed to prove who
// it is gets no keep-alive, so each attempt pays a TLS handshake.
func (h *Hub) refused(w http.ResponseWriter, r *http.Request, reason string) {
	src := sourceOf(r)
	h.sources.fail(src)
	h.metrics.refused.WithLabelValues(reason).Inc()
	w.Header().Set("Connection", "close")
	if !h.failLog.lim.AllowN(h.now(), 1) {
		h.failLog.dropped.Add(1)
		return
	}
	args := []any{"source", src.String(), "method", r.Method, "path", r.URL.Path, "reason", reason}
	if dev, ok := wire.PeerDevice(r.TLS); ok {
		args = append(args, "device", dev.String())
	}
	if n := h.failLog.dropped.Swap(0); n > 0 {
		args = append(args, "not_logged_before", n)
	}
	h.log.Warn("request refused", args...)
}

// throttled answers 429 if r's source failed too often, and reports
// whether it did. It costs a map lookup.
func (h *Hub) throttled(w http.ResponseWriter, r *http.Request, sync bool) bool {
	d := h.sources.wait(sourceOf(r))
	if d <= 0 {
		return false
	}
	h.metrics.refused.WithLabelValues("rate_limited").Inc()
	secs := int(math.Ceil(d.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	w.Header().Set("Connection", "close")
	msg := "too many failed attempts from this address; try again in " + strconv.Itoa(secs) + " s"
	if sync {
		h.metrics.requests.WithLabelValues(r.URL.Path, wire.CodeRateLimited).Inc()
		wire.WriteError(w, http.StatusTooManyRequests, wire.CodeRateLimited, msg)
	} else {
		adminJSON(w, http.StatusTooManyRequests, AdminError{Error: msg})
	}
	return true
}
