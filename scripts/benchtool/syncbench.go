package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"outpost/appliance/identity"
	"outpost/content/samplecourse"
	"outpost/sync/hub"
	"outpost/sync/linkemu"
	"outpost/sync/synctest"
	"outpost/sync/wire"
)

// syncbench measures bytes on the wire for course updates, Outpost's sync
// against `rsync -az` from an rsync daemon, both through the same counting
// proxy, and the hub's CPU per GB served. The hub and the rsync daemon run
// as their own processes so their CPU time is theirs alone.
func syncbench(args []string) error {
	fs := flag.NewFlagSet("syncbench", flag.ContinueOnError)
	outpost := fs.String("outpost", "bin/outpost", "the outpost binary (runs the hub)")
	work := fs.String("work", "", "scratch directory (required)")
	scale := fs.Float64("scale", 1, "course size factor: 1 is the ~100 MB course of the issue")
	shaped := fs.Bool("shaped", false, "also time a new box's initial sync of the latest version through a 1 Mb/s, 300 ms RTT link (~17 min at scale 1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *work == "" {
		return errors.New("syncbench: -work DIR is required")
	}
	ctx := context.Background()
	sz := func(n int) int { return int(float64(n) * *scale) }

	// The course: 3 videos, 10 PDFs, 200 HTML pages (~100 MB at scale 1).
	v := synctest.Course(2026, 3, sz(25<<20), 10, sz(2<<20), 200)
	total := 0
	for _, f := range v {
		total += len(f.Data)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	type update struct {
		name, what string
		apply      func([]samplecourse.File) []samplecourse.File
		newBytes   int
	}
	updates := []*update{
		{name: "a", what: "1% of bytes overwritten in 50 scattered runs", apply: func(fs []samplecourse.File) []samplecourse.File {
			run := total / 100 / 50
			for range 50 {
				// Pick a file weighted by size, then a place in it.
				at := rng.IntN(total)
				for i := range fs {
					if at < len(fs[i].Data) {
						off := min(at, len(fs[i].Data)-run)
						copy(fs[i].Data[max(off, 0):], synctest.Random(rng, min(run, len(fs[i].Data))))
						break
					}
					at -= len(fs[i].Data)
				}
			}
			return fs
		}, newBytes: total / 100},
		{name: "b", what: "1 MB inserted in the middle of a video", apply: func(fs []samplecourse.File) []samplecourse.File {
			d := fs[0].Data
			mid := len(d) / 2
			fs[0].Data = append(append(append([]byte{}, d[:mid]...), synctest.Random(rng, 1_000_000)...), d[mid:]...)
			return fs
		}, newBytes: 1_000_000},
		{name: "c", what: "5 MB appended to a video", apply: func(fs []samplecourse.File) []samplecourse.File {
			fs[1].Data = append(fs[1].Data, synctest.Random(rng, 5_000_000)...)
			return fs
		}, newBytes: 5_000_000},
		{name: "d", what: "one new 20 MB video", apply: func(fs []samplecourse.File) []samplecourse.File {
			return append(fs, samplecourse.File{Path: "video/new-lesson.webm", Data: synctest.Random(rng, 20_000_000)})
		}, newBytes: 20_000_000},
	}

	// Hub, as a process.
	hubDir := filepath.Join(*work, "hub")
	hubAddr, err := freeAddr()
	if err != nil {
		return err
	}
	hubCmd := exec.Command(*outpost, "hub", "--data", hubDir, "--listen", hubAddr)
	hubLog, _ := os.Create(filepath.Join(*work, "hub.log"))
	hubCmd.Stdout, hubCmd.Stderr = hubLog, hubLog
	if err := hubCmd.Start(); err != nil {
		return fmt.Errorf("start hub: %w", err)
	}
	defer func() { hubCmd.Process.Kill(); hubCmd.Wait() }()
	admin, err := newAdmin(hubDir, "https://"+hubAddr)
	if err != nil {
		return err
	}

	// rsync daemon, as a process, serving the same tree.
	src := filepath.Join(*work, "rsync-src")
	rsyncAddr, err := freeAddr()
	if err != nil {
		return err
	}
	_, rsyncPort, _ := net.SplitHostPort(rsyncAddr)
	conf := filepath.Join(*work, "rsyncd.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("use chroot = no\npid file = %s/rsyncd.pid\n[course]\npath = %s\nread only = yes\n", *work, src)), 0o644)
	os.MkdirAll(src, 0o755)
	rsyncd := exec.Command("rsync", "--daemon", "--no-detach", "--address=127.0.0.1", "--port="+rsyncPort, "--config="+conf)
	rsyncd.Stdout, rsyncd.Stderr = hubLog, hubLog
	if err := rsyncd.Start(); err != nil {
		return fmt.Errorf("start rsync daemon (install Debian's rsync): %w", err)
	}
	defer func() { rsyncd.Process.Kill(); rsyncd.Wait() }()
	if err := waitTCP(rsyncAddr); err != nil {
		return err
	}

	hubProxy, err := linkemu.Start(linkemu.Config{Target: hubAddr})
	if err != nil {
		return err
	}
	defer hubProxy.Close()
	rsyncProxy, err := linkemu.Start(linkemu.Config{Target: rsyncAddr})
	if err != nil {
		return err
	}
	defer rsyncProxy.Close()

	publish := func(version int64, files []samplecourse.File) error {
		dir := filepath.Join(*work, fmt.Sprintf("pack-v%d", version))
		if _, err := samplecourse.WriteFiles(dir, "bench-course", version, files); err != nil {
			return err
		}
		if err := admin.publish(dir, "bench"); err != nil {
			return err
		}
		return os.RemoveAll(dir)
	}
	writeTree := func(files []samplecourse.File) error {
		for _, f := range files {
			p := filepath.Join(src, f.Path)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, f.Data, 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	dest := filepath.Join(*work, "rsync-dest")
	rsyncPull := func() (int64, error) {
		before := rsyncProxy.Stats()
		out, err := exec.Command("rsync", "-az", "rsync://"+rsyncProxy.Addr()+"/course/", dest+"/").CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("rsync: %w: %s", err, out)
		}
		after := rsyncProxy.Stats()
		return after.BytesUp + after.BytesDown - before.BytesUp - before.BytesDown, nil
	}

	if err := publish(1, v); err != nil {
		return err
	}
	if err := writeTree(v); err != nil {
		return err
	}
	tok, err := admin.newToken("bench-school", "bench")
	if err != nil {
		return err
	}
	box, err := synctest.StartBox(ctx, filepath.Join(*work, "box"), "https://"+hubProxy.Addr(), tok, nil, nil)
	if err != nil {
		return err
	}
	defer box.Close()
	// A second box on the same versions shows what the hub's patch cache
	// saves: it is served what the first box caused to be computed.
	tok2, err := admin.newToken("bench-school-2", "bench")
	if err != nil {
		return err
	}
	box2, err := synctest.StartBox(ctx, filepath.Join(*work, "box2"), "https://"+hubAddr, tok2, nil, nil)
	if err != nil {
		return err
	}
	defer box2.Close()
	second := func() (float64, error) {
		cpu0, err := procCPU(hubCmd.Process.Pid)
		if err != nil {
			return 0, err
		}
		if err := box2.Client.Pass(ctx); err != nil {
			return 0, fmt.Errorf("second box: %w", err)
		}
		cpu1, _ := procCPU(hubCmd.Process.Pid)
		return cpu1 - cpu0, nil
	}
	pass := func() (int64, float64, time.Duration, error) {
		before := hubProxy.Stats()
		cpu0, err := procCPU(hubCmd.Process.Pid)
		if err != nil {
			return 0, 0, 0, err
		}
		start := time.Now()
		if err := box.Client.Pass(ctx); err != nil {
			return 0, 0, 0, err
		}
		el := time.Since(start)
		cpu1, _ := procCPU(hubCmd.Process.Pid)
		after := hubProxy.Stats()
		return after.BytesUp + after.BytesDown - before.BytesUp - before.BytesDown, cpu1 - cpu0, el, nil
	}

	fmt.Printf("course: %d files, %.1f MB (3 videos, 10 PDFs, 200 HTML pages)\n", len(v), float64(total)/1e6)
	full, fullCPU, fullTime, err := pass()
	if err != nil {
		return fmt.Errorf("initial sync: %w", err)
	}
	rsFull, err := rsyncPull()
	if err != nil {
		return err
	}
	fmt.Printf("initial sync (full download): outpost %d bytes in %s, rsync -az %d bytes; hub CPU %.2f s = %.2f s/GB served\n",
		full, fullTime.Round(time.Millisecond), rsFull, fullCPU, fullCPU/(float64(full)/1e9))
	if _, err := second(); err != nil {
		return err
	}
	fmt.Println()
	fmt.Printf("%-4s %-48s %12s %12s %12s %8s %10s %8s %8s\n", "case", "update", "new bytes", "rsync -az", "outpost", "÷rsync", "÷full", "hub CPU", "2nd box")
	version := int64(1)
	for _, u := range updates {
		v = u.apply(synctest.Clone(v))
		version++
		if err := publish(version, v); err != nil {
			return err
		}
		if err := writeTree(v); err != nil {
			return err
		}
		ours, cpu, _, err := pass()
		if err != nil {
			return fmt.Errorf("update %s: %w", u.name, err)
		}
		theirs, err := rsyncPull()
		if err != nil {
			return err
		}
		cpu2, err := second()
		if err != nil {
			return err
		}
		fmt.Printf("%-4s %-48s %12d %12d %12d %7.2fx %9.2f%% %7.2fs %7.2fs\n", u.name, u.what, u.newBytes, theirs, ours,
			float64(ours)/float64(theirs), 100*float64(ours)/float64(full), cpu, cpu2)
	}
	st := box.Client.Status().Totals
	fmt.Printf("\nbox totals: %d blocks fetched, %d reused in place, %d found moved, %d from patches (%d patch bytes), %d hash mismatches\n",
		st.BlocksFetched, st.BlocksLocal, st.BlocksShifted, st.BlocksPatched, st.PatchBytes, st.HashMismatches)
	if cpu, err := procCPU(rsyncd.Process.Pid); err == nil {
		fmt.Printf("rsync daemon CPU over its five transfers: %.2f s (its per-client children included)\n", cpu)
	}
	fmt.Println("hub CPU: the first box's column includes building each (old, new) patch once; the second box on the same versions is served the cached patches.")

	if *shaped {
		const rate = 125_000 // 1 Mb/s
		slow, err := linkemu.Start(linkemu.Config{Target: hubAddr, RateBytesPerSec: rate, Latency: 150 * time.Millisecond})
		if err != nil {
			return err
		}
		defer slow.Close()
		tok, err := admin.newToken("bench-slow", "bench")
		if err != nil {
			return err
		}
		b2, err := synctest.StartBox(ctx, filepath.Join(*work, "box-slow"), "https://"+slow.Addr(), tok, nil, nil)
		if err != nil {
			return err
		}
		defer b2.Close()
		s0 := slow.Stats()
		start := time.Now()
		if err := b2.Client.Pass(ctx); err != nil {
			return fmt.Errorf("shaped sync: %w", err)
		}
		el := time.Since(start)
		s1 := slow.Stats()
		down := s1.BytesDown - s0.BytesDown
		line := time.Duration(float64(down) / rate * float64(time.Second))
		total = 0 // the course as it is now, after the updates
		for _, f := range v {
			total += len(f.Data)
		}
		raw := time.Duration(float64(total) / rate * float64(time.Second))
		fmt.Printf("\nshaped initial sync (1 Mb/s, 300 ms RTT): %s for %d bytes down; line rate for those bytes %s (%.3fx), for the raw %d-byte course %s (%.3fx)\n",
			el.Round(time.Second), down, line.Round(time.Second), el.Seconds()/line.Seconds(), total, raw.Round(time.Second), el.Seconds()/raw.Seconds())
	}
	return nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitTCP(addr string) error {
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("%s did not come up", addr)
}

// procCPU is a process's user+system CPU seconds, its reaped children's
// included.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	var ticks float64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		n, _ := strconv.ParseFloat(f[i], 64)
		ticks += n
	}
	return ticks / 100, nil // CLK_TCK is 100 on Linux
}

// admin is the benchmark's own minimal client of the hub's admin API.
type admin struct {
	url, token string
	http       *http.Client
}

func newAdmin(hubDir, url string) (*admin, error) {
	var id *identity.Identity
	var tok []byte
	var err error
	for range 400 { // the hub makes its identity and token on first start
		if id, err = identity.Load(filepath.Join(hubDir, "identity")); err == nil {
			if tok, err = os.ReadFile(filepath.Join(hubDir, "hub", "admin-token")); err == nil {
				break
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("hub did not start: %w", err)
	}
	a := &admin{url: url, token: strings.TrimSpace(string(tok)), http: &http.Client{Transport: &http.Transport{TLSClientConfig: wire.AdminTLS(id.DeviceID)}}}
	for range 400 {
		if resp, err := a.http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			return a, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return nil, errors.New("hub did not answer")
}

func (a *admin) do(method, path string, body io.Reader, hdr map[string]string, out any) error {
	req, err := http.NewRequest(method, a.url+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func (a *admin) publish(dir, channel string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var names []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			names = append(names, p)
		}
		return err
	})
	sort.Strings(names)
	for _, p := range names {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	tw.Close()
	sum := sha256.Sum256(buf.Bytes())
	id := hex.EncodeToString(sum[:])
	if err := a.do(http.MethodPut, "/admin/v1/uploads/"+id, bytes.NewReader(buf.Bytes()), map[string]string{"Upload-Offset": "0"}, nil); err != nil {
		return err
	}
	return a.do(http.MethodPost, "/admin/v1/uploads/"+id+"/publish?channel="+channel, nil, nil, nil)
}

func (a *admin) newToken(site, channel string) (string, error) {
	b, _ := json.Marshal(hub.TokenRequest{Site: site, Channels: []string{channel}, ExpiresSeconds: 3600})
	var resp hub.TokenResponse
	if err := a.do(http.MethodPost, "/admin/v1/tokens", bytes.NewReader(b), nil, &resp); err != nil {
		return "", err
	}
	return resp.Token, nil
}
