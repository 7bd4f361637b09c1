package synctest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"outpost/content/samplecourse"
	"outpost/sync/hub"
	"outpost/sync/patch"
	"outpost/sync/wire"
)

// boxClient is a raw client with an enrolled box's certificate.
func boxClient(t *testing.T, h *Hub, b *Box) *http.Client {
	t.Helper()
	return rawClient(t, h, &b.Node.Identity.Cert, "", false)
}

// TestFilesRequestIsDeduplicated: a box asking for one file's block list
// 4,096 times gets one entry, and the hub's answer costs about one entry
// (before, 4,096 copies took a hub from 38 to 349 MB). The bound is on
// bytes allocated by the whole process (client and hub) during the
// request: 8 MiB is room for the request itself (4,096 hashes), one
// 160-block list and the codecs, against ~200 MB for the copies.
func TestFilesRequestIsDeduplicated(t *testing.T) {
	h := startHub(t)
	files := Course(41, 1, 20<<20, 1, 300<<10, 1)
	publish(t, h, "big", 1, files, "science")
	b := enrolBox(t, h.URL(), h, "science")
	c := boxClient(t, h, b)
	video, pdf := sha256hex(files[0].Data), sha256hex(files[1].Data)

	released := false
	ask := func(shas ...string) (*wire.FilesResponse, uint64) {
		body := mustWire(t, &wire.FilesRequest{Files: shas})
		if released {
			body = releasedWire(t, &wire.FilesRequest{Files: shas})
		}
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		resp, raw := call(t, c, "POST", h.URL()+wire.PathFiles, body, nil)
		var fr wire.FilesResponse
		if resp.StatusCode != 200 {
			t.Fatalf("files: %s %+v", resp.Status, wireErr(t, resp, raw))
		}
		if err := wire.Decode(bytes.NewReader(raw), &fr); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&m1)
		return &fr, m1.TotalAlloc - m0.TotalAlloc
	}
	many := make([]string, wire.MaxFilesPerQuery)
	for i := range many {
		many[i] = video
	}
	fr, alloc := ask(many...)
	t.Logf("4,096 copies of one file: %d entries, %.1f MiB allocated", len(fr.Files), float64(alloc)/(1<<20))
	if len(fr.Files) != 1 || fr.Files[0].SHA256 != video || fr.Files[0].Validate() != nil || len(fr.Files[0].Hashes) != 32*160 {
		t.Fatalf("answer to 4,096 copies: %d entries", len(fr.Files))
	}
	if alloc > 8<<20 {
		t.Fatalf("answering 4,096 copies of one file allocated %d MiB", alloc>>20)
	}
	// The same request as a box of the previous release encodes it: its
	// encoder declares an 8 MiB window, which the hub refused before.
	released = true
	if fr, _ = ask(many...); len(fr.Files) != 1 {
		t.Fatalf("released encoder: %d entries", len(fr.Files))
	}
	released = false
	// Distinct files keep the order they were first asked in.
	fr, _ = ask(pdf, video, pdf, video)
	if len(fr.Files) != 2 || fr.Files[0].SHA256 != pdf || fr.Files[1].SHA256 != video {
		t.Fatalf("answer to pdf, video, pdf, video: %+v", fr.Files)
	}
	// And a box syncs as before.
	if err := b.Client.Pass(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	assertHolds(t, b, "big", 1, files)
}

// releasedWire encodes a message as boxes of the release before pooled
// codecs did: one streaming zstd encoder, which declares its 8 MiB window
// once the message passes 128 KiB.
func releasedWire(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// edited is files with n random runs of 2 KiB overwritten in each, the
// same paths: a new version the hub offers patches for.
func edited(files []samplecourse.File, seed uint64, n int) []samplecourse.File {
	rng := rand.New(rand.NewPCG(seed, 2))
	out := Clone(files)
	for i := range out {
		for range n {
			if len(out[i].Data) > 4096 {
				off := rng.IntN(len(out[i].Data) - 2048)
				copy(out[i].Data[off:], Random(rng, 2048))
			}
		}
	}
	return out
}

// patchURL asks for segment seg of the patch from one file to another.
func patchURL(h *Hub, from, to string, seg int) string {
	return h.URL() + wire.PathPatch + "?" + url.Values{"from": {from}, "to": {to}, "seg": {strconv.Itoa(seg)}}.Encode()
}

// checkPatch decodes a patch answer against the old file and compares it
// with the new file's segment.
func checkPatch(t *testing.T, resp *http.Response, body, old, new []byte, seg int) {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Fatalf("patch segment %d: %s %+v", seg, resp.Status, wireErr(t, resp, body))
	}
	var off, ln int64
	if _, err := fmt.Sscanf(resp.Header.Get(wire.HeaderPatchWindow), "%d,%d", &off, &ln); err != nil {
		t.Fatal(err)
	}
	start, end := patch.SegmentRange(int64(len(new)), seg)
	out, err := patch.Decode(bytes.NewReader(body), old[off:off+ln], end-start)
	if err != nil || !bytes.Equal(out, new[start:end]) {
		t.Fatalf("patch segment %d does not rebuild the new file: %v", seg, err)
	}
}

// TestPatchBuildsAreLimited: however many patches boxes ask for at once,
// at most PatchBuilds are built at a time (each takes ~113 MB; five at
// once took a hub to 629 MB); the others wait for a builder, and every
// request is answered once they are free.
func TestPatchBuildsAreLimited(t *testing.T) {
	const builders, asks = 1, 4
	events := make(chan string, 2*asks)
	release := make(chan struct{})
	h, err := StartHubWith(testCtx(t), t.TempDir(), "127.0.0.1:0", nil, func(o *hub.Options) {
		o.PatchBuilds, o.PatchWait = builders, 2*time.Minute
		o.Hooks = &hub.Hooks{
			PatchBuild: func(from, to string, seg int) { events <- "build"; <-release },
			PatchWait:  func(from, to string, seg int) { events <- "wait" },
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Stop() })
	v1 := Course(42, 1, asks*patch.SegmentSize, 0, 0, 0)
	v2 := edited(v1, 1, 8)
	publish(t, h, "video", 1, v1, "science")
	b := enrolBox(t, h.URL(), h, "science")
	publish(t, h, "video", 2, v2, "science")
	c := boxClient(t, h, b)
	from, to := sha256hex(v1[0].Data), sha256hex(v2[0].Data)

	type answer struct {
		seg  int
		resp *http.Response
		body []byte
	}
	answers := make(chan answer, asks)
	for seg := range asks {
		go func() {
			resp, body := call(t, c, "GET", patchURL(h, from, to, seg), nil, nil)
			answers <- answer{seg, resp, body}
		}()
	}
	builds, waits := 0, 0
	timeout := time.After(60 * time.Second)
	for builds+waits < asks {
		select {
		case e := <-events:
			if e == "build" {
				builds++
			} else {
				waits++
			}
		case <-timeout:
			t.Fatalf("after 60 s: %d builds running, %d requests waiting, of %d", builds, waits, asks)
		}
	}
	if builds != builders {
		t.Fatalf("%d patch builds at once for %d requests, want at most %d", builds, asks, builders)
	}
	t.Logf("%d requests: %d building, %d waiting for a builder", asks, builds, waits)
	close(release)
	for range asks {
		a := <-answers
		checkPatch(t, a.resp, a.body, v1[0].Data, v2[0].Data, a.seg)
	}
}

// TestBoxSyncsWhilePatchBuildersAreBusy: when every builder is taken and
// the hub does not wait, a box gets "busy" for its patches, fetches the
// blocks instead and holds the new version at the end of the pass. A box
// of the release before "busy" existed (no Outpost-Features) is told
// not_found, on which it fetches the blocks too.
func TestBoxSyncsWhilePatchBuildersAreBusy(t *testing.T) {
	var hogTo string
	var mu sync.Mutex
	hogging := make(chan struct{})
	release := make(chan struct{})
	h, err := StartHubWith(testCtx(t), t.TempDir(), "127.0.0.1:0", nil, func(o *hub.Options) {
		o.PatchBuilds, o.PatchWait = 1, -1
		o.Hooks = &hub.Hooks{PatchBuild: func(from, to string, seg int) {
			mu.Lock()
			hog := to == hogTo
			mu.Unlock()
			if hog {
				close(hogging)
				<-release
			}
		}}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Stop() })
	water1 := Course(43, 1, 3<<20, 1, 1<<20, 5)
	other1 := Course(44, 1, 1<<20, 0, 0, 0)
	publish(t, h, "water", 1, water1, "science")
	publish(t, h, "other", 1, other1, "staff")
	b := enrolBox(t, h.URL(), h, "science")
	if err := b.Client.Pass(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	water2, other2 := edited(water1, 3, 6), edited(other1, 4, 2)
	publish(t, h, "water", 2, water2, "science")
	publish(t, h, "other", 2, other2, "staff")

	// A box of another channel holds the only builder.
	mu.Lock()
	hogTo = sha256hex(other2[0].Data)
	mu.Unlock()
	hogClient := boxClient(t, h, enrolBox(t, h.URL(), h, "staff"))
	hogDone := make(chan error, 1)
	go func() {
		resp, err := hogClient.Get(patchURL(h, sha256hex(other1[0].Data), hogTo, 0))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("%s", resp.Status)
			}
		}
		hogDone <- err
	}()
	<-hogging
	c := boxClient(t, h, b)

	video1, video2 := sha256hex(water1[0].Data), sha256hex(water2[0].Data)
	resp, body := call(t, c, "GET", patchURL(h, video1, video2, 0), nil, http.Header{wire.HeaderFeatures: {wire.FeatureBusy}})
	if we := wireErr(t, resp, body); resp.StatusCode != http.StatusServiceUnavailable || we == nil || we.Code != wire.CodeBusy || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("patch while busy, from a box that knows busy: %s %+v", resp.Status, we)
	}
	resp, body = call(t, c, "GET", patchURL(h, video1, video2, 0), nil, nil)
	if we := wireErr(t, resp, body); resp.StatusCode != http.StatusNotFound || we == nil || we.Code != wire.CodeNotFound {
		t.Fatalf("patch while busy, from an older box: %s %+v", resp.Status, we)
	}

	fetched := b.Client.Status().Totals.BlocksFetched
	if err := b.Client.Pass(testCtx(t)); err != nil {
		t.Fatalf("pass while the builders are busy: %v", err)
	}
	assertHolds(t, b, "water", 2, water2)
	if st := b.Client.Status(); st.Totals.BlocksPatched != 0 || st.Totals.BlocksFetched == fetched {
		t.Fatalf("%d blocks patched, %d fetched while no builder was free", st.Totals.BlocksPatched, st.Totals.BlocksFetched-fetched)
	}
	close(release)
	if err := <-hogDone; err != nil {
		t.Fatalf("the request holding the builder: %v", err)
	}
}

// patchCacheBytes is what the hub's patch cache holds on disk.
func patchCacheBytes(t *testing.T, h *Hub) (total int64, files int) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(h.Node.Config.DataDir, "hub", "patches"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			total += info.Size()
			files++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return total, files
}

// TestPatchCacheStaysWithinItsBound: after many patches the cache on disk
// stays under its bound, keeping the most recently served.
func TestPatchCacheStaysWithinItsBound(t *testing.T) {
	const bound = 64 << 10
	h, err := StartHubWith(testCtx(t), t.TempDir(), "127.0.0.1:0", nil, func(o *hub.Options) { o.PatchCacheBytes = bound })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Stop() })
	rng := rand.New(rand.NewPCG(45, 1))
	var v1 []samplecourse.File
	for i := range 12 {
		v1 = append(v1, samplecourse.File{Path: fmt.Sprintf("pdf/f%02d.pdf", i), Data: Random(rng, 300<<10)})
	}
	v2 := Clone(v1)
	for i := range v2 { // ~20 KB of new bytes each: patches of ~20 KB
		copy(v2[i].Data[100<<10:], Random(rng, 20<<10))
	}
	publish(t, h, "docs", 1, v1, "science")
	b := enrolBox(t, h.URL(), h, "science")
	publish(t, h, "docs", 2, v2, "science")
	c := boxClient(t, h, b)
	for round := range 2 {
		for i := range v1 {
			resp, body := call(t, c, "GET", patchURL(h, sha256hex(v1[i].Data), sha256hex(v2[i].Data), 0), nil, nil)
			checkPatch(t, resp, body, v1[i].Data, v2[i].Data, 0)
			total, n := patchCacheBytes(t, h)
			if total > bound {
				t.Fatalf("round %d, patch %d: the cache holds %d bytes in %d patches, bound %d", round, i, total, n, bound)
			}
			if n == 0 {
				t.Fatalf("round %d, patch %d: the patch just served was not kept", round, i)
			}
		}
	}
	total, n := patchCacheBytes(t, h)
	t.Logf("after 24 patches of ~20 KB: %d patches, %d bytes kept (bound %d)", n, total, bound)
}

// TestPatchesStayInTheBoxsChannels: a patch reveals its old file's size
// and what it shares with the new one, so both ends must be files of
// courses in the box's channels, even when the new file is also in one of
// its own courses.
func TestPatchesStayInTheBoxsChannels(t *testing.T) {
	h := startHub(t)
	rng := rand.New(rand.NewPCG(46, 1))
	secretOld := Random(rng, 300<<10)
	shared := bytes.Clone(secretOld)
	copy(shared[1000:], Random(rng, 4096))
	publish(t, h, "staff", 1, []samplecourse.File{{Path: "pdf/a.pdf", Data: secretOld}}, "staff")
	publish(t, h, "staff", 2, []samplecourse.File{{Path: "pdf/a.pdf", Data: shared}}, "staff")
	publish(t, h, "open", 1, []samplecourse.File{{Path: "pdf/b.pdf", Data: shared}}, "science")
	outsider := enrolBox(t, h.URL(), h, "science")
	insider := enrolBox(t, h.URL(), h, "staff")
	u := patchURL(h, sha256hex(secretOld), sha256hex(shared), 0)

	resp, body := call(t, boxClient(t, h, outsider), "GET", u, nil, nil)
	if we := wireErr(t, resp, body); resp.StatusCode != http.StatusNotFound || we == nil || we.Code != wire.CodeNotFound || resp.Header.Get(wire.HeaderPatchWindow) != "" {
		t.Fatalf("a patch from another channel's file: %s, window %q", resp.Status, resp.Header.Get(wire.HeaderPatchWindow))
	}
	// The changes the outsider gets offer no such patch.
	resp, body = call(t, boxClient(t, h, outsider), "GET", h.URL()+wire.PathChanges+"?since=0", nil, nil)
	var ch wire.Changes
	if err := wire.Decode(bytes.NewReader(body), &ch); err != nil || resp.StatusCode != 200 {
		t.Fatalf("changes: %s %v", resp.Status, err)
	}
	for _, cc := range ch.Courses {
		if cc.ID != "open" || len(cc.Patches) != 0 {
			t.Fatalf("the outsider is offered %s with patches %v", cc.ID, cc.Patches)
		}
	}
	// The same request from a box of the staff channel is served.
	resp, body = call(t, boxClient(t, h, insider), "GET", u, nil, nil)
	checkPatch(t, resp, body, secretOld, shared, 0)
}

// TestEnrolmentCleansHostAndSoftware: what a box says about itself is
// shown to operators, so the hub keeps only the characters a host name
// or a version may hold: no terminal escapes, newlines or bidi controls.
func TestEnrolmentCleansHostAndSoftware(t *testing.T) {
	h := startHub(t)
	id := freshIdentity(t, 0)
	c := rawClient(t, h, &id.Cert, "", false)
	evilHost := "evil\x1b]2;owned\x07\nline2\u202eexe." + strings.Repeat("x", 100)
	body := mustWire(t, &wire.EnrolRequest{Token: mustToken(t, h), Hostname: evilHost})
	// Go's HTTP server refuses control characters in headers; anything
	// else not in a version is replaced.
	resp, raw := call(t, c, "POST", h.URL()+wire.PathEnrol, body, http.Header{wire.HeaderSoftware: {"1.0\u202egnp\tx"}})
	if resp.StatusCode != 200 {
		t.Fatalf("enrol: %s %+v", resp.Status, wireErr(t, resp, raw))
	}
	boxes, err := h.Hub.Boxes(httptest.NewRequestWithContext(context.Background(), "GET", "/", nil))
	if err != nil || len(boxes) != 1 {
		t.Fatalf("boxes: %v %v", boxes, err)
	}
	wantHost := ("evil--2-owned--line2-exe." + strings.Repeat("x", 100))[:64]
	if boxes[0].Hostname != wantHost || boxes[0].Software != "1.0-gnp-x" {
		t.Fatalf("stored host %q, software %q; want %q, %q", boxes[0].Hostname, boxes[0].Software, wantHost, "1.0-gnp-x")
	}
	// A later visit's software header is cleaned the same way.
	resp, _ = call(t, c, "GET", h.URL()+wire.PathChanges+"?since=0", nil, http.Header{wire.HeaderSoftware: {"2.0\u202e\u00e9"}})
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	boxes, _ = h.Hub.Boxes(httptest.NewRequestWithContext(context.Background(), "GET", "/", nil))
	if boxes[0].Software != "2.0--" {
		t.Fatalf("software after a visit: %q", boxes[0].Software)
	}
}
