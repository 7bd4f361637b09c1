package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLoadtestAgainstServeContent(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}))
	defer srv.Close()
	out, err := run(t, "loadtest", "--clients", "3", "--duration", "200ms", "--range", "4096", "--json", srv.URL+"/a", srv.URL+"/b")
	if err != nil {
		t.Fatalf("loadtest: %v\n%s", err, out)
	}
	var rep loadtestReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if rep.Requests < 1 || rep.Errors != 0 || rep.Bytes != rep.Requests*4096 || rep.Clients != 3 || rep.URLs != 2 {
		t.Errorf("unexpected report: %+v", rep)
	}

	out, err = run(t, "loadtest", "--clients", "2", "--duration", "300ms", "--range", "4096", srv.URL+"/a")
	if err != nil || !strings.Contains(out, "throughput") || !strings.Contains(out, "errors      0") {
		t.Errorf("text report: %v\n%s", err, out)
	}
}

func TestLoadtestFailsWhenTheServerIgnoresRange(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A plain file server without Range support: 200 and the whole file.
		w.Header().Set("Content-Length", "16384")
		w.Write(bytes.Repeat([]byte{'x'}, 16<<10))
	}))
	defer srv.Close()
	out, err := run(t, "loadtest", "--clients", "2", "--duration", "200ms", "--range", "4096", srv.URL+"/a")
	if err == nil || !strings.Contains(err.Error(), "requests failed") {
		t.Fatalf("loadtest against a server that ignores Range: err %v\n%s", err, out)
	}
	if !strings.Contains(out, "status 200") || !strings.Contains(out, "requests    0 ") {
		t.Errorf("the report does not show the failures:\n%s", out)
	}
}
