package loadgen

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"outpost/content/pack"
)

// fileServer serves named in-memory files with http.ServeContent, the way
// the portal serves media, and counts the requests it answered.
type fileServer struct {
	files  map[string][]byte
	served atomic.Int64
	mu     sync.Mutex
	ranges map[string]int // Range headers seen, to check offsets are aligned
	// stopAt, when set, is called with the count of each GET served, so a
	// test can end its run after a given amount of work rather than after a
	// wall-clock guess.
	stopAt func(n int64)
}

func (s *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, ok := s.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodGet {
		n := s.served.Add(1)
		s.mu.Lock()
		s.ranges[r.Header.Get("Range")]++
		s.mu.Unlock()
		if s.stopAt != nil {
			s.stopAt(n)
		}
	}
	w.Header().Set("Content-Type", "video/webm")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

func randomFile(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func newFileServer(t *testing.T) (*fileServer, *httptest.Server) {
	t.Helper()
	fs := &fileServer{
		files: map[string][]byte{
			"/a.webm": randomFile(1, 10*4096+123), // a partial last slot, never asked for
			"/b.webm": randomFile(2, 3*4096),
			"/tiny":   randomFile(3, 100), // shorter than a range: asked for whole
		},
		ranges: map[string]int{},
	}
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	return fs, srv
}

// clientKinds runs a test once with each client.
func clientKinds(t *testing.T, f func(t *testing.T, stdlib bool)) {
	t.Run("raw", func(t *testing.T) { f(t, false) })
	t.Run("stdlib", func(t *testing.T) { f(t, true) })
}

func TestRunCountsVerifiedRanges(t *testing.T) {
	clientKinds(t, func(t *testing.T, stdlib bool) {
		fs, srv := newFileServer(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Cancelled before the 300th answer is written, so that request, and
		// any others in flight, are abandoned rather than counted.
		fs.stopAt = func(n int64) {
			if n >= 300 {
				cancel()
			}
		}
		res, err := Run(ctx, Config{
			URLs:      []string{srv.URL + "/a.webm", srv.URL + "/b.webm", srv.URL + "/tiny"},
			Clients:   4,
			Duration:  time.Minute, // the served-count cancel ends the run long before
			RangeSize: 4096,
			Seed:      1,
			Stdlib:    stdlib,
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run after cancel: err = %v, want context.Canceled", err)
		}
		if res.Errors != 0 {
			t.Fatalf("%d errors against a correct server: %v (first: %s)", res.Errors, res.ErrorKinds, res.FirstError)
		}
		if res.Requests < 300-int64(res.Clients) || res.Requests > fs.served.Load() {
			t.Errorf("counted %d requests; the server answered %d GETs", res.Requests, fs.served.Load())
		}
		if res.Connections != 4 {
			t.Errorf("opened %d connections for 4 keep-alive clients", res.Connections)
		}
		if res.Bytes <= 0 || res.Bytes > res.Requests*4096 {
			t.Errorf("counted %d bytes for %d requests of at most 4096", res.Bytes, res.Requests)
		}
		if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 {
			t.Errorf("latencies p50 %v p99 %v max %v are not ordered", res.P50, res.P99, res.Max)
		}
		fs.mu.Lock()
		defer fs.mu.Unlock()
		for rg := range fs.ranges {
			var a, b int64
			if _, err := fmt.Sscanf(rg, "bytes=%d-%d", &a, &b); err != nil {
				t.Fatalf("odd Range header %q", rg)
			}
			if !(a == 0 && b == 99) && (a%4096 != 0 || b-a+1 != 4096 || b >= 10*4096) {
				t.Errorf("Range %q is not an aligned 4096-byte slot inside a file", rg)
			}
		}
	})
}

func TestRunRedialsWhenTheServerClosesConnections(t *testing.T) {
	clientKinds(t, func(t *testing.T, stdlib bool) {
		fs, _ := newFileServer(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		fs.stopAt = func(n int64) {
			if n >= 50 {
				cancel()
			}
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			fs.ServeHTTP(w, r)
		}))
		defer srv.Close()
		res, _ := Run(ctx, Config{URLs: []string{srv.URL + "/b.webm"}, Clients: 2, Duration: time.Minute, RangeSize: 4096, Seed: 3, Stdlib: stdlib})
		if res == nil || res.Errors != 0 || res.Requests < 40 {
			t.Fatalf("against a server closing every connection: %+v", res)
		}
		if res.Connections < res.Requests {
			t.Errorf("%d connections for %d requests on close-after-each-response connections", res.Connections, res.Requests)
		}
	})
}

func TestRunReportsServersThatGetRangesWrong(t *testing.T) {
	body := randomFile(9, 64<<10)
	cases := map[string]struct {
		handler http.HandlerFunc
		kind    string
	}{
		"ignores Range": {func(w http.ResponseWriter, r *http.Request) {
			w.Write(body) // 200 with the whole file
		}, "status 200"},
		"wrong length": {func(w http.ResponseWriter, r *http.Request) {
			// Claims a range but sends one byte short.
			h := w.Header()
			h.Set("Content-Range", fmt.Sprintf("bytes 0-4095/%d", len(body)))
			h.Set("Content-Length", "4095")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(body[:4095])
		}, "content-length"},
		"wrong offset": {func(w http.ResponseWriter, r *http.Request) {
			// Always answers the first range, whatever was asked.
			r.Header.Set("Range", "bytes=0-4095")
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
		}, "content-range"},
		"short body": {func(w http.ResponseWriter, r *http.Request) {
			// The right head, then half the body and a closed connection.
			var a, b int
			fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &a, &b)
			h := w.Header()
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, len(body)))
			h.Set("Content-Length", fmt.Sprint(b-a+1))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(body[a : a+(b-a+1)/2])
		}, "body"},
	}
	for name, tc := range cases {
		clientKinds(t, func(t *testing.T, stdlib bool) {
			t.Run(name, func(t *testing.T) {
				var n atomic.Int64
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodHead {
						w.Header().Set("Content-Length", fmt.Sprint(len(body)))
						return
					}
					if n.Add(1) >= 50 {
						cancel()
					}
					tc.handler(w, r)
				}))
				defer srv.Close()
				res, _ := Run(ctx, Config{URLs: []string{srv.URL + "/f"}, Clients: 2, Duration: time.Minute, RangeSize: 4096, Seed: 7, Stdlib: stdlib})
				if res == nil {
					t.Fatal("no result")
				}
				// Offset 0 is a correct answer for the wrong-offset server, so
				// some requests may pass there; none may for the others.
				if name != "wrong offset" && res.Requests != 0 {
					t.Errorf("counted %d wrong answers as throughput", res.Requests)
				}
				if res.Errors == 0 || res.ErrorKinds[tc.kind] != res.Errors {
					t.Errorf("errors %d by kind %v, want all of kind %q", res.Errors, res.ErrorKinds, tc.kind)
				}
				if res.FirstError == "" {
					t.Error("no error description")
				}
				if res.Bytes != res.Requests*4096 {
					t.Errorf("bytes %d do not match %d verified requests", res.Bytes, res.Requests)
				}
			})
		})
	}
}

func TestRunStopsAtItsDuration(t *testing.T) {
	_, srv := newFileServer(t)
	// The test's own deadline, not the duration, decides failure, so a slow
	// machine cannot make it flaky: a Run that ignored Duration would run
	// into it and return its error. Only lower bounds are checked against
	// the clock, which no slowness can break.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const d = 300 * time.Millisecond
	start := time.Now()
	res, err := Run(ctx, Config{URLs: []string{srv.URL + "/b.webm"}, Clients: 3, Duration: d, RangeSize: 4096, Seed: 2})
	wall := time.Since(start)
	if err != nil {
		t.Fatalf("Run ended by its context, not its duration: %v", err)
	}
	if res.Elapsed < d {
		t.Errorf("the run lasted %v, shorter than its duration %v", res.Elapsed, d)
	}
	if res.Elapsed > wall {
		t.Errorf("the run reports %v elapsed, more than the %v Run took", res.Elapsed, wall)
	}
	if res.Requests == 0 {
		t.Error("the run made no request in its duration")
	}
	if want := float64(res.Requests) / res.Elapsed.Seconds(); math.Abs(res.RequestsPerSecond-want) > want*1e-9 {
		t.Errorf("requests/s %v is not requests over the run's elapsed time (%v)", res.RequestsPerSecond, want)
	}
	if res.Errors != 0 {
		t.Errorf("the end of the run was counted as %d errors: %v", res.Errors, res.ErrorKinds)
	}
}

func TestRunRefusesBadSetups(t *testing.T) {
	_, srv := newFileServer(t)
	ctx := context.Background()
	for name, cfg := range map[string]Config{
		"no urls":    {Clients: 1, Duration: time.Second, RangeSize: 1},
		"no clients": {URLs: []string{srv.URL + "/b.webm"}, Duration: time.Second, RangeSize: 1},
		"missing":    {URLs: []string{srv.URL + "/nope"}, Clients: 1, Duration: time.Second, RangeSize: 1},
	} {
		if _, err := Run(ctx, cfg); err == nil {
			t.Errorf("%s: Run succeeded", name)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.quantile(c.q)
		if got < c.want || float64(got) > float64(c.want)*(1+1.0/64) {
			t.Errorf("quantile(%v) = %v, want %v within 1/64 above", c.q, got, c.want)
		}
	}
	for _, d := range []time.Duration{0, 1, 63, 64, 65, 127, 128, 1e3, 1e9, 1<<63 - 1} {
		i := bucketOf(d)
		if bucketMax(i) < d || (i > 0 && bucketMax(i-1) >= d) {
			t.Errorf("%v falls in bucket %d, which ends at %v (the previous at %v)", d, i, bucketMax(i), bucketMax(i-1))
		}
	}
}

func TestVisitAndWaitOK(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 3 && r.URL.Path == "/" {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "page %s", r.URL.Path)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := WaitOK(ctx, srv.URL+"/", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 4 {
		t.Errorf("WaitOK made %d requests, want 3 refused and 1 OK", hits.Load())
	}
	urls := []string{srv.URL + "/missing"}
	for i := range 20 {
		urls = append(urls, fmt.Sprintf("%s/p%d", srv.URL, i))
	}
	res, err := Visit(ctx, urls, 3)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 20 || res.Errors != 1 || !strings.Contains(res.FirstErr, "404") {
		t.Errorf("Visit: %d pages, %d errors (%s); want 20 and 1 (404)", res.Pages, res.Errors, res.FirstErr)
	}
}

func TestWriteMediaPackIsAValidPack(t *testing.T) {
	dir := t.TempDir()
	files, err := WriteMediaPack(dir, "bench-media", 3, 5000, 1)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, pack.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	m, err := pack.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 || len(m.Files) != 3 || len(m.Items()) != 3 {
		t.Fatalf("%d files, manifest lists %d files and %d items; want 3", len(files), len(m.Files), len(m.Items()))
	}
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if want := m.Files[f.Path]; want.SHA256 != pack.HashBytes(sum[:]) || want.Size != int64(len(b)) {
			t.Errorf("%s: manifest says %+v, file has %d bytes hashing to %x", f.Path, want, len(b), sum)
		}
		if seen[string(sum[:])] {
			t.Errorf("%s repeats another file's bytes", f.Path)
		}
		seen[string(sum[:])] = true
	}
	again := t.TempDir()
	if _, err := WriteMediaPack(again, "bench-media", 3, 5000, 1); err != nil {
		t.Fatal(err)
	}
	raw2, _ := os.ReadFile(filepath.Join(again, pack.ManifestName))
	if !bytes.Equal(raw, raw2) {
		t.Error("the same seed wrote different packs")
	}
}

func TestRunLearnsSizesFromARangeWhenHEADFails(t *testing.T) {
	fs, _ := newFileServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fs.stopAt = func(n int64) {
		if n >= 20 {
			cancel()
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			http.Error(w, "no HEAD here", http.StatusMethodNotAllowed)
			return
		}
		fs.ServeHTTP(w, r)
	}))
	defer srv.Close()
	res, _ := Run(ctx, Config{URLs: []string{srv.URL + "/a.webm"}, Clients: 1, Duration: time.Minute, RangeSize: 4096, Seed: 4})
	if res == nil || res.Errors != 0 || res.Requests < 10 {
		t.Fatalf("against a server without HEAD: %+v", res)
	}
}
