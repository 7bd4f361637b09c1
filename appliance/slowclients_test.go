//go:build linux

package appliance_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"outpost/appliance"
	"outpost/appliance/connguard"
	"outpost/appliance/loadgen"
)

// TestMain lets the test binary double as the box under attack: with
// OUTPOST_SLOW_CHILD set it opens the node in OUTPOST_SLOW_DATA and runs
// the daemon's Serve with the limits in OUTPOST_SLOW_LIMITS, so the test
// measures that process's descriptors and memory, apart from its own
// hundreds of client sockets.
func TestMain(m *testing.M) {
	if os.Getenv("OUTPOST_SLOW_CHILD") == "1" {
		os.Exit(slowChild())
	}
	os.Exit(m.Run())
}

func slowChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	node, err := appliance.Open(ctx, appliance.DefaultConfig(os.Getenv("OUTPOST_SLOW_DATA")), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer node.Close()
	if err := json.Unmarshal([]byte(os.Getenv("OUTPOST_SLOW_LIMITS")), &node.PortalLimits); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	err = node.Serve(ctx, ln, func() { fmt.Printf("listening %s\n", ln.Addr()) })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// Attackers come from these addresses (the whole of 127.0.0.0/8 is this
// machine); the normal client from 127.0.0.1.
var attackers = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}

const (
	perClient = 32
	// window is the child's header timeout, body and write windows and
	// idle timeout: long enough that every held connection is still held
	// while the peak is measured, short enough that the test sees them go.
	window     = 6 * time.Second
	mediaBytes = 32 << 20
)

// 300 slow connections — trickled headers, oversized headers, trickled
// bodies, media downloads that never read, idle keep-alives, 60 of each,
// from three addresses — leave the box's descriptors, memory and kernel
// send queues bounded, a normal client is served meanwhile, and once the
// windows pass the box holds nothing for them.
func TestSlowClientsLeaveTheBoxBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a box under 300 connections for about 15 s")
	}
	data := t.TempDir()
	prepareMediaNode(t, data)
	limits := connguard.Limits{PerClient: perClient, CapLoopback: true,
		ReadHeaderTimeout: window, IdleTimeout: window, BodyWindow: window, WriteWindow: window}
	box := startChild(t, data, limits)

	// Warm the box up as a normal client does, then take the baseline.
	normalClient(t, box)
	base := box.sample(t)
	t.Logf("baseline: %s", base)

	start := time.Now()
	stop := make(chan struct{})
	trickling := make(chan net.Conn, 300)
	trickled := make(chan int, 1)
	go func() { trickled <- trickleAll(trickling, stop) }()
	for i := range 300 {
		attack(t, box.addr, attackers[i%len(attackers)], i/len(attackers)%5, trickling)
	}
	close(trickling)
	t.Logf("300 slow connections opened in %v", time.Since(start).Round(time.Millisecond))

	// The peak, while every admitted attacker is still within its window,
	// and a normal client meanwhile.
	peak := base
	tick := time.NewTicker(100 * time.Millisecond)
	for range 20 {
		<-tick.C
		peak = peak.max(box.sample(t))
	}
	tick.Stop()
	t0 := time.Now()
	normalClient(t, box)
	t.Logf("normal client served in %v during the attack", time.Since(t0).Round(time.Millisecond))
	peak = peak.max(box.sample(t))
	t.Logf("peak:     %s", peak)
	t.Logf("metrics:  %s", box.connMetrics(t))

	// Bounds. Each admitted connection holds at most two descriptors (its
	// socket and a media file), and at most perClient per attacker are
	// admitted; 8 more for the normal client and the box's own.
	if maxFDs := base.fds + len(attackers)*perClient*2 + 8; peak.fds > maxFDs {
		t.Errorf("descriptors peaked at %d (baseline %d), bound %d: slow connections are not capped", peak.fds, base.fds, maxFDs)
	}
	// Memory: an admitted connection holds at most its header buffer
	// (32 KiB + 4 KiB), a write buffer (4 KiB), a goroutine stack (8-16 KiB)
	// and, mid-sendfile, a 32 KiB copy buffer: under 96 KiB, so 96
	// connections hold under 9 MiB; Go's heap may grow to twice what is
	// live (GOGC=100), and the normal client's page render and the
	// runtime's own slack fit in the rest of 32 MiB.
	if maxRSS := base.rssKiB + 32<<10; peak.rssKiB > maxRSS {
		t.Errorf("RSS peaked at %d KiB (baseline %d KiB), bound %d KiB: slow connections hold memory", peak.rssKiB, base.rssKiB, maxRSS)
	}
	// The kernel: a socket's send queue is bounded by twice SO_SNDBUF.
	if maxQ := int64(2 * connguard.Portal().SendBuffer); peak.maxTxq > maxQ {
		t.Errorf("one connection's send queue reached %d bytes, bound %d: the send buffer is not fixed", peak.maxTxq, maxQ)
	}

	// Once the windows pass, the box holds nothing for the attackers:
	// descriptors back to the baseline (the idle normal client may keep
	// one), no send queue left.
	deadline := time.Now().Add(5 * window)
	var now sample
	tick = time.NewTicker(100 * time.Millisecond)
	for now = box.sample(t); now.fds > base.fds+2 || now.txq != 0; now = box.sample(t) {
		if time.Now().After(deadline) {
			t.Errorf("%v after the attack began the box still holds %s (baseline %s)", time.Since(start).Round(time.Second), now, base)
			break
		}
		<-tick.C
	}
	tick.Stop()
	close(stop)
	t.Logf("after:    %s (%v after the attack began; %d one-byte trickles sent)", now, time.Since(start).Round(100*time.Millisecond), <-trickled)
	t.Logf("metrics:  %s", box.connMetrics(t))
	normalClient(t, box)
}

// prepareMediaNode imports a one-video course into a node in dir.
func prepareMediaNode(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	pack := t.TempDir()
	if _, err := loadgen.WriteMediaPack(pack, "slow", 1, mediaBytes, 1); err != nil {
		t.Fatal(err)
	}
	node, err := appliance.Open(ctx, appliance.DefaultConfig(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	node.Library.Reserve = 0
	if _, err := node.Library.Import(ctx, pack, nil); err != nil {
		t.Fatal(err)
	}
}

type child struct {
	pid  int
	addr string
	port int
}

func startChild(t *testing.T, data string, l connguard.Limits) *child {
	t.Helper()
	lj, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "OUTPOST_SLOW_CHILD=1", "OUTPOST_SLOW_DATA="+data, "OUTPOST_SLOW_LIMITS="+string(lj))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		io.Copy(io.Discard, out)
	}()
	var l1 string
	select {
	case l1 = <-line:
	case <-time.After(60 * time.Second):
		t.Fatal("the box did not start within 60 s")
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(l1), "listening ")
	if !ok {
		t.Fatalf("the box said %q", l1)
	}
	_, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	return &child{pid: cmd.Process.Pid, addr: addr, port: port}
}

// normalClient opens the home page and a 256 KiB range of the video, as a
// phone does, within a generous bound.
func normalClient(t *testing.T, box *child) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + box.addr + "/")
	if err != nil {
		t.Fatalf("normal client: home page: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Benchmark media") {
		t.Fatalf("normal client: home page: %d %.200q", resp.StatusCode, page)
	}
	req, _ := http.NewRequest("GET", "http://"+box.addr+"/m/slow/clip-01", nil)
	req.Header.Set("Range", "bytes=1048576-1310719")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatalf("normal client: video range: %v", err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || n != 256<<10 || err != nil {
		t.Fatalf("normal client: video range: %d, %d bytes, %v", resp.StatusCode, n, err)
	}
}

// attack opens one slow connection of the given kind from the address
// from. Connections to trickle go to trickling.
func attack(t *testing.T, addr, from string, kind int, trickling chan<- net.Conn) {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	var req string
	switch kind {
	case 0: // slowloris: headers a byte at a time
		req = "GET / HTTP/1.1\r\nHost: box\r\nX-Slow: "
	case 1: // a header line as long as the server will buffer, then slowly
		req = "GET / HTTP/1.1\r\nHost: box\r\nX-Big: " + strings.Repeat("a", 900<<10)
	case 2: // a body a byte at a time
		req = "POST / HTTP/1.1\r\nHost: box\r\nContent-Length: 60000\r\n\r\n"
	case 3: // a video it never reads
		req = "GET /m/slow/clip-01 HTTP/1.1\r\nHost: box\r\n\r\n"
	case 4: // one request, then idle on the keep-alive
		req = "GET /healthz HTTP/1.1\r\nHost: box\r\n\r\n"
	}
	if _, err := io.WriteString(c, req); err != nil {
		return // refused or cut while sending: nothing held
	}
	switch kind {
	case 0, 1, 2:
		trickling <- c
	case 4:
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

// trickleAll sends one byte every 200 ms on each connection it is given
// until stop, dropping those the box has closed; it returns how many bytes
// it sent.
func trickleAll(in <-chan net.Conn, stop <-chan struct{}) int {
	var conns []net.Conn
	sent := 0
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return sent
		case c, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			conns = append(conns, c)
		case <-tick.C:
			live := conns[:0]
			for _, c := range conns {
				c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
				if _, err := c.Write([]byte("x")); err == nil {
					sent++
					live = append(live, c)
				}
			}
			conns = live
		}
	}
}

// sample is what the box holds at one moment.
type sample struct {
	fds    int   // open descriptors of the box's process
	rssKiB int64 // its resident memory
	conns  int   // its TCP sockets on the portal port, other than the listener
	txq    int64 // bytes queued to send on them
	maxTxq int64 // on the fullest one
	tcpMem int64 // KiB of TCP memory, whole machine (/proc/net/sockstat)
}

func (s sample) String() string {
	return fmt.Sprintf("%d descriptors, RSS %d KiB, %d portal sockets queueing %d KiB (max %d KiB on one), machine TCP memory %d KiB",
		s.fds, s.rssKiB, s.conns, s.txq>>10, s.maxTxq>>10, s.tcpMem)
}

func (s sample) max(o sample) sample {
	return sample{fds: max(s.fds, o.fds), rssKiB: max(s.rssKiB, o.rssKiB), conns: max(s.conns, o.conns),
		txq: max(s.txq, o.txq), maxTxq: max(s.maxTxq, o.maxTxq), tcpMem: max(s.tcpMem, o.tcpMem)}
}

func (b *child) sample(t *testing.T) sample {
	t.Helper()
	var s sample
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", b.pid))
	if err != nil {
		t.Fatal(err)
	}
	s.fds = len(fds)
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			s.rssKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	tcp, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(tcp), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 || f[3] == "0A" { // 0A: LISTEN
			continue
		}
		_, lport, _ := strings.Cut(f[1], ":")
		if p, _ := strconv.ParseInt(lport, 16, 32); int(p) != b.port {
			continue
		}
		tx, _, _ := strings.Cut(f[4], ":")
		q, _ := strconv.ParseInt(tx, 16, 64)
		s.conns++
		s.txq += q
		s.maxTxq = max(s.maxTxq, q)
	}
	if ss, err := os.ReadFile("/proc/net/sockstat"); err == nil {
		for _, line := range strings.Split(string(ss), "\n") {
			if rest, ok := strings.CutPrefix(line, "TCP: "); ok {
				f := strings.Fields(rest)
				for i := 0; i+1 < len(f); i += 2 {
					if f[i] == "mem" {
						pages, _ := strconv.ParseInt(f[i+1], 10, 64)
						s.tcpMem = pages * int64(os.Getpagesize()) >> 10
					}
				}
			}
		}
	}
	return s
}

// connMetrics is the box's connection counters from /metrics.
func (b *child) connMetrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + b.addr + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "outpost_conn_") {
			out = append(out, strings.ReplaceAll(strings.TrimPrefix(line, "outpost_conn_"), `server="portal",`, ""))
		}
	}
	return strings.Join(out, " ")
}
