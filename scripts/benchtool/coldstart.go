package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"outpost/appliance/loadgen"
	"outpost/content/pack"
)

// pollInterval bounds the start-up time's resolution: one poll interval
// plus one request of the home page.
const pollInterval = time.Millisecond

type coldStart struct {
	bin, data, pack string
	runs, clients   int
	first, total    int
	mix             []string // page kinds to cycle through: home, search, course, item
	// settle is how long to stay idle after a reading before a second one:
	// the Go runtime hands freed heap back to the kernel over minutes, not
	// at once, so the two readings bracket what a box would show.
	settle time.Duration
}

// run starts the server c.runs times, timing exec to the first 200 of "/"
// each time; in the last run it then reads the idle RSS, drives page views
// and reads it again after c.first and after c.total views.
func (c *coldStart) run(ctx context.Context, out io.Writer) error {
	pages, err := c.pageURLs()
	if err != nil {
		return err
	}
	var starts []float64
	for i := range c.runs {
		port, err := freePort()
		if err != nil {
			return err
		}
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		cmd := exec.Command(c.bin, "serve", "--data", c.data, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", c.bin, err)
		}
		waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = loadgen.WaitOK(waitCtx, base+"/", pollInterval)
		cancel()
		took := time.Since(t0)
		if err != nil {
			stop(cmd)
			return fmt.Errorf("cold start: %w", err)
		}
		starts = append(starts, float64(took)/float64(time.Millisecond))
		if i < c.runs-1 {
			if err := stop(cmd); err != nil {
				return err
			}
			continue
		}
		err = c.measure(ctx, out, cmd.Process.Pid, base, pages)
		if serr := stop(cmd); err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "start_ms %s\n", joinFloats(starts))
	sorted := slices.Clone(starts)
	slices.Sort(sorted)
	fmt.Fprintf(out, "start_ms_median %.1f\n", sorted[len(sorted)/2])
	fmt.Fprintf(out, "start_ms_max %.1f\n", sorted[len(sorted)-1])
	fmt.Fprintf(out, "poll_ms %.1f\n", float64(pollInterval)/float64(time.Millisecond))
	return nil
}

func (c *coldStart) measure(ctx context.Context, out io.Writer, pid int, base string, pages []string) error {
	reading := func(name string) error {
		idle, err := waitIdle(pid)
		if err != nil {
			return err
		}
		rss, err := procStatusKiB(pid, "VmRSS")
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "rss_%s_kib %d\nidle_%s %t\n", name, rss, name, idle)
		if c.settle <= 0 {
			return nil
		}
		time.Sleep(c.settle)
		if rss, err = procStatusKiB(pid, "VmRSS"); err != nil {
			return err
		}
		fmt.Fprintf(out, "rss_%s_settled_kib %d\n", name, rss)
		return nil
	}
	if err := reading("first"); err != nil {
		return err
	}
	visit := func(name string, urls []string) error {
		res, err := loadgen.Visit(ctx, urls, c.clients)
		if err != nil {
			return err
		}
		if res.Errors > 0 {
			return fmt.Errorf("page views: %d of %d failed; first: %s", res.Errors, len(urls), res.FirstErr)
		}
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		fmt.Fprintf(out, "pages_%s %d\npages_%s_p50_ms %.2f\npages_%s_p99_ms %.2f\npages_%s_kib %d\n",
			name, res.Pages, name, ms(res.P50), name, ms(res.P99), name, res.Bytes>>10)
		return reading(name)
	}
	abs := func(paths []string) []string {
		u := make([]string, len(paths))
		for i, p := range paths {
			u[i] = base + p
		}
		return u
	}
	if err := visit(strconv.Itoa(c.first), abs(pages[:c.first])); err != nil {
		return err
	}
	if err := visit(strconv.Itoa(c.total), abs(pages[c.first:c.total])); err != nil {
		return err
	}
	hwm, err := procStatusKiB(pid, "VmHWM")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "hwm_kib %d\nclients %d\nsettle_s %.0f\n", hwm, c.clients, c.settle.Seconds())
	return nil
}

// pageURLs is c.total page paths cycling through the kinds of page in c.mix
// (by default all that a learner opens): home, a search for one item's own
// word, the course page, an item page. Items are picked with a fixed seed
// so every run views the same pages.
func (c *coldStart) pageURLs() ([]string, error) {
	raw, err := os.ReadFile(filepath.Join(c.pack, pack.ManifestName))
	if err != nil {
		return nil, fmt.Errorf("read pack manifest: %w", err)
	}
	m, err := pack.ParseManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("read pack manifest: %w", err)
	}
	items := m.Items()
	rng := rand.New(rand.NewPCG(1, 2))
	course := "/c/" + url.PathEscape(m.ID)
	var out []string
	for i := range c.total {
		it := items[rng.IntN(len(items))]
		switch kind := c.mix[i%len(c.mix)]; kind {
		case "home":
			out = append(out, "/")
		case "search":
			word := strings.Fields(it.Text + " " + it.Title)[0]
			out = append(out, "/search?q="+url.QueryEscape(word))
		case "course":
			out = append(out, course)
		case "item":
			out = append(out, course+"/i/"+url.PathEscape(it.ID))
		default:
			return nil, fmt.Errorf("unknown page kind %q; use home, search, course or item", kind)
		}
	}
	return out, nil
}

// waitIdle waits until the process has used no CPU for half a second (its
// utime+stime, in clock ticks, unchanged over five 100 ms samples), so a
// memory reading is not taken mid-request or mid-GC. It gives up after 15 s
// and says so rather than failing: a process that never idles is a finding.
func waitIdle(pid int) (bool, error) {
	deadline := time.Now().Add(15 * time.Second)
	last, same := int64(-1), 0
	for time.Now().Before(deadline) {
		ticks, err := cpuTicks(pid)
		if err != nil {
			return false, err
		}
		if ticks == last {
			same++
			if same >= 5 {
				return true, nil
			}
		} else {
			last, same = ticks, 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false, nil
}

func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	// Fields after the parenthesised command name, which may hold spaces;
	// utime and stime are the 14th and 15th fields of the line.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("read CPU time: short /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	return u + k, nil
}

// procStatusKiB reads a memory line (VmRSS, VmHWM) of /proc/PID/status.
func procStatusKiB(pid int, key string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", key, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != key {
			continue
		}
		fields := strings.Fields(rest) // "123456 kB"
		if len(fields) < 1 {
			break
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", key, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("read %s: not in /proc/%d/status", key, pid)
}

// stop ends the server as systemd would, with SIGTERM, and kills it if it
// has not stopped within its own shutdown grace.
func stop(cmd *exec.Cmd) error {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop server: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("stop server: %w", err)
		}
		return nil
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
		return errors.New("stop server: still running 15s after SIGTERM; killed")
	}
}

func joinFloats(fs []float64) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strings.Join(s, ",")
}
