package connguard

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// errStalled is what writes return once a connection missed its write
// window: nothing more is sent to a client that stopped reading.
var errStalled = fmt.Errorf("connguard: the client stopped reading: %w", os.ErrDeadlineExceeded)

// conn is an accepted connection under the guard. Each write, and each
// chunk of a sendfile, must complete within the write window: a client
// that accepts WriteMinBytes per WriteWindow keeps its connection however
// long the response, one that stops reading loses it within a window. Its
// slot in the caps is given back exactly once, on Close.
type conn struct {
	net.Conn
	tcp       *net.TCPConn // nil when the listener is not TCP
	g         *Guard
	key       netip.Addr
	perClient bool
	window    time.Duration
	chunk     int64

	// ext is a write deadline set from outside (net/http's TLS handshake,
	// tls.Conn's close alert, a handler), in Unix nanoseconds; 0 for none.
	// Writes use the earlier of it and their own window.
	ext atomic.Int64
	// armed is when the write window now on the socket was set (Unix
	// nanoseconds), 0 when the socket's write deadline is not the window.
	armed atomic.Int64
	// body is the body window's read deadline while one is armed, in Unix
	// nanoseconds; any other read deadline (net/http's own) clears it, so a
	// read that times out while it is set is a body that stalled.
	body    atomic.Int64
	stalled atomic.Bool
	closed  atomic.Bool
	// lr is ReadFrom's per-chunk limit, kept here so a chunk allocates
	// nothing; net/http never calls ReadFrom twice at once on a connection.
	lr io.LimitedReader
}

func (g *Guard) newConn(nc net.Conn, key netip.Addr, perClient bool) *conn {
	c := &conn{Conn: nc, g: g, key: key, perClient: perClient, window: g.limits.WriteWindow, chunk: g.limits.WriteMinBytes}
	if tcp, ok := nc.(*net.TCPConn); ok {
		c.tcp = tcp
		if g.limits.SendBuffer > 0 {
			// Best effort: a kernel that refuses keeps its autotuning, and
			// the write window still bounds how long a stall pins it.
			tcp.SetWriteBuffer(g.limits.SendBuffer)
		}
	}
	return c
}

// arm sets the write deadline for the next chunk and reports whether it is
// the window's (rather than an earlier one set from outside).
//
// Setting a deadline is not free (a runtime timer is moved), and a busy
// keep-alive connection writes thousands of times a second, so a window
// armed less than a sixteenth of a window ago is kept: each chunk still
// gets at least 15/16 of a window.
func (c *conn) arm() bool {
	now := time.Now().UnixNano()
	d := now + int64(c.window)
	if e := c.ext.Load(); e != 0 && e < d {
		c.armed.Store(0)
		c.Conn.SetWriteDeadline(time.Unix(0, e))
		return false
	}
	if a := c.armed.Load(); a != 0 && now-a < int64(c.window)/16 {
		return true
	}
	c.armed.Store(now)
	c.Conn.SetWriteDeadline(time.Unix(0, d))
	return true
}

// failed turns a write error into the connection's fate: a window missed
// marks it stalled, counts it, and makes Close reset it, so the kernel
// frees the send queue at once instead of retrying into a closed window.
func (c *conn) failed(err error, own bool) error {
	if own && errors.Is(err, os.ErrDeadlineExceeded) && c.stalled.CompareAndSwap(false, true) {
		c.g.metrics.dropped.WithLabelValues(reasonWriteStall).Inc()
		if c.tcp != nil {
			c.tcp.SetLinger(0)
		}
	}
	return err
}

func (c *conn) Write(p []byte) (int, error) {
	if c.stalled.Load() {
		return 0, errStalled
	}
	n := 0
	for n < len(p) {
		end := len(p)
		if int64(end-n) > c.chunk {
			end = n + int(c.chunk)
		}
		own := c.arm()
		m, err := c.Conn.Write(p[n:end])
		n += m
		if err != nil {
			return n, c.failed(err, own)
		}
	}
	return n, nil
}

// ReadFrom keeps the kernel's zero-copy paths: net/http hands it an
// *io.LimitedReader over the *os.File that http.ServeContent serves, and
// each chunk goes to the TCP connection's own ReadFrom as an
// *io.LimitedReader over the same file, which is what its sendfile path
// takes. Sources the kernel cannot send from are copied through Write.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if c.stalled.Load() {
		return 0, errStalled
	}
	src, remain := r, int64(math.MaxInt64)
	lr, limited := r.(*io.LimitedReader)
	if limited {
		src, remain = lr.R, lr.N
	}
	if _, ok := src.(syscall.Conn); !ok || c.tcp == nil {
		return io.Copy(writerOnly{c}, r)
	}
	var total int64
	var err error
	for remain > 0 {
		c.lr = io.LimitedReader{R: src, N: min(remain, c.chunk)}
		own := c.arm()
		n, e := c.tcp.ReadFrom(&c.lr)
		total += n
		remain -= n
		if e != nil {
			err = c.failed(e, own)
			break
		}
		if c.lr.N > 0 { // the source ended inside this chunk
			break
		}
	}
	c.lr.R = nil
	if limited {
		lr.N = remain
	}
	return total, err
}

// writerOnly hides ReadFrom so io.Copy does not call it again.
type writerOnly struct{ io.Writer }

// armBody sets a body window's deadline.
func (c *conn) armBody(t time.Time) {
	c.body.Store(t.UnixNano())
	c.Conn.SetReadDeadline(t)
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && c.body.Load() != 0 && errors.Is(err, os.ErrDeadlineExceeded) && c.body.Swap(0) != 0 {
		c.g.metrics.dropped.WithLabelValues(reasonBodyStall).Inc()
	}
	return n, err
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.body.Store(0)
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		// net/http clears the deadline after every request; the next write
		// sets its own window, so the socket need not be touched.
		if c.ext.Swap(0) != 0 {
			c.armed.Store(0) // the socket still holds the outside deadline
		}
		return nil
	}
	c.ext.Store(t.UnixNano())
	c.armed.Store(0)
	return c.Conn.SetWriteDeadline(t)
}

func (c *conn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// CloseWrite lets net/http half-close before its final wait, as it does
// on a bare TCP connection.
func (c *conn) CloseWrite() error {
	if c.tcp == nil {
		return nil
	}
	return c.tcp.CloseWrite()
}

// Close gives the slot back before closing, so a client that sees the
// connection end finds its slot free when it reconnects.
func (c *conn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.g.caps.release(c.key, c.perClient)
	}
	return c.Conn.Close()
}
