//go:build linux

package connguard

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
}

// get sends one request on c and returns the status and body.
func get(t *testing.T, c net.Conn, br *bufio.Reader) (int, string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: box\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET from %s: %v", c.LocalAddr(), err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET from %s: %v", c.LocalAddr(), err)
	}
	return resp.StatusCode, string(b)
}

// One client holds at most PerClient connections; the next is answered
// 503 with what to do, and another client is still served. Closing one
// frees its slot.
func TestPerClientCap(t *testing.T) {
	s := serve(t, okHandler(), Limits{PerClient: 3, CapLoopback: true})
	var held []net.Conn
	for i := range 3 {
		c := dial(t, s.addr, "127.0.0.2", 0)
		if code, _ := get(t, c, bufio.NewReader(c)); code != 200 {
			t.Fatalf("connection %d: status %d, want 200", i+1, code)
		}
		held = append(held, c)
	}
	extra := dial(t, s.addr, "127.0.0.2", 0)
	code, body := get(t, extra, bufio.NewReader(extra))
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "Too many connections from your device") {
		t.Errorf("fourth connection from one client: %d %q, want 503 naming the cause", code, body)
	}
	other := dial(t, s.addr, "127.0.0.3", 0)
	if code, _ := get(t, other, bufio.NewReader(other)); code != 200 {
		t.Errorf("another client: status %d, want 200", code)
	}
	if got := s.rejected(reasonClientCap); got != 1 {
		t.Errorf("client_cap refusals counted: %v, want 1", got)
	}

	// A connection the server has closed has given its slot back: the
	// client sees the end only after that.
	held[0].SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(held[0], "GET / HTTP/1.1\r\nHost: box\r\nConnection: close\r\n\r\n")
	if _, err := io.Copy(io.Discard, held[0]); err != nil {
		t.Fatal(err)
	}
	again := dial(t, s.addr, "127.0.0.2", 0)
	if code, _ := get(t, again, bufio.NewReader(again)); code != 200 {
		t.Errorf("after one connection ended: status %d, want 200", code)
	}
}

// Loopback clients are the box itself (its CLI, a reverse proxy): not
// capped per client unless asked, only by the total.
func TestLoopbackIsNotCappedPerClient(t *testing.T) {
	s := serve(t, okHandler(), Limits{PerClient: 2, Total: 4})
	for i := range 4 {
		c := dial(t, s.addr, "127.0.0.1", 0)
		if code, _ := get(t, c, bufio.NewReader(c)); code != 200 {
			t.Fatalf("loopback connection %d: status %d, want 200", i+1, code)
		}
	}
	c := dial(t, s.addr, "127.0.0.1", 0)
	code, body := get(t, c, bufio.NewReader(c))
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "as many connections as it can") {
		t.Errorf("connection over the total: %d %q, want 503", code, body)
	}
	if got := s.rejected(reasonTotalCap); got != 1 {
		t.Errorf("total_cap refusals counted: %v, want 1", got)
	}
}

// IPv6 clients are counted by /64.
func TestClientOfIPv6UsesThe64(t *testing.T) {
	c := newCaps(Portal())
	a, _ := c.clientOf(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1")})
	b, _ := c.clientOf(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:bbbb::9")})
	d, _ := c.clientOf(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:3::1")})
	if a != b || a == d {
		t.Errorf("clients %v %v %v: want the first two equal (one /64), the third apart", a, b, d)
	}
	v4, _ := c.clientOf(&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7")})
	if v4.String() != "192.0.2.7" {
		t.Errorf("IPv4-mapped client %v, want 192.0.2.7", v4)
	}
	if _, capped := c.clientOf(&net.TCPAddr{IP: net.ParseIP("::1")}); capped {
		t.Error("::1 is capped per client by default")
	}
}

// The total is lowered to what the descriptor limit allows.
func TestTotalFollowsTheDescriptorLimit(t *testing.T) {
	budget := descriptorBudget()
	if budget <= 0 {
		t.Skip("no descriptor limit here")
	}
	s := New("t", okHandler(), Limits{Total: budget + 1000}.WithDefaults(Portal()), nil, nil)
	if got := s.Limits().Total; got != budget {
		t.Errorf("total %d with a descriptor budget of %d", got, budget)
	}
}
