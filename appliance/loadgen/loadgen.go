// Package loadgen measures how fast an HTTP server hands out byte ranges of
// media files, the way a classroom of video players does: many keep-alive
// connections, each asking for the next few hundred KiB of a file. It exists
// to compare the portal's media route with nginx on the same files and the
// same machine, so it verifies every response (a server that ignores Range
// is fast and wrong) and counts only verified bytes as throughput.
//
// Each client is one keep-alive connection. By default it is a raw HTTP/1.1
// client that drops response bodies in the kernel after counting them (see
// rawConn for why); Config.Stdlib switches to net/http's Transport, which
// copies every body and so needs several times the CPU per request.
//
// It also has the small pieces the benchmark script needs around that: a
// readiness poll for cold-start timing, a page-view driver, and a writer for
// course packs of random media.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config says what load to apply.
type Config struct {
	// URLs are the files to read ranges of; each request picks one at random.
	URLs []string
	// Clients is the number of concurrent clients, each with its own
	// keep-alive connection.
	Clients int
	// Duration bounds the run; requests still in flight when it ends are
	// abandoned and counted neither as done nor as errors.
	Duration time.Duration
	// RangeSize is the length of every range. Offsets are multiples of it,
	// as a player reading a file in equal segments would ask; a file shorter
	// than RangeSize is asked for whole.
	RangeSize int64
	// Seed makes the sequence of (file, offset) choices repeatable.
	Seed uint64
	// Stdlib makes each client a net/http Transport (limited to one
	// connection) instead of the raw HTTP/1.1 client. It copies every body
	// into user space, so it needs far more CPU per request; it is there
	// for https and for checking the raw client's figures.
	Stdlib bool
}

// Result is what a run measured. Latency is from sending a request to
// reading the last byte of its body.
type Result struct {
	Clients     int
	Connections int64 // TCP connections opened; more than Clients means the server closed some
	Elapsed     time.Duration
	Requests    int64 // verified 206 responses
	Bytes       int64 // body bytes of verified responses
	Errors      int64
	// ErrorKinds counts errors by kind ("status 200", "content-length", ...).
	ErrorKinds map[string]int64
	// FirstError describes one failed request, to show what went wrong.
	FirstError    string
	P50, P99, Max time.Duration
	// ClientCPU is the CPU time the load generator used during the run
	// (0 where it cannot be measured). Near Elapsed times the cores it may
	// use, the client rather than the server limited the run.
	ClientCPU         time.Duration
	RequestsPerSecond float64
	MBPerSecond       float64 // 10^6 bytes per second, as sha256sum-style tools count
}

// target is one URL and its size, learnt before the run.
type target struct {
	url  string
	size int64
}

// Run applies the load until cfg.Duration has passed or ctx is cancelled.
// A cancelled ctx still returns what was measured so far, with ctx's error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("load test: no URLs given")
	}
	if cfg.Clients < 1 || cfg.Duration <= 0 || cfg.RangeSize < 1 {
		return nil, fmt.Errorf("load test: need clients >= 1, duration > 0 and range >= 1 byte; got %d, %v, %d", cfg.Clients, cfg.Duration, cfg.RangeSize)
	}
	targets, err := probeSizes(ctx, cfg.URLs)
	if err != nil {
		return nil, err
	}

	var raw []rawTarget
	if !cfg.Stdlib {
		for _, t := range targets {
			rt, err := newRawTarget(t.url)
			if err != nil {
				return nil, fmt.Errorf("load test: %s: %w", t.url, err)
			}
			raw = append(raw, rt)
		}
	}
	var dials atomic.Int64
	// The clock starts before the run's deadline is set, so Elapsed is
	// never shorter than Duration and rates are per the time really spent.
	start, cpu0 := time.Now(), processCPU()
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	// A request cut off by the end of the run can leave a dial behind (the
	// transport dials independently of the request's context); only dials
	// during the run say anything about the server.
	onDial := func() {
		if runCtx.Err() == nil {
			dials.Add(1)
		}
	}
	clients := make([]*client, cfg.Clients)
	for i := range clients {
		clients[i] = newClient(targets, raw, cfg.RangeSize, rand.New(rand.NewPCG(cfg.Seed, uint64(i))), onDial)
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { c.run(runCtx) })
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := &Result{Clients: cfg.Clients, Connections: dials.Load(), Elapsed: elapsed, ClientCPU: processCPU() - cpu0, ErrorKinds: map[string]int64{}}
	var h histogram
	for _, c := range clients {
		if c.tr != nil {
			c.tr.CloseIdleConnections()
		}
		c.closeRaw()
		h.merge(&c.hist)
		res.Requests += c.requests
		res.Bytes += c.bytes
		for k, n := range c.errKinds {
			res.ErrorKinds[k] += n
			res.Errors += n
		}
		if res.FirstError == "" && c.firstErr != nil {
			res.FirstError = c.firstErr.Error()
		}
	}
	res.P50, res.P99, res.Max = h.quantile(0.50), h.quantile(0.99), h.quantile(1)
	if s := elapsed.Seconds(); s > 0 {
		res.RequestsPerSecond = float64(res.Requests) / s
		res.MBPerSecond = float64(res.Bytes) / s / 1e6
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("load test: %w", err)
	}
	return res, nil
}

// probeSizes learns each URL's size with HEAD, falling back to a one-byte
// range request for servers that refuse HEAD or answer it without a
// Content-Length.
func probeSizes(ctx context.Context, urls []string) ([]target, error) {
	tr := newTransport(nil)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	out := make([]target, 0, len(urls))
	for _, u := range urls {
		size, err := probeSize(ctx, hc, u)
		if err != nil {
			return nil, fmt.Errorf("load test: size of %s: %w", u, err)
		}
		if size < 1 {
			return nil, fmt.Errorf("load test: size of %s: the file is empty; there is no range to ask for", u)
		}
		out = append(out, target{url: u, size: size})
	}
	return out, nil
}

func probeSize(ctx context.Context, hc *http.Client, u string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK && resp.ContentLength >= 0 {
		return resp.ContentLength, nil
	}
	head := resp.Status
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Range", "bytes=0-0")
	resp, err = hc.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
	resp.Body.Close()
	cr := resp.Header.Get("Content-Range")
	_, total, ok := strings.Cut(cr, "/")
	size, err := strconv.ParseInt(total, 10, 64)
	if resp.StatusCode != http.StatusPartialContent || !ok || err != nil {
		return 0, fmt.Errorf("HEAD answered %s without a size, and a one-byte range request answered %s with Content-Range %q", head, resp.Status, cr)
	}
	return size, nil
}

// newTransport is one client's connection: at most one, kept alive, never
// through a proxy from the environment (the benchmark is on loopback), and
// without asking for gzip, which would make the server do other work than
// sending file bytes.
func newTransport(onDial func()) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if onDial != nil {
				onDial()
			}
			return d.DialContext(ctx, network, addr)
		},
		MaxConnsPerHost:       1,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       time.Minute,
		DisableCompression:    true,
		ResponseHeaderTimeout: 30 * time.Second,
	}
}

// client is one simulated player. Only its own goroutine touches it until
// Run has waited for it.
type client struct {
	targets   []target
	rangeSize int64
	rng       *rand.Rand
	buf       []byte
	onDial    func()

	// The stdlib client: its transport and one reusable request per target.
	tr   *http.Transport
	reqs []*http.Request
	// The raw client: per-target request heads, the connection, and the
	// buffer requests are written from. raw is nil for the stdlib client.
	raw  []rawTarget
	conn *rawConn
	wbuf []byte

	hist     histogram
	requests int64
	bytes    int64
	errKinds map[string]int64
	firstErr error
}

func newClient(targets []target, raw []rawTarget, rangeSize int64, rng *rand.Rand, onDial func()) *client {
	c := &client{
		targets:   targets,
		rangeSize: rangeSize,
		rng:       rng,
		onDial:    onDial,
		raw:       raw,
		// Reading bodies in large slices keeps the client's syscall count,
		// and so its CPU, low: the client must not be what limits the server.
		buf:      make([]byte, 256<<10),
		errKinds: map[string]int64{},
	}
	if raw == nil {
		c.tr = newTransport(onDial)
	}
	return c
}

func (c *client) run(ctx context.Context) {
	if c.raw == nil {
		c.reqs = make([]*http.Request, len(c.targets))
		for i, t := range c.targets {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
			if err != nil {
				c.fail("request", err)
				return
			}
			c.reqs[i] = req
		}
	}
	for ctx.Err() == nil {
		i := c.rng.IntN(len(c.targets))
		t := c.targets[i]
		off, n := int64(0), t.size
		if slots := t.size / c.rangeSize; slots > 0 {
			off, n = c.rng.Int64N(slots)*c.rangeSize, c.rangeSize
		}
		start := time.Now()
		var kind string
		var err error
		if c.raw != nil {
			kind, err = c.getRaw(ctx, i, t, off, n)
		} else {
			kind, err = c.get(c.reqs[i], t, off, n)
		}
		if err != nil {
			if ctx.Err() != nil {
				return // cut off by the end of the run, not the server's fault
			}
			c.fail(kind, err)
			continue
		}
		c.hist.add(time.Since(start))
		c.requests++
		c.bytes += n
	}
}

func (c *client) fail(kind string, err error) {
	c.errKinds[kind]++
	if c.firstErr == nil {
		c.firstErr = err
	}
}

// get asks for bytes [off, off+n) of t and checks the answer is exactly
// that: 206, the right Content-Range and Content-Length, and n body bytes.
// It returns the kind of failure for the error counts.
func (c *client) get(req *http.Request, t target, off, n int64) (string, error) {
	last := off + n - 1
	req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(last, 10))
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		return "transport", fmt.Errorf("GET %s: %w", t.url, err)
	}
	// An unexpected answer is closed without draining: it may be the whole
	// file, and the connection is then simply replaced.
	defer resp.Body.Close()
	if kind, err := check(resp, t, off, n); err != nil {
		return kind, err
	}
	got, err := c.drain(resp.Body)
	if err != nil {
		return "body", fmt.Errorf("GET %s range %d-%d: read body after %d bytes: %w", t.url, off, last, got, err)
	}
	if got != n {
		return "body", fmt.Errorf("GET %s range %d-%d: body has %d bytes, want %d", t.url, off, last, got, n)
	}
	return "", nil
}

// drain reads r to its end into the client's own buffer. io.Copy to
// io.Discard would read in 8 KiB slices, costing the client a syscall per
// 8 KiB.
func (c *client) drain(r io.Reader) (int64, error) {
	var total int64
	for {
		n, err := r.Read(c.buf)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
