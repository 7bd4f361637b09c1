package appliance_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outpost/appliance"
	"outpost/appliance/connguard"
	"outpost/sync/hub"
	"outpost/sync/wire"
)

// testHub is a hub served by Node.ServeHub on 127.0.0.1.
type testHub struct {
	addr  string
	token string
	tls   *tls.Config
}

func startHub(t *testing.T, l connguard.Limits) *testHub {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	node, err := appliance.Open(ctx, appliance.DefaultConfig(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := node.HubOptions()
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(o)
	if err != nil {
		t.Fatal(err)
	}
	node.HubLimits = l
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- node.ServeHub(sctx, h, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve hub: %v", err)
		}
		node.Close()
	})
	tok, err := os.ReadFile(filepath.Join(dir, "hub", "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	return &testHub{addr: ln.Addr().String(), token: strings.TrimSpace(string(tok)), tls: wire.AdminTLS(node.Identity.DeviceID)}
}

// metric is one of the hub's connection counters, from its /metrics.
func (h *testHub) metric(t *testing.T, name string) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: h.tls}, Timeout: 10 * time.Second}
	req, _ := http.NewRequest("GET", "https://"+h.addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	return "(none)"
}

const uploadID = "0000000000000000000000000000000000000000000000000000000000000000"

// trickledUpload starts an upload part over TLS and sends one byte every
// 50 ms until stop: a publisher's link that has all but died, or someone
// holding the hub's connections.
func (h *testHub) trickledUpload(t *testing.T, token string, size int, stop <-chan struct{}) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	c, err := tls.Dial("tcp", h.addr, h.tls)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "PUT /admin/v1/uploads/%s HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer %s\r\nUpload-Offset: 0\r\nContent-Length: %d\r\n\r\n", uploadID, token, size)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	return c, bufio.NewReader(c)
}

// A trickled upload part, authenticated or not, does not hold the hub's
// connection: within one body window the hub answers and the connection
// ends, and the stall is counted.
func TestHubDropsTrickledUploads(t *testing.T) {
	h := startHub(t, connguard.Limits{BodyWindow: time.Second})
	for _, tc := range []struct {
		name, token string
		size        int
		status      int
	}{
		{"admin", "", 8 << 20, http.StatusBadRequest},
		// Small enough (under 256 KiB) that net/http reads what the
		// handler left, to keep the connection: that read is windowed too.
		{"stranger", "not-the-token", 60000, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := tc.token
			if token == "" {
				token = h.token
			}
			stop := make(chan struct{})
			defer close(stop)
			c, br := h.trickledUpload(t, token, tc.size, stop)
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer to a trickled upload: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("answer %d %s, want %d", resp.StatusCode, body, tc.status)
			}
			if _, err := br.ReadByte(); err == nil || isTimeout(err) {
				t.Errorf("after the answer: %v; want the connection closed", err)
			}
		})
	}
	if got := h.metric(t, `outpost_conn_dropped_total{reason="body_stall",server="hub"}`); got != "2" {
		t.Errorf("body stalls counted on the hub: %s, want 2", got)
	}
}

// An upload over a thin link that keeps moving is taken whole, however
// many body windows it spans: 16 KiB every 100 ms (160 KiB/s, ten times
// the minimum of 32 KiB per 2 s) for 512 KiB.
func TestHubTakesASlowUpload(t *testing.T) {
	h := startHub(t, connguard.Limits{BodyWindow: 2 * time.Second})
	const size = 512 << 10
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: h.tls}}
	req, _ := http.NewRequest(http.MethodPut, "https://"+h.addr+"/admin/v1/uploads/"+uploadID, &pacedReader{left: size, every: 100 * time.Millisecond, chunk: 16 << 10})
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Upload-Offset", "0")
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("%d KiB in %v: %d %s", size>>10, time.Since(start).Round(time.Millisecond), resp.StatusCode, body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), fmt.Sprintf(`"offset":%d`, size)) {
		t.Errorf("slow upload: %d %s, want 200 with offset %d", resp.StatusCode, body, size)
	}
}

// pacedReader yields chunk bytes per tick: a slow link's pace.
type pacedReader struct {
	left, chunk int
	every       time.Duration
	tick        *time.Ticker
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		if p.tick != nil {
			p.tick.Stop()
		}
		return 0, io.EOF
	}
	if p.tick == nil {
		p.tick = time.NewTicker(p.every)
	}
	<-p.tick.C
	n := min(len(b), p.chunk, p.left)
	for i := range n {
		b[i] = 'p'
	}
	p.left -= n
	return n, nil
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
