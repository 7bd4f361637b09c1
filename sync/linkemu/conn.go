package linkemu

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxQueued bounds the bytes one direction of one connection holds in its
// delay line, so a fast sender behind a long latency cannot grow memory
// without limit; reading stops (and TCP pushes back on the sender) until
// the writer catches up. 4 MiB in flight sustains 40 MiB/s at 100 ms.
const maxQueued = 4 << 20

// readSize is the most a direction reads at once when it is not rate
// limited; a limited one reads at most a burst so each read's tokens can
// be paid for in one wait.
const readSize = 32 << 10

// conn is one proxied connection: the accepted client side, the dialled
// target side and a delay line per direction.
type conn struct {
	p      *Proxy
	id     int // 1-based accept order, for log lines
	client *net.TCPConn
	// ctx bounds the dial; cancelled when the conn is shut.
	ctx    context.Context
	cancel context.CancelFunc
	// done is closed when the conn is shut, releasing every wait of its
	// goroutines that a closed socket would not.
	done chan struct{}

	// cut is guarded by p.mu, not mu, because admit decides it together
	// with the link's byte count. Once set, neither direction forwards
	// another byte, so nothing crosses the link after the cut offset.
	cut bool

	mu       sync.Mutex
	server   *net.TCPConn // nil until dialled
	isClosed bool
}

// attach records the dialled target side, unless the conn was shut while
// the dial was in progress.
func (c *conn) attach(server *net.TCPConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed {
		return false
	}
	c.server = server
	return true
}

// shut closes both sides once. abrupt resets them, so that each peer sees
// the connection fail as on a dropped link; otherwise both directions have
// already ended in order and a plain close finishes the job.
func (c *conn) shut(abrupt bool) {
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return
	}
	c.isClosed = true
	close(c.done)
	server := c.server
	c.mu.Unlock()

	c.cancel()
	closeConn := func(tc *net.TCPConn) {
		if abrupt {
			resetClose(tc)
		} else {
			// Both directions are finished; a failure leaves nothing to undo.
			_ = tc.Close()
		}
	}
	closeConn(c.client)
	if server != nil {
		closeConn(server)
	}
}

// direction is one half of a connection: bytes read from src wait in the
// delay line q until due, then are written to dst.
type direction struct {
	src, dst  *net.TCPConn
	rate      *bucket // shared by all connections; nil when unlimited
	counted   bool    // whether its bytes count toward the cut schedule
	forwarded *atomic.Int64
	q         *queue
}

func (p *Proxy) serve(c *conn, target string) {
	defer p.unregister(c)
	var dialer net.Dialer
	nc, err := dialer.DialContext(c.ctx, "tcp", target)
	if err != nil {
		if c.ctx.Err() == nil {
			p.logf("linkemu: conn %d: dial target: %v", c.id, err)
		}
		// The client sees a reset, much as if the hub had refused it.
		c.shut(true)
		return
	}
	server := nc.(*net.TCPConn)
	if !c.attach(server) {
		resetClose(server)
		return
	}
	up := &direction{src: c.client, dst: server, rate: p.up, counted: !p.cfg.CutDownOnly, forwarded: &p.bytesUp, q: newQueue()}
	down := &direction{src: server, dst: c.client, rate: p.down, counted: true, forwarded: &p.bytesDown, q: newQueue()}
	var wg sync.WaitGroup
	for _, d := range []*direction{up, down} {
		wg.Go(func() { c.read(d) })
		wg.Go(func() { c.write(d) })
	}
	wg.Wait()
	// Every way out of the pumps other than both directions ending in
	// order has already shut the conn abruptly, which makes this a no-op.
	c.shut(false)
}

// read moves bytes from d.src into the delay line, paced by the rate
// limit. Pacing here rather than at the writer keeps the delay line at
// the bandwidth-delay product: a limit applied after the delay would let
// the line fill to maxQueued and turn a 50 ms link into a seconds-long one.
func (c *conn) read(d *direction) {
	size := readSize
	if d.rate != nil {
		size = int(d.rate.burst)
	}
	buf := make([]byte, size)
	t := newStoppedTimer()
	for {
		n, err := d.src.Read(buf)
		if n > 0 {
			if d.rate != nil && !pause(t, d.rate.reserve(n, time.Now()), c.done) {
				return
			}
			data := make([]byte, n)
			copy(data, buf)
			if !c.push(d, chunk{data: data, due: time.Now().Add(c.p.cfg.Latency)}) {
				return
			}
		}
		if err != nil {
			// The end of the stream travels the delay line like data, so
			// the peer sees it after the bytes that preceded it.
			end := endReset
			if errors.Is(err, io.EOF) {
				end = endEOF
			}
			c.push(d, chunk{end: end, due: time.Now().Add(c.p.cfg.Latency)})
			return
		}
	}
}

func (c *conn) push(d *direction, ch chunk) bool {
	held, ok := d.q.push(ch, c.done)
	if ok {
		c.p.notePeak(int64(held))
	}
	return ok
}

// write delivers the delay line's chunks to d.dst once each is due, and
// makes the cut when admit says a chunk reaches the cut offset.
func (c *conn) write(d *direction) {
	t := newStoppedTimer()
	for {
		ch, ok := d.q.pop(c.done)
		if !ok || !pause(t, time.Until(ch.due), c.done) {
			return
		}
		switch ch.end {
		case endEOF:
			// Passing the half-close on keeps protocols that read to EOF
			// while still sending working through the proxy.
			if err := d.dst.CloseWrite(); err != nil {
				c.shut(true)
			}
			return
		case endReset:
			c.shut(true)
			return
		}
		allow, cut, ok := c.p.admit(c, len(ch.data), d.counted)
		if !ok {
			return
		}
		n, err := d.dst.Write(ch.data[:allow])
		d.forwarded.Add(int64(n))
		d.q.release(len(ch.data))
		if cut || err != nil {
			c.shut(true)
			return
		}
	}
}

func newStoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// pause waits for d using t, and reports false if done closes first.
func pause(t *time.Timer, d time.Duration, done <-chan struct{}) bool {
	if d <= 0 {
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	t.Reset(d)
	select {
	case <-t.C:
		return true
	case <-done:
		t.Stop()
		return false
	}
}

// endKind marks a chunk that ends its stream instead of carrying data.
type endKind uint8

const (
	endNone  endKind = iota
	endEOF           // the sender closed its side in order
	endReset         // reading failed; the connection is lost
)

type chunk struct {
	data []byte
	due  time.Time
	end  endKind
}

// queue is a delay line with one reader goroutine pushing and one writer
// goroutine popping. Bytes stay counted against maxQueued from push until
// release, i.e. until they have been written, so the bound covers the
// chunk the writer holds too.
type queue struct {
	mu     sync.Mutex
	chunks []chunk
	held   int
	// pushed and freed carry wake-ups; capacity one suffices because each
	// has a single waiter, which rechecks the state after waking.
	pushed chan struct{}
	freed  chan struct{}
}

func newQueue() *queue {
	return &queue{pushed: make(chan struct{}, 1), freed: make(chan struct{}, 1)}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push appends ch, waiting for room while the line is full, and returns
// the bytes held afterwards; it reports false if done closes first. A
// chunk always fits an empty line, so one larger than the bound cannot
// wedge it.
func (q *queue) push(ch chunk, done <-chan struct{}) (int, bool) {
	for {
		q.mu.Lock()
		if q.held == 0 || q.held+len(ch.data) <= maxQueued {
			q.chunks = append(q.chunks, ch)
			q.held += len(ch.data)
			held := q.held
			q.mu.Unlock()
			wake(q.pushed)
			return held, true
		}
		q.mu.Unlock()
		select {
		case <-q.freed:
		case <-done:
			return 0, false
		}
	}
}

// pop takes the oldest chunk, waiting for one; it reports false if done
// closes first.
func (q *queue) pop(done <-chan struct{}) (chunk, bool) {
	for {
		q.mu.Lock()
		if len(q.chunks) > 0 {
			ch := q.chunks[0]
			q.chunks[0] = chunk{} // let the data go once written
			q.chunks = q.chunks[1:]
			q.mu.Unlock()
			return ch, true
		}
		q.mu.Unlock()
		select {
		case <-q.pushed:
		case <-done:
			return chunk{}, false
		}
	}
}

// release returns n popped bytes' room to the line once they are written.
func (q *queue) release(n int) {
	q.mu.Lock()
	q.held -= n
	q.mu.Unlock()
	wake(q.freed)
}
