package connguard

import (
	"errors"
	"io"
	"net/http"
	"os"
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
// long answer after the body (a block stream) is never cut by it.
func (g *Guard) bodies(next http.Handler) http.Handler {
	max := g.limits.MaxBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if max >= 0 && r.ContentLength > max {
			g.metrics.dropped.WithLabelValues(reasonBodyTooLarge).Inc()
			// Not a byte of it will be read: a deadline in the past makes
			// net/http's discarding after the reply fail at once, and the
			// connection closes.
			rc.SetReadDeadline(time.Unix(1, 0))
			w.Header().Set("Connection", "close")
			http.Error(w, "Request body too large.", http.StatusRequestEntityTooLarge)
			return
		}
		b := &body{src: r.Body, rc: rc, g: g, window: g.limits.BodyWindow, min: g.limits.BodyMinBytes}
		b.roll()
		r2 := r.WithContext(r.Context()) // a shallow copy: net/http keeps its own Body
		r2.Body = b
		if max >= 0 {
			r2.Body = http.MaxBytesReader(w, b, max)
		}
		next.ServeHTTP(w, r2)
	})
}

// body is a request body under the body window.
type body struct {
	src    io.ReadCloser
	rc     *http.ResponseController
	g      *Guard
	window time.Duration
	min    int64
	got    int64 // bytes in the current window
	failed bool  // a read failed (counted once)
}

func (b *body) roll() {
	b.got = 0
	b.rc.SetReadDeadline(time.Now().Add(b.window))
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.src.Read(p)
	b.got += int64(n)
	switch {
	case err == io.EOF:
		// The end: net/http has cleared the deadline for its read-ahead,
		// which must not be given a window again.
	case err != nil:
		if !b.failed && errors.Is(err, os.ErrDeadlineExceeded) {
			b.g.metrics.dropped.WithLabelValues(reasonBodyStall).Inc()
		}
		b.failed = true
	case b.got >= b.min:
		b.roll()
	}
	return n, err
}

func (b *body) Close() error { return b.src.Close() }
