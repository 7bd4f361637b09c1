package connguard

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"time"
)

// bodies holds every request body to the body window. Requests without a
// body (every GET, so the media path) pass straight through.
//
// The window is armed before the handler runs, as a read deadline on the
// connection, so every read of the body — the handler's, and net/http's
// own discarding of what the handler left unread (up to 256 KiB) — fails
// once a window passes without BodyMinBytes. Reads through the handler's
// Body move the window on. When the body ends, net/http clears the
// deadline itself as it starts reading ahead for the next request, so a
// long answer after the body (a block stream) is never cut by it. The
// servers speak HTTP/1.1 only (neither offers h2), so a connection
// carries one request at a time and its deadline is the request's.
func (g *Guard) bodies(next http.Handler) http.Handler {
	max := g.limits.MaxBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		c, _ := r.Context().Value(connKey{}).(*conn)
		if c == nil {
			// Not a connection of this guard's listener: nothing to arm.
			next.ServeHTTP(w, r)
			return
		}
		if max >= 0 && r.ContentLength > max {
			g.metrics.dropped.WithLabelValues(reasonBodyTooLarge).Inc()
			// Not a byte of it will be read: a deadline in the past makes
			// net/http's discarding after the reply fail at once, and the
			// connection closes.
			c.Conn.SetReadDeadline(time.Unix(1, 0))
			w.Header().Set("Connection", "close")
			http.Error(w, "Request body too large.", http.StatusRequestEntityTooLarge)
			return
		}
		b := &body{src: r.Body, c: c, window: g.limits.BodyWindow, min: g.limits.BodyMinBytes}
		b.roll()
		r2 := r.WithContext(r.Context()) // a shallow copy: net/http keeps its own Body
		r2.Body = b
		if max >= 0 {
			r2.Body = http.MaxBytesReader(w, b, max)
		}
		next.ServeHTTP(w, r2)
	})
}

// connKey finds the guard's conn from a request's context.
type connKey struct{}

// connContext puts the guard's conn (under TLS, the one tls.Conn wraps)
// into every request's context: one value per connection, not per
// request.
func connContext(ctx context.Context, nc net.Conn) context.Context {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if c, ok := nc.(*conn); ok {
		return context.WithValue(ctx, connKey{}, c)
	}
	return ctx
}

// body is a request body under the body window.
type body struct {
	src    io.ReadCloser
	c      *conn
	window time.Duration
	min    int64
	got    int64 // bytes in the current window
}

func (b *body) roll() {
	b.got = 0
	b.c.armBody(time.Now().Add(b.window))
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.src.Read(p)
	b.got += int64(n)
	// At the end (io.EOF) net/http has cleared the deadline for its
	// read-ahead, which must not be given a window again; a failed read
	// is counted by the connection.
	if err == nil && b.got >= b.min {
		b.roll()
	}
	return n, err
}

func (b *body) Close() error { return b.src.Close() }
