package appliance

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConnsPerClientFromConfig: a box whose devices reach it through one
// NAT router raises the portal's per-client cap in outpost.json, and the
// portal it serves admits that many connections from one address, and no
// more.
func TestConnsPerClientFromConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ConfigName), []byte(`{"conns_per_client": 3}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.PortalLimits.CapLoopback = true // the test's clients are on loopback
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	done := make(chan error, 1)
	sctx, stop := context.WithCancel(ctx)
	go func() { done <- n.Serve(sctx, ln, func() { close(ready) }) }()
	defer func() { stop(); <-done }()
	<-ready

	// Each connection asks for /healthz and keeps the connection open.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	status := func() string {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: box\r\n\r\n")); err != nil {
			return err.Error()
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		return resp.Status
	}
	for i := range 3 {
		if s := status(); !strings.HasPrefix(s, "200") {
			t.Fatalf("connection %d of 3: %s", i+1, s)
		}
	}
	if s := status(); !strings.HasPrefix(s, "503") {
		t.Fatalf("connection 4 from the same address: %s, want 503", s)
	}
}
