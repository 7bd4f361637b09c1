package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// rawConn is the raw client's one keep-alive HTTP/1.1 connection. The raw
// client exists because with net/http's Transport a single core of load
// generator saturates long before nginx does: profiling it showed 41 % of
// its CPU copying response bodies out of the kernel (read(2) of 2 GB/s)
// while nginx still had a third of its core to spare. The raw client
// writes the request itself, parses the response head with net/http's own
// http.ReadResponse, and then discards the body in the kernel (MSG_TRUNC on
// Linux), counting every byte but copying none, so the server under test,
// not the client, is what a run measures.
type rawConn struct {
	conn *net.TCPConn
	rc   syscall.RawConn
	br   *bufio.Reader
	stop func() bool // unregisters the close-on-cancel hook
}

// rawTarget is what the raw client needs of a URL, computed once.
type rawTarget struct {
	addr string // host:port to dial
	head string // "GET /path HTTP/1.1\r\nHost: ...\r\n...Range: bytes="
}

func newRawTarget(u string) (rawTarget, error) {
	p, err := url.Parse(u)
	if err != nil {
		return rawTarget{}, err
	}
	if p.Scheme != "http" {
		return rawTarget{}, fmt.Errorf("the raw client speaks plain http only, not %q; use the stdlib client", p.Scheme)
	}
	addr := p.Host
	if p.Port() == "" {
		addr = net.JoinHostPort(p.Hostname(), "80")
	}
	head := "GET " + p.RequestURI() + " HTTP/1.1\r\nHost: " + p.Host + "\r\nUser-Agent: outpost-loadtest\r\nRange: bytes="
	return rawTarget{addr: addr, head: head}, nil
}

// getRaw is get over the raw connection, with the same checks.
func (c *client) getRaw(ctx context.Context, i int, t target, off, n int64) (string, error) {
	rt := c.raw[i]
	if c.conn == nil {
		if err := c.dialRaw(ctx, rt.addr); err != nil {
			return "transport", fmt.Errorf("GET %s: %w", t.url, err)
		}
	}
	last := off + n - 1
	c.wbuf = append(c.wbuf[:0], rt.head...)
	c.wbuf = strconv.AppendInt(c.wbuf, off, 10)
	c.wbuf = append(c.wbuf, '-')
	c.wbuf = strconv.AppendInt(c.wbuf, last, 10)
	c.wbuf = append(c.wbuf, "\r\n\r\n"...)
	if _, err := c.conn.conn.Write(c.wbuf); err != nil {
		c.closeRaw()
		return "transport", fmt.Errorf("GET %s: %w", t.url, err)
	}
	resp, err := http.ReadResponse(c.conn.br, nil)
	if err != nil {
		c.closeRaw()
		return "transport", fmt.Errorf("GET %s: read response: %w", t.url, err)
	}
	if kind, err := check(resp, t, off, n); err != nil {
		c.closeRaw() // the body may be the whole file: drop the connection instead
		return kind, err
	}
	got, err := c.discardRaw(n)
	if err != nil {
		c.closeRaw()
		return "body", fmt.Errorf("GET %s range %d-%d: read body after %d bytes: %w", t.url, off, last, got, err)
	}
	if resp.Close {
		c.closeRaw()
	}
	return "", nil
}

func (c *client) dialRaw(ctx context.Context, addr string) error {
	if c.onDial != nil {
		c.onDial()
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		conn.Close()
		return fmt.Errorf("dial %s: not a TCP connection", addr)
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		conn.Close()
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	// The end of the run closes the connection, which is what interrupts a
	// request in flight.
	stop := context.AfterFunc(ctx, func() { tc.Close() })
	c.conn = &rawConn{conn: tc, rc: rc, br: bufio.NewReaderSize(tc, 16<<10), stop: stop}
	return nil
}

func (c *client) closeRaw() {
	if c.conn != nil {
		c.conn.stop()
		c.conn.conn.Close()
		c.conn = nil
	}
}

// discardRaw consumes the n body bytes: what the head's read already
// buffered, then the rest straight from the socket.
func (c *client) discardRaw(n int64) (int64, error) {
	k := min(int64(c.conn.br.Buffered()), n)
	if _, err := c.conn.br.Discard(int(k)); err != nil {
		return 0, err
	}
	got := k
	for got < n {
		m, err := discardSocket(c.conn.rc, c.buf[:min(n-got, int64(len(c.buf)))])
		got += int64(m)
		if err != nil {
			return got, err
		}
		if m == 0 {
			return got, errors.New("connection closed mid-body")
		}
	}
	return got, nil
}

// check verifies a range response's head: 206, the exact Content-Length,
// and the Content-Range of what was asked.
func check(resp *http.Response, t target, off, n int64) (string, error) {
	last := off + n - 1
	if resp.StatusCode != http.StatusPartialContent {
		return fmt.Sprintf("status %d", resp.StatusCode), fmt.Errorf("GET %s range %d-%d: want 206 Partial Content, got %s", t.url, off, last, resp.Status)
	}
	if resp.ContentLength != n {
		return "content-length", fmt.Errorf("GET %s range %d-%d: want Content-Length %d, got %d", t.url, off, last, n, resp.ContentLength)
	}
	wantCR := "bytes " + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(last, 10) + "/" + strconv.FormatInt(t.size, 10)
	if cr := resp.Header.Get("Content-Range"); cr != wantCR {
		return "content-range", fmt.Errorf("GET %s: want Content-Range %q, got %q", t.url, wantCR, cr)
	}
	return "", nil
}
