//go:build linux

package connguard

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// trickle sends one byte per tick on c until stop is closed or a write
// fails: a client that keeps its connection alive with as little as it can.
func trickle(c io.Writer, stop <-chan struct{}) {
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
}

// A body trickled below the minimum rate fails the handler's read within
// one window, and is counted.
func TestTrickledBodyIsDropped(t *testing.T) {
	readErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
		if err != nil {
			http.Error(w, "body too slow", http.StatusRequestTimeout)
		}
	})
	s := serve(t, h, Limits{BodyWindow: time.Second, BodyMinBytes: 1 << 10})
	c := dial(t, s.addr, "", 0)
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: box\r\nContent-Length: 4000\r\n\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go trickle(c, stop)
	if err := wait(t, readErr, "the handler's read to fail"); err == nil {
		t.Fatal("a trickled body was read to its end")
	}
	if got := s.dropped(reasonBodyStall); got != 1 {
		t.Errorf("body stalls counted: %v, want 1", got)
	}
	// The connection ends after the answer.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Errorf("answer %d (close %v), want 408 and the connection closed", resp.StatusCode, resp.Close)
	}
}

// A handler that answers without reading (a 401 on an upload) must not
// leave net/http discarding a trickled body forever: the connection ends
// within one window of the request.
func TestUnreadTrickledBodyEnds(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	})
	s := serve(t, h, Limits{BodyWindow: time.Second, BodyMinBytes: 1 << 10})
	c := dial(t, s.addr, "", 0)
	fmt.Fprintf(c, "PUT /upload HTTP/1.1\r\nHost: box\r\nContent-Length: 60000\r\n\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go trickle(c, stop)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status %d, want 401", resp.StatusCode)
	}
	// Then the server closes: EOF or a reset, never the 20 s deadline.
	_, err = br.ReadByte()
	if err == nil || isTimeout(err) {
		t.Errorf("after the answer: %v; want the connection closed", err)
	}
	if n := s.g.caps.count(); n != 0 {
		t.Errorf("%d connections still counted", n)
	}
	if got := s.dropped(reasonBodyStall); got != 1 {
		t.Errorf("body stalls counted: %v, want 1", got)
	}
}

// A slow body that keeps moving is read whole, however many windows it
// spans: 4 KiB every 50 ms (80 KiB/s, forty times the minimum of 4 KiB per
// 2 s).
func TestSlowBodyIsReadWhole(t *testing.T) {
	const size = 192 << 10
	got := make(chan int, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
		got <- len(b)
	})
	s := serve(t, h, Limits{BodyWindow: 2 * time.Second, BodyMinBytes: 4 << 10, MaxBodyBytes: -1})
	c := dial(t, s.addr, "", 0)
	fmt.Fprintf(c, "PUT /upload HTTP/1.1\r\nHost: box\r\nContent-Length: %d\r\n\r\n", size)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	chunk := bytes.Repeat([]byte("y"), 4<<10)
	for sent := 0; sent < size; sent += len(chunk) {
		<-tick.C
		if _, err := c.Write(chunk); err != nil {
			t.Fatalf("after %d bytes: %v", sent, err)
		}
	}
	if n := wait(t, got, "the handler to read the body"); n != size {
		t.Errorf("handler read %d bytes, want %d", n, size)
	}
	if d := s.dropped(reasonBodyStall); d != 0 {
		t.Errorf("body stalls counted: %v, want 0", d)
	}
}

// Once a body has ended, the window no longer applies: a handler that
// answers for longer than a window (a block stream after its request) is
// not cancelled by net/http's read-ahead timing out, whether the handler
// read to EOF itself or stopped at the last byte of a chunked body.
func TestLongAnswerAfterBodyIsNotCancelled(t *testing.T) {
	for _, tc := range []struct {
		name, req string
		read      func(io.Reader) error
	}{
		{"to EOF", "Content-Length: 5\r\n\r\nhello", func(r io.Reader) error { _, err := io.ReadAll(r); return err }},
		{"without EOF", "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", func(r io.Reader) error {
			_, err := io.ReadFull(r, make([]byte, 5))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const window = 500 * time.Millisecond
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := tc.read(r.Body); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				w.Write([]byte("part 1\n"))
				http.NewResponseController(w).Flush()
				select {
				case <-r.Context().Done():
					w.Write([]byte("cancelled\n"))
				case <-time.After(3 * window):
					w.Write([]byte("part 2\n"))
				}
			})
			s := serve(t, h, Limits{BodyWindow: window, BodyMinBytes: 1 << 10})
			c := dial(t, s.addr, "", 0)
			fmt.Fprintf(c, "POST /blocks HTTP/1.1\r\nHost: box\r\n%s", tc.req)
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != "part 1\npart 2\n" {
				t.Errorf("answer %q, want both parts", b)
			}
		})
	}
}

// A body larger than MaxBodyBytes is refused before a byte of it is read.
func TestOversizedBodyIsRefused(t *testing.T) {
	called := false
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true })
	s := serve(t, h, Limits{MaxBodyBytes: 1000})
	c := dial(t, s.addr, "", 0)
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: box\r\nContent-Length: 1000000\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close || called {
		t.Errorf("status %d, close %v, handler called %v; want 413, closed, not called", resp.StatusCode, resp.Close, called)
	}
	if got := s.dropped(reasonBodyTooLarge); got != 1 {
		t.Errorf("body_too_large counted: %v, want 1", got)
	}
}

func isTimeout(err error) bool {
	return err != nil && strings.Contains(err.Error(), "timeout")
}
