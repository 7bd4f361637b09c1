package synctest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"outpost/sync/hub"
	"outpost/sync/wire"
)

// rawClient talks to a hub as any program could: with cert as its client
// certificate (nil: none), pinning the hub. Every request opens a new
// connection; from a new loopback source address when rotate is set
// (127.0.0.2 to 127.0.0.251), so a test can make many refused requests
// without one source reaching the hub's limit on failures, or from src.
func rawClient(t *testing.T, h *Hub, cert *tls.Certificate, src string, rotate bool) *http.Client {
	t.Helper()
	cfg := wire.AdminTLS(h.Node.Identity.DeviceID)
	if cert != nil {
		cfg = wire.ClientTLS(*cert, h.Node.Identity.DeviceID)
	}
	var n atomic.Int64
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		local := src
		if rotate {
			local = fmt.Sprintf("127.0.0.%d", 2+n.Add(1)%250)
		}
		d := net.Dialer{Timeout: 10 * time.Second}
		if local != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
		}
		return d.DialContext(ctx, network, addr)
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DialContext: dial, DisableKeepAlives: true, DisableCompression: true}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// call makes one request and returns the response with its body read.
func call(t *testing.T, c *http.Client, method, url string, body []byte, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, url, err)
	}
	return resp, b
}

// wireErr decodes a sync API error body.
func wireErr(t *testing.T, resp *http.Response, body []byte) *wire.Error {
	t.Helper()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var we *wire.Error
	err := wire.ReadError(resp)
	we, _ = err.(*wire.Error)
	return we
}

// TestUnauthenticatedRequestsCostLittle: a request that has not proved it
// comes from an enrolled box (no certificate, an unknown certificate, a
// made-up token) costs the hub about what the TLS handshake costs, is
// answered before its body is read, and ends its connection. The figure
// is bytes allocated per request by the whole process (client and hub)
// over many real HTTPS requests, minus the same for GET /healthz: before
// the codec pools every such answer built a zstd encoder, 1.8 MB.
func TestUnauthenticatedRequestsCostLittle(t *testing.T) {
	h := startHub(t)
	publish(t, h, "c", 1, Course(31, 0, 0, 1, 200<<10, 2), "science")
	stranger := freshIdentity(t, 0)
	anon := rawClient(t, h, nil, "", true)
	unknown := rawClient(t, h, &stranger.Cert, "", true)
	files := mustWire(t, &wire.FilesRequest{Files: []string{strings.Repeat("ab", 32)}})
	blocks := mustWire(t, &wire.BlocksRequest{Want: []wire.WantBlocks{{File: strings.Repeat("ab", 32), Indexes: []int{0}}}})
	secret, _ := wire.NewTokenSecret()
	enrol := mustWire(t, &wire.EnrolRequest{Token: secret, Hostname: "x"})
	cases := []struct {
		name   string
		c      *http.Client
		method string
		path   string
		body   []byte
		status int
		code   string
	}{
		{"changes, no certificate", anon, "GET", wire.PathChanges + "?since=0", nil, 401, wire.CodeUnauthorized},
		{"files, no certificate", anon, "POST", wire.PathFiles, files, 401, wire.CodeUnauthorized},
		{"blocks, no certificate", anon, "POST", wire.PathBlocks, blocks, 401, wire.CodeUnauthorized},
		{"patch, no certificate", anon, "GET", wire.PathPatch + "?from=a&to=b&seg=0", nil, 401, wire.CodeUnauthorized},
		{"enrol, no certificate", anon, "POST", wire.PathEnrol, enrol, 401, wire.CodeUnauthorized},
		{"changes, unknown device", unknown, "GET", wire.PathChanges + "?since=0", nil, 403, wire.CodeUnknownDevice},
		{"files, unknown device", unknown, "POST", wire.PathFiles, files, 403, wire.CodeUnknownDevice},
		{"enrol, made-up token", unknown, "POST", wire.PathEnrol, enrol, 403, wire.CodeTokenUnknown},
	}
	const n = 100
	perRequest := func(c *http.Client, method, path string, body []byte, check func(*http.Response, []byte)) uint64 {
		resp, b := call(t, c, method, h.URL()+path, body, nil)
		check(resp, b)
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		for range n {
			resp, b := call(t, c, method, h.URL()+path, body, nil)
			check(resp, b)
		}
		runtime.ReadMemStats(&m1)
		return (m1.TotalAlloc - m0.TotalAlloc) / n
	}
	// The baseline for each client: a client certificate makes the
	// handshake dearer on both sides.
	bases := map[*http.Client]uint64{}
	for _, c := range []*http.Client{anon, unknown} {
		bases[c] = perRequest(c, "GET", "/healthz", nil, func(resp *http.Response, _ []byte) {
			if resp.StatusCode != 200 {
				t.Fatalf("/healthz: %s", resp.Status)
			}
		})
	}
	t.Logf("GET /healthz, a new TLS connection each: %d bytes allocated per request (client and hub), %d with a client certificate", bases[anon], bases[unknown])
	for _, tc := range cases {
		base := bases[tc.c]
		per := perRequest(tc.c, tc.method, tc.path, tc.body, func(resp *http.Response, b []byte) {
			if resp.StatusCode != tc.status {
				t.Fatalf("%s: %s, want %d", tc.name, resp.Status, tc.status)
			}
			if we := wireErr(t, resp, b); we == nil || we.Code != tc.code {
				t.Fatalf("%s: %+v, want code %s", tc.name, we, tc.code)
			}
		})
		// A refused peer's connection ends with the answer, even when it
		// asks to keep it: each attempt pays for its own handshake.
		keep := rawClient(t, h, nil, "127.0.0.1", false)
		if tc.c == unknown {
			keep = rawClient(t, h, &stranger.Cert, "127.0.0.1", false)
		}
		keep.Transport.(*http.Transport).DisableKeepAlives = false
		if resp, _ := call(t, keep, tc.method, h.URL()+tc.path, tc.body, nil); !resp.Close {
			t.Errorf("%s: the hub keeps a refused peer's connection open", tc.name)
		}
		extra := int64(per) - int64(base)
		t.Logf("%s: %d bytes per request, %+d over /healthz", tc.name, per, extra)
		// 32 KiB: room for the refusal's own few allocations and the
		// TLS record, far below one zstd encoder (1.8 MB).
		if extra > 32<<10 {
			t.Errorf("%s: %d bytes per request over /healthz's %d", tc.name, extra, base)
		}
	}
}

func mustWire(t *testing.T, v any) []byte {
	t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// syncLog is a slog handler's output that tests can read while the hub
// writes it.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// refusals are the "request refused" lines logged so far.
func (l *syncLog) refusals(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.buf.String(), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "request refused" {
			out = append(out, m)
		}
	}
	return out
}

// TestFailedAttemptsAreThrottledAndLogged: each source gets a burst of
// failed enrolments or admin tokens, then 429 with Retry-After, before its
// request is looked at, while other sources are served; every failure is
// logged, but a flood of them is not.
func TestFailedAttemptsAreThrottledAndLogged(t *testing.T) {
	// The hub's clock stands still unless the test moves it, so what the
	// limiters allow does not depend on how fast this machine is.
	var clock atomic.Int64
	base := time.Now()
	logs := &syncLog{}
	h, err := StartHubWith(testCtx(t), t.TempDir(), "127.0.0.1:0", slog.New(slog.NewJSONHandler(logs, nil)), func(o *hub.Options) {
		o.Now = func() time.Time { return base.Add(time.Duration(clock.Load()) * time.Second) }
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Stop() })
	stranger := freshIdentity(t, 0)
	secret, _ := wire.NewTokenSecret()
	bad := mustWire(t, &wire.EnrolRequest{Token: secret, Hostname: "x"})
	good := mustWire(t, &wire.EnrolRequest{Token: mustToken(t, h), Hostname: "x"})

	// Enrolment: ten made-up tokens are heard, the eleventh is not, and
	// neither is a good token from the same address: the refusal comes
	// before the token is read.
	from2 := rawClient(t, h, &stranger.Cert, "127.0.0.2", false)
	for i := range 10 {
		resp, b := call(t, from2, "POST", h.URL()+wire.PathEnrol, bad, nil)
		if we := wireErr(t, resp, b); resp.StatusCode != 403 || we == nil || we.Code != wire.CodeTokenUnknown {
			t.Fatalf("made-up token %d: %s %+v", i+1, resp.Status, we)
		}
	}
	for _, body := range [][]byte{bad, good} {
		resp, b := call(t, from2, "POST", h.URL()+wire.PathEnrol, body, nil)
		we := wireErr(t, resp, b)
		if resp.StatusCode != http.StatusTooManyRequests || we == nil || we.Code != wire.CodeRateLimited {
			t.Fatalf("11th attempt: %s %+v, want 429 %s", resp.Status, we, wire.CodeRateLimited)
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 6 {
			t.Fatalf("Retry-After %q, want 1 to 6 s (one attempt every 6 s)", resp.Header.Get("Retry-After"))
		}
	}
	// Another address is not affected.
	if resp, b := call(t, rawClient(t, h, &stranger.Cert, "127.0.0.3", false), "POST", h.URL()+wire.PathEnrol, good, nil); resp.StatusCode != 200 {
		t.Fatalf("enrolment from another address: %s %+v", resp.Status, wireErr(t, resp, b))
	}
	// Time heals: after 6 s one more attempt is heard.
	clock.Add(6)
	if resp, _ := call(t, from2, "POST", h.URL()+wire.PathEnrol, bad, nil); resp.StatusCode != 403 {
		t.Fatalf("after 6 s: %s, want the token refused again (403)", resp.Status)
	}
	// The address is over its limit again, yet a box enrolled (from the
	// other address) syncs from it: a school's NAT may hide a stranger and
	// a box at once. A request without a certificate from it is not heard.
	if resp, b := call(t, from2, "GET", h.URL()+wire.PathChanges+"?since=0", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("an enrolled box from a throttled address: %s %+v", resp.Status, wireErr(t, resp, b))
	}
	if resp, _ := call(t, rawClient(t, h, nil, "127.0.0.2", false), "GET", h.URL()+wire.PathChanges+"?since=0", nil, nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("no certificate from a throttled address: %s, want 429", resp.Status)
	}

	// Admin API: the same for wrong tokens, with the same answer to the
	// right one once the address is over its limit.
	tokB, err := os.ReadFile(filepath.Join(h.Node.Config.DataDir, "hub", "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	adminTok := strings.TrimSpace(string(tokB))
	from4 := rawClient(t, h, nil, "127.0.0.4", false)
	admin := func(c *http.Client, tok string) *http.Response {
		resp, _ := call(t, c, "GET", h.URL()+"/admin/v1/boxes", nil, http.Header{"Authorization": {"Bearer " + tok}})
		return resp
	}
	for i := range 10 {
		if resp := admin(from4, "wrong"); resp.StatusCode != 401 {
			t.Fatalf("wrong admin token %d: %s", i+1, resp.Status)
		}
	}
	if resp := admin(from4, adminTok); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("admin after 10 wrong tokens: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	if resp := admin(rawClient(t, h, nil, "127.0.0.5", false), adminTok); resp.StatusCode != 200 {
		t.Fatalf("admin from another address: %s", resp.Status)
	}

	// 21 failures so far (11 enrolments, 10 admin tokens; a 429 is not a
	// failure), each logged with its source and reason: the log limiter
	// allows 20 at once and one more a second.
	lines := logs.refusals(t)
	if len(lines) != 21 {
		t.Fatalf("%d refusals logged, want 21", len(lines))
	}
	if l := lines[0]; l["source"] != "127.0.0.2/32" || l["reason"] != wire.CodeTokenUnknown || l["device"] != stranger.DeviceID.String() || l["path"] != wire.PathEnrol {
		t.Fatalf("first refusal logged as %v", l)
	}
	if l := lines[20]; l["source"] != "127.0.0.4/32" || l["reason"] != "admin_token" {
		t.Fatalf("a wrong admin token logged as %v", l)
	}

	// A flood of failures from many addresses (no certificate) is
	// answered in full but logged 20 lines at most at once; the next line,
	// a second later, says how many were not logged.
	clock.Add(60)
	anon := rawClient(t, h, nil, "", true)
	for range 200 {
		if resp, _ := call(t, anon, "GET", h.URL()+wire.PathChanges+"?since=0", nil, nil); resp.StatusCode != 401 {
			t.Fatalf("flood: %s", resp.Status)
		}
	}
	if got := len(logs.refusals(t)) - 21; got != 20 {
		t.Fatalf("a flood of 200 refusals logged %d lines, want 20", got)
	}
	clock.Add(1)
	call(t, anon, "GET", h.URL()+wire.PathChanges+"?since=0", nil, nil)
	lines = logs.refusals(t)
	if last := lines[len(lines)-1]; last["not_logged_before"] != float64(180) {
		t.Fatalf("the line after the flood: %v, want not_logged_before 180", last)
	}
}
