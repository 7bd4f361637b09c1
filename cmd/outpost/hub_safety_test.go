package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"outpost/appliance/identity"
	"outpost/sync/hub"
	"outpost/sync/synctest"
	"outpost/sync/wire"
)

// assertTerminalSafe fails if out holds anything a terminal would obey
// rather than show: control characters other than the line ends the CLI
// writes itself, bidi and other format characters, invalid UTF-8.
func assertTerminalSafe(t *testing.T, out string) {
	t.Helper()
	for i, r := range out {
		if r == '\n' {
			continue
		}
		if r == unicode.ReplacementChar || !unicode.IsGraphic(r) {
			t.Fatalf("output holds %U at byte %d:\n%q", r, i, out)
		}
	}
}

// TestHubVerbsPrintRemoteStringsSafely: what others chose (a site name
// typed into another operator's tool, a box's host name, a course title)
// reaches `outpost hub boxes` and `content publish` escaped, one row per
// box; --json stays the exact strings.
func TestHubVerbsPrintRemoteStringsSafely(t *testing.T) {
	h, hubDir := startCLIHub(t)
	hubArgs := []string{"--data", hubDir, "--hub", h.URL()}
	evil := "Evil\x1b[2J\x1b]2;owned\x07\nFAKE ROW\u202eexe"
	out := hubRun(t, append([]string{"hub", "token", "create", "--site", evil, "--channels", "science", "--json"}, hubArgs...)...)
	var tok hubTokenOutput
	if err := json.Unmarshal([]byte(out), &tok); err != nil {
		t.Fatal(err)
	}
	box, err := synctest.StartBox(context.Background(), t.TempDir(), h.URL(), tok.Token, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()

	out = hubRun(t, append([]string{"hub", "boxes"}, hubArgs...)...)
	assertTerminalSafe(t, out)
	if lines := strings.Split(strings.TrimRight(out, "\n"), "\n"); len(lines) != 2 {
		t.Fatalf("%d lines for one box:\n%s", len(lines), out)
	}
	if !strings.Contains(out, `Evil\x1b[2J\x1b]2;owned\a\nFAKE ROW\u202eexe`) {
		t.Fatalf("the site is not shown escaped:\n%s", out)
	}
	out = hubRun(t, append([]string{"hub", "boxes", "--json"}, hubArgs...)...)
	var boxes []hub.Box
	if err := json.Unmarshal([]byte(out), &boxes); err != nil || len(boxes) != 1 || boxes[0].Site != evil {
		t.Fatalf("--json: %v, %+v", err, boxes)
	}

	// Token create echoes what it was given, escaped too.
	out = hubRun(t, append([]string{"hub", "token", "create", "--site", evil, "--channels", "science,\x1b[31mred"}, hubArgs...)...)
	assertTerminalSafe(t, out)
}

// TestHubMetricsNeedTheAdminToken: on the hub's internet address
// /metrics answers only with the admin token (/healthz stays open); with
// --metrics-listen they are also served, without a token, on an address
// of the operator's choosing.
func TestHubMetricsNeedTheAdminToken(t *testing.T) {
	t.Setenv(adminTokenEnv, "")
	data := t.TempDir()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := newRootCmd(io.Discard, pw)
	cmd.SetArgs([]string{"hub", "--data", data, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--patch-cache", "100MiB", "--patch-builds", "1"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx); pw.Close() }()
	var hubAt, metricsAt string
	sc := bufio.NewScanner(pr)
	for (hubAt == "" || metricsAt == "") && sc.Scan() {
		line := sc.Text()
		if _, u, ok := strings.Cut(line, "url="); ok {
			if strings.Contains(line, "metrics serving") {
				metricsAt = strings.Fields(u)[0]
			} else if strings.Contains(line, "hub serving") {
				hubAt = strings.Fields(u)[0]
			}
		}
	}
	go io.Copy(io.Discard, pr)
	if hubAt == "" || metricsAt == "" {
		t.Fatalf("the hub did not report its addresses: %v", <-done)
	}
	id, err := identity.Load(filepath.Join(data, "identity"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(data, "hub", "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: wire.AdminTLS(id.DeviceID)}}
	defer hc.CloseIdleConnections()
	get := func(c *http.Client, url, token string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(hc, hubAt+"/metrics", ""); code != http.StatusUnauthorized || strings.Contains(body, "outpost_hub") {
		t.Fatalf("/metrics without a token: %d\n%.300s", code, body)
	}
	if code, body := get(hc, hubAt+"/metrics", strings.TrimSpace(string(tok))); code != 200 || !strings.Contains(body, "outpost_hub_patches_served_total") {
		t.Fatalf("/metrics with the admin token: %d\n%.300s", code, body)
	}
	if code, _ := get(hc, hubAt+"/healthz", ""); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	if code, body := get(http.DefaultClient, metricsAt, ""); code != 200 || !strings.Contains(body, "outpost_hub_refused_total{reason=\"admin_token\"} 1") {
		t.Fatalf("--metrics-listen: %d\n%.2000s", code, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("hub returned %v on shutdown", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the hub did not stop within 30 s")
	}
}
