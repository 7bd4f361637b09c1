package web

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestActivityEntryStaysOnTheBox: whatever entry a catalog row holds, the
// bare activity URL redirects to a path on the box.
func TestActivityEntryStaysOnTheBox(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	const bare = "/a/" + testCourse + "/quiz/"
	for _, entry := range []string{
		"https:evil.example/x", "http:/evil.example/x", "//evil.example/x", `\\evil.example\x`, `/\evil.example`,
		"javascript:alert(1)", "https://evil.example/", "%2F%2Fevil.example", "..//evil.example", "index.html",
	} {
		e.setRow(testCourse, "quiz", "entry", entry)
		resp, err := client.Get(e.srv.URL + bare)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("entry %q: status %d, want a redirect or 404", entry, resp.StatusCode)
			}
			continue
		}
		loc := resp.Header.Get("Location")
		checkOnBox(t, e.srv.URL, "entry "+entry, loc)
		if !strings.HasPrefix(loc, bare) {
			t.Errorf("entry %q: Location %q is not inside the activity", entry, loc)
		}
	}
}

// checkOnBox fails unless loc, resolved the way a browser resolves it
// against box, stays on box.
func checkOnBox(t *testing.T, box, what, loc string) {
	t.Helper()
	if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, `/\`) {
		t.Errorf("%s: Location %q is not an absolute path on the box", what, loc)
		return
	}
	base, _ := url.Parse(box + "/x/y")
	// Browsers read a backslash as a slash in http URLs.
	u, err := url.Parse(strings.ReplaceAll(loc, `\`, "/"))
	if err != nil {
		t.Errorf("%s: Location %q does not parse: %v", what, loc, err)
		return
	}
	if got := base.ResolveReference(u); got.Host != base.Host || got.Scheme != base.Scheme {
		t.Errorf("%s: Location %q leads to %s", what, loc, got)
	}
}

// TestRedirectsStayOnTheBox sends raw request lines that make the portal's
// router redirect (path cleaning, a missing trailing slash) and checks that
// every Location stays on the box.
func TestRedirectsStayOnTheBox(t *testing.T) {
	e := newEnv(t)
	e.addTestCourses()
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	redirects := 0
	for _, target := range []string{
		"//evil.example/", "//evil.example/%2e%2e", "///evil.example/x", "/.//evil.example/x", "/..//evil.example",
		"/a/" + testCourse + "/quiz", "/a/" + testCourse + "/quiz/", "/a/" + testCourse + "/quiz/..//evil.example/",
		"/a/" + testCourse + "/quiz//evil.example", "/c/" + testCourse + "/..//evil.example", "/%2F%2Fevil.example",
		`/\evil.example`, `/\/evil.example`, "/s/../..//evil.example", "/m/" + testCourse + "/./notes", "/c//evil.example/i/x",
	} {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, addr)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			conn.Close()
			t.Fatalf("GET %s: %v", target, err)
		}
		resp.Body.Close()
		conn.Close()
		if loc := resp.Header.Get("Location"); loc != "" {
			redirects++
			checkOnBox(t, e.srv.URL, "GET "+target, loc)
		}
	}
	if redirects < 5 {
		t.Errorf("only %d of the requests were redirected; the test no longer exercises the router's redirects", redirects)
	}
}
