package linkemu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// safety bounds waits that only a bug could make long, so a broken proxy
// fails the test with a message instead of hanging until go test's own
// timeout. Nothing waits for it to pass.
const safety = 20 * time.Second

// checkGoroutines fails t if goroutines started during it outlive it. Call
// it first, so that its cleanup runs after the ones closing the proxy and
// the servers.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(safety)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines before the test, still %d after it:\n%s", before, n, buf)
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// testServer is a TCP server whose close waits for its handlers, so the
// goroutine check sees only what the proxy left behind.
type testServer struct {
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func startServer(t testing.TB, handle func(net.Conn)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				c.Close()
				return
			}
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Go(func() {
				defer func() {
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
					c.Close()
				}()
				handle(c)
			})
		}
	})
	t.Cleanup(s.close)
	return s
}

func (s *testServer) addr() string { return s.ln.Addr().String() }

func (s *testServer) close() {
	s.mu.Lock()
	s.closed = true
	open := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		open = append(open, c)
	}
	s.mu.Unlock()
	s.ln.Close()
	for _, c := range open {
		c.Close()
	}
	s.wg.Wait()
}

func startProxy(t testing.TB, cfg Config) *Proxy {
	t.Helper()
	p, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(safety)); err != nil {
		t.Fatal(err)
	}
	return c.(*net.TCPConn)
}

func randomBytes(n int, seed byte) []byte {
	var s [32]byte
	s[0] = seed
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b) // never fails
	return b
}

// echo sends back what it reads, then passes the half-close on.
func echo(c net.Conn) {
	if _, err := io.Copy(c, c); err == nil {
		_ = c.(*net.TCPConn).CloseWrite()
	}
}

// readRequest reads the 8-byte big-endian number every request of these
// tests starts with.
func readRequest(c net.Conn) (int64, error) {
	var req [8]byte
	if _, err := io.ReadFull(c, req[:]); err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(req[:])), nil
}

func request(n int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(n))
}

// exchange writes msg and expects it echoed.
func exchange(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

func TestForward(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"plain", Config{}},
		{"latency", Config{Latency: 2 * time.Millisecond}},
		{"rate", Config{RateBytesPerSec: 64 << 20}},
		{"latency and rate", Config{Latency: time.Millisecond, RateBytesPerSec: 64 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			srv := startServer(t, echo)
			cfg := tc.cfg
			cfg.Target = srv.addr()
			p := startProxy(t, cfg)

			payload := randomBytes(3<<20, 1)
			c := dial(t, p.Addr())
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(payload)
				if err == nil {
					err = c.CloseWrite()
				}
				werr <- err
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := <-werr; err != nil {
				t.Fatalf("write: %v", err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("got %d bytes back, not the %d sent", len(got), len(payload))
			}

			// Close waits for the proxy's writers, so the counters are final.
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			st := p.Stats()
			n := int64(len(payload))
			if st.BytesUp != n || st.BytesDown != n || st.Conns != 1 || st.Open != 0 || st.Cuts != 0 {
				t.Errorf("stats = %+v, want %d bytes each way over 1 connection, no cuts", st, n)
			}
		})
	}
}

// serveFrom answers a request for offset N with payload[N:], the simplest
// protocol a client can resume with.
func serveFrom(payload []byte) func(net.Conn) {
	return func(c net.Conn) {
		off, err := readRequest(c)
		if err != nil || off < 0 || off > int64(len(payload)) {
			return
		}
		_, _ = c.Write(payload[off:]) // fails when the link is cut
	}
}

// fetch downloads size bytes from a serveFrom server, reconnecting after
// each failure and asking for the rest. It returns what it received and
// how many bytes arrived on each connection.
func fetch(t *testing.T, addr string, size int) ([]byte, []int) {
	t.Helper()
	got := make([]byte, 0, size)
	var perConn []int
	buf := make([]byte, 32<<10)
	for len(got) < size {
		if len(perConn) == 10000 {
			t.Fatalf("still %d bytes short after %d connections", size-len(got), len(perConn))
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(safety))
		before := len(got)
		_, err = c.Write(request(int64(len(got))))
		for err == nil && len(got) < size {
			var n int
			n, err = c.Read(buf)
			got = append(got, buf[:n]...)
		}
		c.Close()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection %d hung", len(perConn)+1)
		}
		perConn = append(perConn, len(got)-before)
	}
	return got, perConn
}

func TestCutResume(t *testing.T) {
	const (
		size = 512 << 10
		mean = 8 << 10
	)
	payload := randomBytes(size, 2)

	run := func(t *testing.T, cfg Config) Stats {
		checkGoroutines(t)
		srv := startServer(t, serveFrom(payload))
		cfg.Target = srv.addr()
		cfg.CutMeanBytes = mean
		p := startProxy(t, cfg)

		got, perConn := fetch(t, p.Addr(), size)
		if !bytes.Equal(got, payload) {
			t.Fatalf("received %d bytes that differ from the %d-byte payload", len(got), size)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		st := p.Stats()
		if want := CutSchedule(cfg.Seed, mean, len(st.CutOffsets)); !slices.Equal(st.CutOffsets, want) {
			t.Fatalf("cut offsets %v, want the schedule %v", st.CutOffsets, want)
		}
		// Every connection but the last ended in a cut (the last one too if
		// a cut fell on the payload's final byte).
		if st.Cuts != len(st.CutOffsets) || st.Cuts < len(perConn)-1 || st.Cuts > len(perConn) || st.Conns != len(perConn) {
			t.Fatalf("%d cuts at %d offsets, %d proxied connections, for %d client connections",
				st.Cuts, len(st.CutOffsets), st.Conns, len(perConn))
		}
		// A connection carries the link from one cut offset to the next,
		// its 8-byte request included if that counts; nothing may cross the
		// link past the offset. Fewer bytes may arrive: the reset discards
		// what the kernel had not yet delivered.
		overhead := int64(8)
		if cfg.CutDownOnly {
			overhead = 0
		}
		var prev int64
		for i, off := range st.CutOffsets {
			if limit := off - prev - overhead; int64(perConn[i]) > limit {
				t.Errorf("connection %d received %d bytes, more than the %d between cuts", i+1, perConn[i], limit)
			}
			prev = off
		}
		return st
	}

	var first, again, other Stats
	t.Run("seed 7", func(t *testing.T) { first = run(t, Config{Seed: 7}) })
	t.Run("seed 7 again", func(t *testing.T) { again = run(t, Config{Seed: 7}) })
	t.Run("seed 8", func(t *testing.T) { other = run(t, Config{Seed: 8}) })
	t.Run("down only", func(t *testing.T) { run(t, Config{Seed: 7, CutDownOnly: true}) })
	t.Run("max cuts", func(t *testing.T) {
		if st := run(t, Config{Seed: 7, MaxCuts: 5}); st.Cuts != 5 {
			t.Errorf("%d cuts, want MaxCuts = 5", st.Cuts)
		}
	})
	if t.Failed() {
		return
	}

	const minCuts = 20
	if len(first.CutOffsets) < minCuts || len(again.CutOffsets) < minCuts || len(other.CutOffsets) < minCuts {
		t.Fatalf("runs cut %d, %d and %d times; want at least %d each",
			len(first.CutOffsets), len(again.CutOffsets), len(other.CutOffsets), minCuts)
	}
	// The runs may cut a different number of times (a reset can discard
	// bytes in flight, which are then fetched again), but where both cut,
	// the same seed cut at the same offsets.
	if !slices.Equal(first.CutOffsets[:minCuts], again.CutOffsets[:minCuts]) {
		t.Errorf("same seed, different cuts:\n%v\n%v", first.CutOffsets, again.CutOffsets)
	}
	if slices.Equal(first.CutOffsets[:minCuts], other.CutOffsets[:minCuts]) {
		t.Errorf("seeds 7 and 8 cut at the same offsets %v", first.CutOffsets[:minCuts])
	}
}

// sink reads a length and then that many bytes, and acknowledges with one.
func sink(c net.Conn) {
	n, err := readRequest(c)
	if err != nil {
		return
	}
	if _, err := io.CopyN(io.Discard, c, n); err == nil {
		_, _ = c.Write([]byte{1})
	}
}

// source reads a length and sends that many bytes.
func source(c net.Conn) {
	n, err := readRequest(c)
	if err != nil {
		return
	}
	_, _ = c.Write(make([]byte, n))
}

func download(c net.Conn, n int64) error {
	if _, err := c.Write(request(n)); err != nil {
		return err
	}
	_, err := io.CopyN(io.Discard, c, n)
	return err
}

func upload(c net.Conn, n int64) error {
	if _, err := c.Write(request(n)); err != nil {
		return err
	}
	if _, err := c.Write(make([]byte, n)); err != nil {
		return err
	}
	_, err := io.ReadFull(c, make([]byte, 1))
	return err
}

func TestRateLimit(t *testing.T) {
	const (
		rate = 1 << 20
		size = 256 << 10
	)
	// The link may run ahead of the rate by one burst, no more. The
	// millisecond covers float rounding in the bucket; only a lower bound
	// is checked, as a loaded machine can always be slower.
	minElapsed := time.Duration(float64(size-burstFor(rate))/rate*float64(time.Second)) - time.Millisecond

	for _, tc := range []struct {
		name    string
		handler func(net.Conn)
		conns   int
		xfer    func(net.Conn, int64) error
	}{
		{"down", source, 1, download},
		{"up", sink, 1, upload},
		// Two connections share the link's rate: each gets half of it.
		{"down shared", source, 2, download},
		{"up shared", sink, 2, upload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			srv := startServer(t, tc.handler)
			p := startProxy(t, Config{Target: srv.addr(), RateBytesPerSec: rate})

			start := time.Now()
			errs := make(chan error, tc.conns)
			for range tc.conns {
				c := dial(t, p.Addr())
				go func() { errs <- tc.xfer(c, size/int64(tc.conns)) }()
			}
			for range tc.conns {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			t.Logf("%d KiB over %d connections in %v at %d KiB/s", size>>10, tc.conns, elapsed, rate>>10)
			if elapsed < minElapsed {
				t.Errorf("%d KiB took %v, less than the %v the rate allows", size>>10, elapsed, minElapsed)
			}
		})
	}
}

func TestLatency(t *testing.T) {
	checkGoroutines(t)
	const latency = 50 * time.Millisecond
	srv := startServer(t, echo)
	p := startProxy(t, Config{Target: srv.addr(), Latency: latency})
	c := dial(t, p.Addr())

	for i := range 3 {
		start := time.Now()
		exchange(t, c, "x")
		if rtt := time.Since(start); rtt < 2*latency {
			t.Errorf("round trip %d took %v, less than twice the latency %v", i+1, rtt, latency)
		}
	}

	// The delay line must pipeline: bytes read while earlier ones wait out
	// their delay are queued behind them, instead of each chunk costing a
	// full latency. Held bytes beyond two reads show several in flight.
	payload := randomBytes(1<<20, 3)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		werr <- err
	}()
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("echo differs from what was sent")
	}
	if peak := p.Stats().PeakQueued; peak <= 2*readSize {
		t.Errorf("at most %d bytes were in flight; the delay line does not pipeline", peak)
	}
}

func TestCutAll(t *testing.T) {
	checkGoroutines(t)
	serverErrs := make(chan error, 8)
	srv := startServer(t, func(c net.Conn) {
		_, err := io.Copy(c, c)
		serverErrs <- err
	})
	p := startProxy(t, Config{Target: srv.addr()})

	var conns []*net.TCPConn
	for i := range 3 {
		c := dial(t, p.Addr())
		// The echo proves the proxy has dialled the server, so the cut
		// hits a complete connection.
		exchange(t, c, fmt.Sprint("hello ", i))
		conns = append(conns, c)
	}
	p.CutAll()
	for i, c := range conns {
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("client %d: read after the cut: %v, want a reset", i+1, err)
		}
	}
	for i := range conns {
		select {
		case err := <-serverErrs:
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("server connection %d: %v, want a reset", i+1, err)
			}
		case <-time.After(safety):
			t.Fatal("the server did not see the cut")
		}
	}

	// The link comes back for new connections.
	exchange(t, dial(t, p.Addr()), "after the cut")
	if st := p.Stats(); st.Cuts != 1 || len(st.CutOffsets) != 0 || st.Conns != 4 {
		t.Errorf("stats = %+v, want 1 cut, no scheduled ones, 4 connections", st)
	}
}

func TestSetTarget(t *testing.T) {
	checkGoroutines(t)
	named := func(name string) func(net.Conn) {
		return func(c net.Conn) {
			if _, err := c.Write([]byte(name)); err == nil {
				echo(c)
			}
		}
	}
	a := startServer(t, named("A"))
	b := startServer(t, named("B"))
	var mu sync.Mutex
	var logged []string
	p := startProxy(t, Config{Target: a.addr(), Logf: func(format string, args ...any) {
		mu.Lock()
		logged = append(logged, fmt.Sprintf(format, args...))
		mu.Unlock()
	}})

	greeting := func(c net.Conn) string {
		t.Helper()
		buf := make([]byte, 1)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		return string(buf)
	}
	c1 := dial(t, p.Addr())
	if g := greeting(c1); g != "A" {
		t.Fatalf("first connection reached %q, want A", g)
	}
	p.SetTarget(b.addr())
	c2 := dial(t, p.Addr())
	if g := greeting(c2); g != "B" {
		t.Fatalf("connection after SetTarget reached %q, want B", g)
	}
	exchange(t, c1, "still A") // open connections keep their target

	// A target that is down looks to the client like a refused connection.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	p.SetTarget(down)
	// The reset can arrive before the client's dial has returned.
	c3, err := net.Dial("tcp", p.Addr())
	if err == nil {
		_ = c3.SetDeadline(time.Now().Add(safety))
		_, err = c3.Read(make([]byte, 1))
		c3.Close()
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("connection to a down target: %v, want a reset", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Conns != 3 {
		t.Errorf("%d connections accepted, want 3", st.Conns)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.ContainsFunc(logged, func(s string) bool { return strings.Contains(s, "dial target") }) {
		t.Errorf("dial failure not logged; log: %q", logged)
	}
}

// waitFor polls cond until it holds or the safety bound passes; it is for
// states the proxy reaches on its own goroutines' schedule.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(safety)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCloseWithOpenConns(t *testing.T) {
	checkGoroutines(t)

	// Slow: each direction's reader waits on the rate limit while its
	// writer waits out an hour's latency.
	sinkSrv := startServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	slow := startProxy(t, Config{Target: sinkSrv.addr(), Latency: time.Hour, RateBytesPerSec: 1})
	// Flooded: the server sends into a client that never reads, so the
	// down writer blocks in Write and its reader on the full delay line.
	floodSrv := startServer(t, func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	flooded := startProxy(t, Config{Target: floodSrv.addr()})

	var clients []*net.TCPConn
	for range 2 {
		c := dial(t, slow.Addr())
		if _, err := c.Write(make([]byte, 4<<10)); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		clients = append(clients, dial(t, flooded.Addr()))
	}
	waitFor(t, "a chunk waits out the latency", func() bool { return slow.Stats().PeakQueued > 0 })
	waitFor(t, "the flooded delay line fills", func() bool { return flooded.Stats().PeakQueued > maxQueued-readSize })

	for _, p := range []*Proxy{slow, flooded} {
		closed := make(chan error, 1)
		go func() { closed <- p.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(safety):
			t.Fatal("Close did not return")
		}
		if st := p.Stats(); st.Open != 0 || st.Conns != 2 {
			t.Errorf("after Close: %d of %d connections open", st.Open, st.Conns)
		}
		if err := p.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
	for i, c := range clients {
		// The flooded clients have unread bytes queued before the reset.
		if _, err := io.Copy(io.Discard, c); err == nil {
			t.Errorf("client %d: connection ended in order after Close, want a reset", i+1)
		}
	}
	if _, err := net.Dial("tcp", slow.Addr()); err == nil {
		t.Error("the proxy still accepts after Close")
	}
}

func TestStartRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no target", Config{}},
		{"negative rate", Config{Target: "127.0.0.1:1", RateBytesPerSec: -1}},
		{"negative latency", Config{Target: "127.0.0.1:1", Latency: -time.Millisecond}},
		{"negative cut mean", Config{Target: "127.0.0.1:1", CutMeanBytes: -1}},
		{"huge cut mean", Config{Target: "127.0.0.1:1", CutMeanBytes: math.MaxInt64}},
		{"negative max cuts", Config{Target: "127.0.0.1:1", CutMeanBytes: 1, MaxCuts: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Start(tc.cfg)
			if err == nil {
				p.Close()
				t.Fatal("Start accepted the config")
			}
		})
	}
}

func TestCutSchedule(t *testing.T) {
	for _, tc := range []struct {
		name       string
		seed, mean int64
		n          int
		lo, hi     int64 // bounds of a gap; 0, 0 for no schedule
	}{
		{"no cuts", 1, 0, 10, 0, 0},
		{"negative mean", 1, -5, 10, 0, 0},
		{"none asked", 1, 100, 0, 0, 0},
		{"mean 1 cuts every byte", 1, 1, 100, 1, 1},
		{"mean 2", 1, 2, 1000, 1, 3},
		{"mean 3", 5, 3, 1000, 1, 4},
		{"odd mean", -3, 1001, 10000, 500, 1501},
		{"8 KiB", 42, 8 << 10, 10000, 4 << 10, 12 << 10},
		{"largest mean", 9, 1 << 60, 1000, 1 << 59, 1<<60 + 1<<59},
	} {
		t.Run(tc.name, func(t *testing.T) {
			offsets := CutSchedule(tc.seed, tc.mean, tc.n)
			if tc.lo == 0 {
				if offsets != nil {
					t.Fatalf("got %d offsets, want none", len(offsets))
				}
				return
			}
			if len(offsets) != tc.n {
				t.Fatalf("got %d offsets, want %d", len(offsets), tc.n)
			}
			if again := CutSchedule(tc.seed, tc.mean, tc.n); !slices.Equal(offsets, again) {
				t.Fatal("same seed, different schedule")
			}
			if prefix := CutSchedule(tc.seed, tc.mean, tc.n/2); !slices.Equal(prefix, offsets[:tc.n/2]) {
				t.Fatal("a shorter schedule is not a prefix of a longer one")
			}
			var prev int64
			lo, hi := int64(math.MaxInt64), int64(0)
			var sum float64
			for i, off := range offsets {
				gap := off - prev
				if gap < tc.lo || gap > tc.hi {
					t.Fatalf("gap %d (offset %d) is %d, outside [%d, %d]", i, off, gap, tc.lo, tc.hi)
				}
				lo, hi = min(lo, gap), max(hi, gap)
				sum += float64(gap)
				prev = off
			}
			if tc.n < 1000 || tc.lo == tc.hi {
				return
			}
			// Uniform: the gaps reach both ends of the range and average its
			// middle, to within six standard errors of the mean.
			width := float64(tc.hi - tc.lo)
			if float64(lo-tc.lo) > width/10 || float64(tc.hi-hi) > width/10 {
				t.Errorf("gaps span [%d, %d], not the whole [%d, %d]", lo, hi, tc.lo, tc.hi)
			}
			mean, want := sum/float64(tc.n), float64(tc.lo+tc.hi)/2
			if tol := 6 * (width + 1) / math.Sqrt(12*float64(tc.n)); math.Abs(mean-want) > tol {
				t.Errorf("mean gap %.1f, want %.1f ± %.1f", mean, want, tol)
			}
		})
	}
	if slices.Equal(CutSchedule(1, 8<<10, 20), CutSchedule(2, 8<<10, 20)) {
		t.Error("seeds 1 and 2 give the same schedule")
	}
}

func TestBucket(t *testing.T) {
	for _, tc := range []struct {
		rate  int64
		burst int
	}{
		{1, 1 << 10},
		{20 << 10, 1 << 10},
		{100_000, 5000},
		{1 << 20, maxBurst},
		{1 << 40, maxBurst},
	} {
		if got := burstFor(tc.rate); got != tc.burst {
			t.Errorf("burstFor(%d) = %d, want %d", tc.rate, got, tc.burst)
		}
	}
	if newBucket(0, time.Now()) != nil {
		t.Error("a zero rate made a bucket")
	}

	t0 := time.Now()
	b := newBucket(1000, t0) // burst 1024
	for i, step := range []struct {
		at   time.Duration
		n    int
		wait time.Duration
	}{
		{0, 1024, 0},                                             // the initial burst is free
		{0, 1000, time.Second},                                   // then bytes cost time
		{0, 500, 1500 * time.Millisecond},                        // queued behind the earlier debt
		{time.Second, 100, 600 * time.Millisecond},               // a second repaid a thousand bytes
		{-time.Second, 0, 600 * time.Millisecond},                // a clock going backwards repays nothing
		{10 * time.Second, 1024, 0},                              // idle time refills up to the burst
		{10 * time.Second, 1, time.Millisecond},                  // and no further
		{10*time.Second + time.Millisecond, 1, time.Millisecond}, // paid off, and the next byte costs the same
	} {
		if got := b.reserve(step.n, t0.Add(step.at)); got != step.wait {
			t.Errorf("step %d: reserve(%d) at %v waits %v, want %v", i, step.n, step.at, got, step.wait)
		}
	}
}

// BenchmarkForward measures what the proxy itself costs on loopback, so a
// sync benchmark can tell whether the link or the proxy limited it.
func BenchmarkForward(b *testing.B) {
	srv := startServer(b, echo)
	p := startProxy(b, Config{Target: srv.addr()})
	c := dial(b, p.Addr())
	_ = c.SetDeadline(time.Time{}) // a long benchmark is no hang
	payload := randomBytes(1<<20, 4)
	got := make([]byte, len(payload))
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		werr := make(chan error, 1)
		go func() {
			_, err := c.Write(payload)
			werr <- err
		}()
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
		if err := <-werr; err != nil {
			b.Fatal(err)
		}
	}
}
