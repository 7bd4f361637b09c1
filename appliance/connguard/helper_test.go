//go:build linux

package connguard

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// testServer is a guarded server on 127.0.0.1, stopped with the test.
type testServer struct {
	*Server
	addr string
	port int
}

// serve starts h behind a guard with l over the portal's defaults.
func serve(t *testing.T, h http.Handler, l Limits) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.ShutdownGrace = time.Second
	s := New("test", h, l.WithDefaults(Portal()), nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &testServer{Server: s, addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port}
}

func (s *testServer) dropped(reason string) float64 {
	return counter(s.g.metrics.dropped.WithLabelValues(reason))
}

func (s *testServer) rejected(reason string) float64 {
	return counter(s.g.metrics.rejected.WithLabelValues(reason))
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// dial connects from the loopback address from (127.0.0.2, …: each is a
// different client to the caps) with the given receive buffer (0: the
// kernel's default). A small buffer makes the client's reading pace, not
// the kernel's buffering, what the server sees.
func dial(t *testing.T, addr, from string, rcvbuf int) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// randomFile writes size random bytes (what video looks like to a server)
// and returns its path.
func randomFile(t *testing.T, size int) string {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	p := filepath.Join(t.TempDir(), "media.bin")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fileHandler serves path with http.ServeContent on an *os.File, as the
// portal's media route does, and reports each request's end on done.
func fileHandler(path string, done chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if done != nil {
				done <- struct{}{}
			}
		}()
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "video/webm")
		http.ServeContent(w, r, "", time.Time{}, f)
	})
}

// wait receives from c, failing the test after a generous bound: every
// wait here is for something the guard does within a window of a second
// or two.
func wait[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// serverSockets lists the TCP sockets on the server's port other than the
// listener, with their state and send-queue bytes, from /proc/net/tcp: what
// the kernel still holds for the server's side of its connections.
func serverSockets(t *testing.T, port int) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		_, lport, _ := strings.Cut(f[1], ":")
		p, _ := strconv.ParseInt(lport, 16, 32)
		if int(p) != port || f[3] == "0A" { // 0A: LISTEN
			continue
		}
		tx, _, _ := strings.Cut(f[4], ":")
		q, _ := strconv.ParseInt(tx, 16, 64)
		out = append(out, fmt.Sprintf("%s state=%s txq=%d", f[2], f[3], q))
	}
	return out
}
