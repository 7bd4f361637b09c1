//go:build linux

package connguard

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A client that asks for a video and never reads is dropped within one
// write window: its request ends, the drop is counted, its slot is free
// again, and the kernel holds nothing more for it (a reset, not a close
// that would keep the unsent bytes queued).
func TestStalledReaderIsDropped(t *testing.T) {
	done := make(chan struct{}, 1)
	path := randomFile(t, 16<<20)
	s := serve(t, fileHandler(path, done), Limits{WriteWindow: time.Second, WriteMinBytes: 64 << 10, SendBuffer: 64 << 10})
	c := dial(t, s.addr, "", 4096)
	fmt.Fprintf(c, "GET /video HTTP/1.1\r\nHost: box\r\n\r\n")

	wait(t, done, "the stalled download to be dropped")
	if got := s.dropped(reasonWriteStall); got != 1 {
		t.Errorf("write stalls counted: %v, want 1", got)
	}
	// The client sees the reset once it reads past what it was sent.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client read %d bytes then %v; want a connection reset", n, err)
	}
	if n >= 16<<20 {
		t.Errorf("client got the whole file (%d bytes) from a dropped download", n)
	}
	// The reset was sent by the close: the slot and the socket are gone.
	if n := s.g.caps.count(); n != 0 {
		t.Errorf("%d connections still counted after the drop", n)
	}
	if socks := serverSockets(t, s.port); len(socks) != 0 {
		t.Errorf("the kernel still holds the server's side: %v", socks)
	}
}

// A slow client that keeps reading is never cut, however long the
// download takes: here it reads 8 KiB every 50 ms (160 KiB/s, twenty
// times the minimum of 16 KiB per 2 s) through small buffers, so the
// download spans several windows.
func TestSlowReaderKeepsItsDownload(t *testing.T) {
	const size = 512 << 10
	path := randomFile(t, size)
	s := serve(t, fileHandler(path, nil), Limits{WriteWindow: 2 * time.Second, WriteMinBytes: 16 << 10, SendBuffer: 16 << 10})
	c := dial(t, s.addr, "", 4096)
	fmt.Fprintf(c, "GET /video HTTP/1.1\r\nHost: box\r\n\r\n")
	br := bufio.NewReaderSize(c, 8<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, 8<<10)
	var got int
	start := time.Now()
	for got < size {
		<-tick.C
		n, err := io.ReadFull(resp.Body, buf[:min(len(buf), size-got)])
		got += n
		if err != nil {
			t.Fatalf("after %d bytes in %v: %v", got, time.Since(start).Round(time.Millisecond), err)
		}
	}
	t.Logf("read %d bytes in %v", got, time.Since(start).Round(time.Millisecond))
	if d := s.dropped(reasonWriteStall); d != 0 {
		t.Errorf("write stalls counted: %v, want 0", d)
	}
}

// The media path keeps the kernel's sendfile: serving a 32 MiB file
// through the guard costs far fewer read system calls than the 1,024 a
// copy through a 32 KiB user-space buffer needs at the least. The client
// discards what it receives inside the kernel (recv with MSG_TRUNC, which
// /proc/self/io does not count), so the count is the server's.
func TestMediaKeepsSendfile(t *testing.T) {
	const size = 32 << 20
	path := randomFile(t, size)
	s := serve(t, fileHandler(path, nil), Limits{})
	c := dial(t, s.addr, "", 0)
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// Headers first, through the ordinary path (a few reads of its own).
	before := syscr(t)
	fmt.Fprintf(c, "GET /video HTTP/1.1\r\nHost: box\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ContentLength != size {
		t.Fatalf("Content-Length %d, want %d", resp.ContentLength, size)
	}
	got := int64(br.Buffered())
	br.Discard(br.Buffered())
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	p := make([]byte, 1<<20) // never written: MSG_TRUNC only takes its length
	for got < size {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = syscall.Recvfrom(int(fd), p, syscall.MSG_TRUNC|syscall.MSG_DONTWAIT)
			return rerr != syscall.EAGAIN
		})
		if err != nil || rerr != nil || n == 0 {
			t.Fatalf("after %d bytes: %v %v (read %d)", got, err, rerr, n)
		}
		got += int64(n)
	}
	calls := syscr(t) - before
	t.Logf("%d MiB served with %d read system calls in the test process", size>>20, calls)
	if calls >= size/(32<<10) {
		t.Errorf("%d read system calls for %d MiB: the file went through user space, not sendfile", calls, size>>20)
	}
}

// syscr is this process's read system calls so far (read, pread, sendfile
// count; recv does not).
func syscr(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no syscr in /proc/self/io")
	return 0
}

// Under TLS (the hub) the window holds for every record written: a box
// that stops reading a block stream is dropped within one window.
func TestStalledTLSReaderIsDropped(t *testing.T) {
	writeErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		var err error
		for i := 0; i < 256 && err == nil; i++ {
			_, err = w.Write(chunk)
		}
		writeErr <- err
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New("test", h, Limits{WriteWindow: time.Second, ShutdownGrace: time.Second}.WithDefaults(Hub()), selfSigned(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, nil) }()
	defer func() { cancel(); <-done }()

	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /blocks HTTP/1.1\r\nHost: hub\r\n\r\n")
	if err := wait(t, writeErr, "the stalled stream to be dropped"); err == nil {
		t.Fatal("16 MiB written to a client that never reads")
	}
	if got := counter(s.g.metrics.dropped.WithLabelValues(reasonWriteStall)); got != 1 {
		t.Errorf("write stalls counted: %v, want 1", got)
	}
}

// selfSigned is a TLS server config with a throwaway certificate.
func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"hub"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}
