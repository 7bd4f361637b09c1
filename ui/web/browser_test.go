package web

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"outpost/content/blockstore"
	"outpost/content/pack"
	"outpost/content/samplecourse"
)

// findChromium looks where Debian puts Chromium, then on PATH.
func findChromium() string {
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// importSampleCourse imports the demo course the way `outpost demo` does:
// every listed file into the store, then the manifest into the catalog.
func (e *testEnv) importSampleCourse() *pack.Manifest {
	e.t.Helper()
	ctx := context.Background()
	dir := e.t.TempDir()
	m, err := samplecourse.Write(dir)
	if err != nil {
		e.t.Fatal(err)
	}
	for p, f := range m.Files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.store.Put(ctx, bytes.NewReader(data), blockstore.Expect{SHA256: f.SHA256, Size: f.Size}, nil); err != nil {
			e.t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, pack.ManifestName))
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.db.Commit(ctx, m, raw, nil); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// TestBrowser drives the portal in headless Chromium, as a learner on a
// 360-px phone would: once with JavaScript (search, open the video, play
// it) and once without (every step must still work by links and forms).
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser test needs Chromium; it runs without -short")
	}
	chrome := findChromium()
	if chrome == "" {
		t.Fatal("Chromium is not installed (looked for /usr/bin/chromium, chromium and chromium-browser on PATH); install it with: apt-get install chromium")
	}
	began := time.Now()
	e := newEnv(t)
	m := e.importSampleCourse()
	course := m.ID
	video := ""
	for _, it := range m.Items() {
		if it.Kind == pack.KindVideo {
			video = it.ID
		}
	}
	if video == "" {
		t.Fatal("the sample course has no video")
	}
	courseURL := "/c/" + course
	videoURL := courseURL + "/i/" + video

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// Without UserDataDir, chromedp gives the browser a fresh temporary
	// --user-data-dir and removes it after killing any leftover child
	// process, which a t.TempDir could not be sure of.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox, // we are root, in a container
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(360, 740),
	)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	// step runs actions and fails the test with what was being done.
	step := func(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// follow clicks a link or button and waits for the page it leads to.
	follow := func(t *testing.T, ctx context.Context, what string, sel chromedp.CSS, wantPath string) {
		t.Helper()
		resp, err := chromedp.RunResponse(ctx, chromedp.Click(sel))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if resp.Status != 200 {
			t.Fatalf("%s: %s answered %d", what, resp.URL, resp.Status)
		}
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !strings.HasPrefix(strings.TrimPrefix(loc, e.srv.URL), wantPath) {
			t.Fatalf("%s: ended at %s, want %s", what, loc, wantPath)
		}
	}
	fitsPhone := func(t *testing.T, ctx context.Context, page string) {
		t.Helper()
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
		if err != nil || !ok {
			t.Errorf("%s is wider than a 360-px screen (%v)", page, err)
		}
		// The stylesheet and every icon loaded, under the page's CSP.
		ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`getComputedStyle(document.querySelector('header.top')).display === 'flex' &&
			[...document.images].every(i => i.complete && i.naturalWidth > 0)`))
		if err != nil || !ok {
			t.Errorf("%s: the stylesheet or an icon did not load (%v)", page, err)
		}
	}

	t.Run("with JavaScript", func(t *testing.T) {
		tab := browser
		step(t, tab, "open home", chromedp.EmulateViewport(360, 740), chromedp.Navigate(e.srv.URL+"/"))
		fitsPhone(t, tab, "home")
		step(t, tab, "type a search", chromedp.SendKeys(chromedp.CSS("#top-q"), "water cycle"))
		follow(t, tab, "submit the search", ".searchbar button[type=submit]", "/search?q=water+cycle")
		follow(t, tab, "open the course from the results", chromedp.CSS(`.hits a[href="`+courseURL+`"]`), courseURL)
		fitsPhone(t, tab, "course page")
		follow(t, tab, "open the video", chromedp.CSS(`a[href="`+videoURL+`"]`), videoURL)
		fitsPhone(t, tab, "video page")

		started, err := chromedp.Run(tab, chromedp.Evaluate[bool](
			`document.querySelector('video').play().then(() => true)`, chromedp.EvalAwaitPromise))
		if err != nil || !started {
			t.Fatalf("start playback: %v", err)
		}
		// Playback must really advance: the bytes came through /m/ with
		// Range requests and decoded.
		if _, err := chromedp.Run(tab, chromedp.Poll[bool](
			`document.querySelector('video').currentTime > 1`,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			state, _ := chromedp.Run(tab, chromedp.Evaluate[string](
				`(v => JSON.stringify({t: v.currentTime, rs: v.readyState, ns: v.networkState, err: v.error && v.error.message}))(document.querySelector('video'))`))
			t.Fatalf("playback did not advance past 1 s: %v; video state %s", err, state)
		}
		tracks, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelector('video').textTracks.length`))
		if err != nil || tracks != 1 {
			t.Errorf("the video has %d text tracks (%v), want the transcript", tracks, err)
		}

		// The quiz runs its script under the activity's sandboxing CSP, even
		// when opened directly.
		var quiz string
		for _, it := range m.Items() {
			if it.Kind == pack.KindHTML5 {
				quiz = "/a/" + course + "/" + it.ID + "/" + it.Entry
			}
		}
		step(t, tab, "open the quiz", chromedp.Navigate(e.srv.URL+quiz))
		if _, err := chromedp.Run(tab, chromedp.Poll[bool](`document.querySelector('#question').textContent.length > 0`,
			chromedp.WithPollingTimeout(10*time.Second))); err != nil {
			t.Errorf("the quiz did not start: %v", err)
		}
		origin, err := chromedp.Run(tab, chromedp.Evaluate[string](`self.origin`))
		if err != nil || origin != "null" {
			t.Errorf("the quiz runs in origin %q (%v), want the opaque origin \"null\"", origin, err)
		}
	})

	t.Run("without JavaScript", func(t *testing.T) {
		tab, cancelTab := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		defer cancelTab()
		if _, err := chromedp.Call(tab, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatalf("disable JavaScript: %v", err)
		}
		step(t, tab, "open home", chromedp.EmulateViewport(360, 740), chromedp.Navigate(e.srv.URL+"/"))
		step(t, tab, "type a search", chromedp.SendKeys(chromedp.CSS("#top-q"), "water"))
		follow(t, tab, "submit the search", ".searchbar button[type=submit]", "/search?q=water")
		follow(t, tab, "open the course from the results", chromedp.CSS(`.hits a[href="`+courseURL+`"]`), courseURL)
		follow(t, tab, "open the video", chromedp.CSS(`a[href="`+videoURL+`"]`), videoURL)
		src, err := chromedp.Run(tab, chromedp.AttributeValue(chromedp.CSS("video[controls]"), "src"))
		if err != nil || !src.Exists || src.Value != "/m/"+course+"/"+video {
			t.Fatalf("video element: src %+v (%v)", src, err)
		}
		follow(t, tab, "go to the next item", `a[rel="next"]`, courseURL+"/i/")
		follow(t, tab, "go back to the course", `a.up`, courseURL)

		// Prove scripts really are off: the quiz's <noscript> was parsed as
		// markup, which only happens with scripting disabled.
		var quiz string
		for _, it := range m.Items() {
			if it.Kind == pack.KindHTML5 {
				quiz = "/a/" + course + "/" + it.ID + "/" + it.Entry
			}
		}
		step(t, tab, "open the quiz", chromedp.Navigate(e.srv.URL+quiz), chromedp.WaitReady(chromedp.CSS("noscript p")))
	})
	t.Logf("browser test took %v", time.Since(began).Round(time.Millisecond))
}
