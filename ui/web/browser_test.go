package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
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

// startChromium starts a headless Chromium for the test and returns the
// context of its first tab; the browser is stopped when ctx ends or the test
// finishes, whichever comes first.
func startChromium(t *testing.T, ctx context.Context, chrome string) context.Context {
	t.Helper()
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
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	return browser
}

// needChromium skips under -short and fails when Chromium is missing.
func needChromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("the browser test needs Chromium; it runs without -short")
	}
	chrome := findChromium()
	if chrome == "" {
		t.Fatal("Chromium is not installed (looked for /usr/bin/chromium, chromium and chromium-browser on PATH); install it with: apt-get install chromium")
	}
	return chrome
}

// samplePDFTitle is the /Title of the sample course's fact sheet, which
// Chromium's PDF viewer shows once it has parsed the file.
const samplePDFTitle = "The Water Cycle - Fact Sheet"

// waitPDFShown waits until Chromium's PDF viewer shows the PDF titled want
// in tab, and fails the test if it does not within 20 s. The viewer names a
// document after the PDF's title once it has parsed the file: its own frame
// (an extension frame) inside an item page's <object>, the tab itself when
// the PDF is opened on its own.
func waitPDFShown(t *testing.T, tab context.Context, want string) {
	t.Helper()
	const viewer = "chrome-extension://mhjfbmdgcfjbbpaeojofohoefgiehjai/"
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	tabID := chromedp.FromContext(tab).Target.TargetID
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var vctx context.Context
	var seen []string
	for {
		infos, err := chromedp.Targets(ctx)
		if err != nil && ctx.Err() == nil {
			t.Fatalf("list targets: %v", err)
		}
		for _, ti := range infos {
			switch {
			case ti.TargetID == tabID:
				if ti.Title == want {
					return
				}
				seen = append(seen, "tab: "+ti.Title)
			case strings.HasPrefix(ti.URL, viewer) && vctx == nil:
				// Detach, never close: closing the viewer's frame would
				// take the page with it.
				var cancelV context.CancelFunc
				vctx, cancelV = chromedp.NewContext(tab, chromedp.WithTargetID(ti.TargetID), chromedp.WithDetachOnCancel())
				defer cancelV()
			}
		}
		if vctx != nil {
			title, err := chromedp.Run(vctx, chromedp.Evaluate[string](`document.title`))
			if err == nil && title == want {
				return
			}
			seen = append(seen, fmt.Sprintf("viewer: %q %v", title, err))
		}
		select {
		case <-ctx.Done():
			if len(seen) > 4 {
				seen = seen[len(seen)-4:]
			}
			t.Errorf("Chromium's PDF viewer did not show %q: %v (last seen %q)", want, ctx.Err(), seen)
			return
		case <-tick.C:
		}
	}
}

// evalIsolated evaluates js, awaiting a promise, in an isolated world of the
// tab's main frame: it works in documents whose own scripts the sandbox
// disables, where chromedp.Evaluate would wait for a context forever.
func evalIsolated(tab context.Context, js string) (string, error) {
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	ft, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
	if err != nil {
		return "", err
	}
	w, err := chromedp.Call(ctx, page.CreateIsolatedWorld, page.CreateIsolatedWorldParams{FrameID: ft.FrameTree.Frame.ID, WorldName: "outpost-test"})
	if err != nil {
		return "", err
	}
	yes := true
	r, err := chromedp.Call(ctx, runtime.Evaluate, runtime.EvaluateParams{Expression: js, ContextID: w.ExecutionContextID, AwaitPromise: &yes, ReturnByValue: &yes})
	if err != nil {
		return "", err
	}
	if r.ExceptionDetails != nil {
		return "", fmt.Errorf("%s", r.ExceptionDetails.Text)
	}
	var s string
	if err := json.Unmarshal(r.Result.Value, &s); err != nil {
		return "", fmt.Errorf("result %s: %w", r.Result.Value, err)
	}
	return s, nil
}

// TestBrowser drives the portal in headless Chromium, as a learner on a
// 360-px phone would: once with JavaScript (search, open the video, play
// it) and once without (every step must still work by links and forms).
func TestBrowser(t *testing.T) {
	chrome := needChromium(t)
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
	browser := startChromium(t, ctx, chrome)

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
		// The items' kind icons are the stylesheet's (a class on each row),
		// not <img>s: each row shows one, and each loads under the page's CSP.
		icons, err := chromedp.Run(tab, chromedp.Evaluate[string](`(() => {
			const rows = [...document.querySelectorAll('ol.items > li > a')];
			const urls = rows.map(a => { const s = getComputedStyle(a, '::before');
				return s.width === '24px' && s.backgroundImage.startsWith('url("') ? s.backgroundImage.slice(5, -2) : '' });
			if (!rows.length || urls.includes('')) return Promise.resolve('rows without an icon: ' + JSON.stringify(urls));
			return Promise.all([...new Set(urls)].map(u => new Promise(ok => {
				const i = new Image(); i.onload = () => ok(i.naturalWidth > 0 ? '' : u); i.onerror = () => ok(u); i.src = u;
			}))).then(bad => bad.filter(Boolean).length ? 'icons that did not load: ' + bad.filter(Boolean) : 'ok ' + rows.length);
		})()`, chromedp.EvalAwaitPromise))
		if err != nil || !strings.HasPrefix(icons, "ok ") {
			t.Errorf("course page icons: %s (%v)", icons, err)
		}
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

	// Every course file is served with a sandboxing CSP (fileCSP or
	// playerCSP); the legitimate items must still work under it.
	t.Run("course files under their CSP", func(t *testing.T) {
		tab, cancelTab := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		defer cancelTab()
		byKind := map[pack.Kind]string{}
		for _, it := range m.Items() {
			byKind[it.Kind] = it.ID
		}
		// The audio item plays on its page.
		step(t, tab, "open the audio item", chromedp.Navigate(e.srv.URL+courseURL+"/i/"+byKind[pack.KindAudio]))
		if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](`(a => a.play().then(() => new Promise(ok => {
				const check = () => { if (a.currentTime > 0.5) ok(true) }; a.addEventListener('timeupdate', check); check() })))(document.querySelector('audio'))`,
			chromedp.EvalAwaitPromise)); err != nil {
			t.Errorf("the audio item did not play: %v", err)
		}

		// The PDF item is shown on its page: Chromium's PDF viewer loads
		// the file from the <object> although its CSP sandboxes it. The
		// viewer runs in its own frame; it names its document after the
		// PDF's title once the PDF is parsed.
		step(t, tab, "open the PDF item", chromedp.Navigate(e.srv.URL+courseURL+"/i/"+byKind[pack.KindPDF]))
		waitPDFShown(t, tab, samplePDFTitle)

		// Opened on their own, the files still work: the PDF in the viewer,
		// the video in the browser's media page (under playerCSP's
		// allow-same-origin; fileCSP would leave it empty).
		step(t, tab, "open the PDF file", chromedp.Navigate(e.srv.URL+"/m/"+course+"/"+byKind[pack.KindPDF]))
		waitPDFShown(t, tab, samplePDFTitle)
		step(t, tab, "open the video file", chromedp.Navigate(e.srv.URL+"/m/"+course+"/"+video))
		// The media page runs no script of its own (sandbox), so the check
		// runs in an isolated world of the test's.
		got, err := evalIsolated(tab, `(v => { v.muted = true; return v.play().then(() => new Promise(ok => {
				const check = () => { if (v.currentTime > 0.5) ok(self.origin) }; v.addEventListener('timeupdate', check); check() })) })(document.querySelector('video'))`)
		if err != nil || got != e.srv.URL {
			t.Errorf("the video opened on its own did not play (%q, %v)", got, err)
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
