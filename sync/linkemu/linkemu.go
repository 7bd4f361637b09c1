// Package linkemu is a TCP proxy that makes a loopback connection behave like
// the link between a box and its hub: thin, slow to answer and prone to
// dropping mid-transfer. Outpost's sync protocol exists for exactly that
// link, and tests that run box and hub on 127.0.0.1 would otherwise only
// ever see a perfect network, so resumption, timeouts and throughput under
// a bandwidth-delay product would go untested.
//
// The proxy forwards bytes and never looks at them, so it sits between the
// two ends of a TLS session without either noticing. Each direction of the
// link has its own bandwidth limit, shared by all connections as on a real
// uplink, and each chunk of bytes is delayed by a fixed one-way latency.
//
// Cuts are placed by bytes, not by time: the link is cut after a random
// number of bytes drawn from a seeded generator, so the same seed cuts at
// the same points in the byte stream however fast or loaded the machine
// is, and a failure found with one seed can be replayed.
package linkemu

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes the emulated link.
type Config struct {
	// Target is the host:port dialled for each accepted connection.
	Target string
	// RateBytesPerSec limits each direction of the link; 0 means unlimited.
	// All connections share one limit per direction, as they would share a
	// real uplink, and bursts are small (at most 16 KiB, less at rates
	// under 320 KiB/s) so a transfer cannot outrun the limit by more.
	RateBytesPerSec int64
	// Latency delays every chunk in both directions, so a round trip takes
	// at least twice as long. Delayed chunks are pipelined: the delay does
	// not lower throughput below the rate as long as the bandwidth-delay
	// product fits the 4 MiB each direction of a connection may hold.
	Latency time.Duration
	// Seed seeds the cut schedule; the same seed gives the same cut offsets.
	Seed int64
	// CutMeanBytes, if > 0, cuts the link after a number of bytes drawn
	// uniformly from [CutMeanBytes/2, CutMeanBytes*3/2] (at least 1), then
	// draws the next gap. Bytes are counted over both directions and all
	// connections of the link, at the moment they are forwarded; the cut
	// falls in whichever connection carries the byte at that offset.
	CutMeanBytes int64
	// MaxCuts stops the schedule after this many scheduled cuts; 0 means
	// no limit. Cuts made by CutAll do not count.
	MaxCuts int
	// CutDownOnly counts only target-to-client bytes toward the schedule,
	// for tests that want cuts placed in the download stream alone.
	CutDownOnly bool
	// Logf, if set, is told about connection events the caller cannot see
	// otherwise (dial failures, cuts). It is called from the proxy's
	// goroutines, never after Close returns.
	Logf func(format string, args ...any)
}

// maxCutMean keeps offset arithmetic far from overflow; no test moves
// anything near 2^60 bytes.
const maxCutMean = 1 << 60

func (cfg *Config) validate() error {
	switch {
	case cfg.Target == "":
		return errors.New("no target")
	case cfg.RateBytesPerSec < 0:
		return fmt.Errorf("negative rate %d", cfg.RateBytesPerSec)
	case cfg.Latency < 0:
		return fmt.Errorf("negative latency %v", cfg.Latency)
	case cfg.CutMeanBytes < 0 || cfg.CutMeanBytes > maxCutMean:
		return fmt.Errorf("cut mean %d out of range [0, 2^60]", cfg.CutMeanBytes)
	case cfg.MaxCuts < 0:
		return fmt.Errorf("negative max cuts %d", cfg.MaxCuts)
	}
	return nil
}

// Stats is a snapshot of what the proxy has done.
type Stats struct {
	BytesUp   int64 // client to target, bytes written to the target
	BytesDown int64 // target to client, bytes written to the client
	Conns     int   // connections accepted
	Open      int   // connections not yet closed
	// Cuts counts scheduled cuts plus calls to CutAll.
	Cuts int
	// CutOffsets are the link byte offsets of the scheduled cuts so far, in
	// order; they equal CutSchedule(Seed, CutMeanBytes, len(CutOffsets)).
	CutOffsets []int64
	// PeakQueued is the most bytes one direction of one connection has held
	// in its delay line at once; with Latency set it shows how much of the
	// bandwidth-delay product was in flight.
	PeakQueued int64
}

// Proxy is a running emulated link. Its methods are safe for concurrent use.
type Proxy struct {
	cfg Config
	ln  *net.TCPListener
	// ctx is cancelled by Close so that dials in progress give up.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	up     *bucket // nil when unlimited
	down   *bucket

	bytesUp, bytesDown atomic.Int64
	peakQueued         atomic.Int64

	mu       sync.Mutex
	target   string
	closed   bool
	conns    map[*conn]struct{}
	accepted int
	cuts     int
	// sched is nil when the link is never cut by schedule.
	sched *schedule
	// linkBytes counts bytes toward the schedule; nextCut is the value of
	// linkBytes at which the next scheduled cut falls, or -1 for none.
	linkBytes  int64
	nextCut    int64
	cutOffsets []int64
}

// Start listens on an ephemeral port of 127.0.0.1 and forwards every
// accepted connection to cfg.Target through the emulated link.
func Start(cfg Config) (*Proxy, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("linkemu: start: %w", err)
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("linkemu: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	p := &Proxy{
		cfg:     cfg,
		ln:      ln,
		ctx:     ctx,
		cancel:  cancel,
		up:      newBucket(cfg.RateBytesPerSec, now),
		down:    newBucket(cfg.RateBytesPerSec, now),
		target:  cfg.Target,
		conns:   make(map[*conn]struct{}),
		nextCut: -1,
	}
	if cfg.CutMeanBytes > 0 {
		p.sched = newSchedule(cfg.Seed, cfg.CutMeanBytes)
		p.nextCut = p.sched.next()
	}
	p.wg.Go(p.acceptLoop)
	return p, nil
}

// Addr is the host:port clients should dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetTarget makes connections accepted from now on dial addr, as when a hub
// restarts on a new port; open connections keep their target.
func (p *Proxy) SetTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

// CutAll cuts every open connection at once, as when the link goes down.
// It counts as one cut and leaves the cut schedule where it was.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.cuts++
	victims := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		c.cut = true
		victims = append(victims, c)
	}
	p.mu.Unlock()
	for _, c := range victims {
		c.shut(true)
	}
}

// Stats returns a snapshot of the counters; it also works after Close.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{
		BytesUp:    p.bytesUp.Load(),
		BytesDown:  p.bytesDown.Load(),
		Conns:      p.accepted,
		Open:       len(p.conns),
		Cuts:       p.cuts,
		CutOffsets: append([]int64(nil), p.cutOffsets...),
		PeakQueued: p.peakQueued.Load(),
	}
}

// Close stops accepting, resets every open connection and returns once all
// of the proxy's goroutines have stopped. Calling it again does nothing.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	open := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		open = append(open, c)
	}
	p.mu.Unlock()

	p.cancel()
	err := p.ln.Close()
	for _, c := range open {
		c.shut(true)
	}
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("linkemu: close listener: %w", err)
	}
	return nil
}

func (p *Proxy) logf(format string, args ...any) {
	if p.cfg.Logf != nil {
		p.cfg.Logf(format, args...)
	}
}

// acceptBackoff paces retries after an accept error that is not the
// listener closing (such as running out of file descriptors), so that a
// persistent one does not spin a core.
const acceptBackoff = 10 * time.Millisecond

func (p *Proxy) acceptLoop() {
	for {
		tc, err := p.ln.AcceptTCP()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			p.logf("linkemu: accept: %v", err)
			t := time.NewTimer(acceptBackoff)
			select {
			case <-p.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		c, target := p.register(tc)
		if c == nil {
			resetClose(tc)
			continue
		}
		p.wg.Go(func() { p.serve(c, target) })
	}
}

// register records a newly accepted connection, so that Close and CutAll
// reach it even while its target is still being dialled. It returns nil
// once the proxy is closing.
func (p *Proxy) register(client *net.TCPConn) (*conn, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ""
	}
	p.accepted++
	ctx, cancel := context.WithCancel(p.ctx)
	c := &conn{
		p:      p,
		id:     p.accepted,
		client: client,
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	p.conns[c] = struct{}{}
	return c, p.target
}

func (p *Proxy) unregister(c *conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// admit lets n bytes of c cross the link in a direction whose bytes do or
// do not count toward the cut schedule. It returns how many of them may be
// forwarded and whether c must be cut right after forwarding them; ok is
// false when c has already been chosen for a cut and may forward nothing
// more.
//
// Deciding under one lock is what makes cuts exact: bytes from both
// directions and every connection are ordered here, so exactly one chunk
// straddles each scheduled offset and it is split there.
func (p *Proxy) admit(c *conn, n int, counted bool) (allow int, cut, ok bool) {
	p.mu.Lock()
	if c.cut {
		p.mu.Unlock()
		return 0, false, false
	}
	if !counted || p.nextCut < 0 || p.linkBytes+int64(n) < p.nextCut {
		if counted {
			p.linkBytes += int64(n)
		}
		p.mu.Unlock()
		return n, false, true
	}
	at := p.nextCut
	allow = int(at - p.linkBytes)
	p.linkBytes = at
	c.cut = true
	p.cuts++
	p.cutOffsets = append(p.cutOffsets, at)
	if p.cfg.MaxCuts > 0 && len(p.cutOffsets) >= p.cfg.MaxCuts {
		p.nextCut = -1
	} else {
		p.nextCut += p.sched.next()
	}
	p.mu.Unlock()
	// Outside the lock, so that a Logf that asks for Stats cannot deadlock.
	p.logf("linkemu: cut conn %d at link byte %d", c.id, at)
	return allow, true, true
}

// notePeak records a delay line's fill level for Stats.PeakQueued.
func (p *Proxy) notePeak(held int64) {
	for {
		old := p.peakQueued.Load()
		if held <= old || p.peakQueued.CompareAndSwap(old, held) {
			return
		}
	}
}

// resetClose closes tc so that its peer sees a reset rather than an
// orderly end, as it would if the link had dropped.
func resetClose(tc *net.TCPConn) {
	// The only failure is on an already closed conn, which needs nothing.
	_ = tc.SetLinger(0)
	_ = tc.Close()
}

// bucket paces one direction of the link. Callers reserve bytes and wait
// the returned delay; the token count may go negative, which queues later
// callers behind earlier ones in reservation order, so connections share
// the rate fairly without a goroutine of their own.
type bucket struct {
	rate  float64 // bytes per second
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// maxBurst bounds how far ahead of the rate a direction may run; small
// enough that a test's lower bound on transfer time stays tight.
const maxBurst = 16 << 10

// burstFor is 50 ms worth of traffic, within [1 KiB, maxBurst], so that at
// thin rates a burst is not seconds long.
func burstFor(rate int64) int {
	return int(min(max(rate/20, 1<<10), maxBurst))
}

func newBucket(rate int64, now time.Time) *bucket {
	if rate == 0 {
		return nil
	}
	b := float64(burstFor(rate))
	return &bucket{rate: float64(rate), burst: b, tokens: b, last: now}
}

// reserve takes n tokens at time now and returns how long to wait before
// sending them.
func (b *bucket) reserve(n int, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	// Round up so that a waiter never sends before its tokens exist.
	return time.Duration(math.Ceil(-b.tokens * float64(time.Second) / b.rate))
}
