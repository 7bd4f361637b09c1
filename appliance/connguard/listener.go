package connguard

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Refusal reasons, as counted in outpost_conn_rejected_total.
const (
	reasonClientCap = "client_cap"
	reasonTotalCap  = "total_cap"
)

// caps counts open connections per client and in total. One mutex is
// enough: it is taken twice per connection (accept and close), never per
// request.
type caps struct {
	perClient   int
	total       int
	capLoopback bool

	mu     sync.Mutex
	open   int
	client map[netip.Addr]int
}

func newCaps(l Limits) *caps {
	return &caps{perClient: l.PerClient, total: l.Total, capLoopback: l.CapLoopback, client: map[netip.Addr]int{}}
}

// clientOf names the client behind a remote address: the IPv4 address, or
// the IPv6 /64 (SLAAC and privacy addresses let one device use any
// address in its /64). ok is false for a loopback client that is not
// capped, and for an address that is not IP.
func (c *caps) clientOf(a net.Addr) (netip.Addr, bool) {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip := tcp.AddrPort().Addr().Unmap()
	if ip.IsLoopback() && !c.capLoopback {
		return netip.Addr{}, false
	}
	if ip.Is6() {
		p, err := ip.Prefix(64)
		if err != nil {
			return netip.Addr{}, false
		}
		ip = p.Addr()
	}
	return ip, true
}

// admit takes a slot for a new connection from key (zero: no per-client
// cap), or says why not.
func (c *caps) admit(key netip.Addr, perClient bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open >= c.total {
		return reasonTotalCap
	}
	if perClient {
		if c.client[key] >= c.perClient {
			return reasonClientCap
		}
		c.client[key]++
	}
	c.open++
	return ""
}

func (c *caps) release(key netip.Addr, perClient bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open--
	if perClient {
		if n := c.client[key] - 1; n > 0 {
			c.client[key] = n
		} else {
			delete(c.client, key)
		}
	}
}

func (c *caps) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

// listener admits connections within the caps and wraps each in a conn
// that enforces the write window. A refused connection is answered (on
// plain HTTP) and closed in Accept itself, so it never reaches net/http:
// it costs an accept, one small write into an empty socket buffer and a
// close, whatever the client does next.
type listener struct {
	net.Listener
	g *Guard
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, perClient := l.g.caps.clientOf(nc.RemoteAddr())
		if reason := l.g.caps.admit(key, perClient); reason != "" {
			l.g.refuse(nc, reason)
			continue
		}
		return l.g.newConn(nc, key, perClient), nil
	}
}

// refuse answers a connection over the caps. On plain HTTP it gets a 503
// that says what to do, written without waiting: a fresh socket's send
// buffer always has room for it, and the deadline makes sure.
func (g *Guard) refuse(nc net.Conn, reason string) {
	g.metrics.rejected.WithLabelValues(reason).Inc()
	if g.refusal != nil {
		nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		nc.Write(g.refusal[reason])
	}
	nc.Close()
}

// refusals are the 503 answers for plain HTTP, one per reason.
func refusals() map[string][]byte {
	msg := map[string]string{
		reasonClientCap: "Too many connections from your device. Close some tabs or apps using this box and try again.\n",
		reasonTotalCap:  "The box is serving as many connections as it can. Try again in a minute.\n",
	}
	out := map[string][]byte{}
	for reason, m := range msg {
		out[reason] = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 10\r\nConnection: close\r\nContent-Length: " +
			strconv.Itoa(len(m)) + "\r\n\r\n" + m)
	}
	return out
}
