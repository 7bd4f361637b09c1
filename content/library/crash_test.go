package library_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"outpost/appliance/database"
	"outpost/content/blockstore"
	"outpost/content/catalog"
	"outpost/content/library"
)

// TestMain lets the test binary double as the importer that the crash test
// kills: with OUTPOST_CRASH_CHILD set it imports one pack and reports its
// progress on stdout, one line per chunk, so the parent can kill it at an
// exact byte offset instead of after a guessed sleep.
func TestMain(m *testing.M) {
	if os.Getenv("OUTPOST_CRASH_CHILD") == "1" {
		os.Exit(crashChild(os.Getenv("OUTPOST_CRASH_DATA"), os.Getenv("OUTPOST_CRASH_PACK")))
	}
	if os.Getenv("OUTPOST_MEMORY_CHILD") == "1" {
		os.Exit(memoryChild(os.Getenv("OUTPOST_CRASH_DATA"), os.Getenv("OUTPOST_CRASH_PACK")))
	}
	os.Exit(m.Run())
}

type lineProgress struct{ done int64 }

func (p *lineProgress) Total(int64) {}
func (p *lineProgress) Add(n int64) {
	p.done += n
	fmt.Fprintf(os.Stdout, "progress %d\n", p.done)
}

func crashChild(data, packPath string) int {
	ctx := context.Background()
	lib, closeFn, err := openLibrary(ctx, data)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer closeFn()
	_, err = lib.ImportWithHooks(ctx, packPath, &lineProgress{}, library.Hooks{BeforeCommit: func() {
		fmt.Fprintln(os.Stdout, "commit")
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(os.Stdout, "done")
	return 0
}

func openLibrary(ctx context.Context, data string) (*library.Library, func(), error) {
	db, err := database.Open(ctx, filepath.Join(data, "outpost.db"))
	if err != nil {
		return nil, nil, err
	}
	st, err := blockstore.Open(filepath.Join(data, "store"), db)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	lib := library.New(data, st, catalog.New(db))
	lib.Reserve = 0
	return lib, func() { db.Close() }, nil
}

func TestCrashDuringImport(t *testing.T) {
	runs := 60
	if testing.Short() {
		runs = 10
	}
	files := map[string][]byte{"video/lesson.webm": media(7, 2<<20)}
	var total int64 = 2 << 20
	for i := range 12 {
		b := media(byte(i+20), 20_000+i*1000)
		files[fmt.Sprintf("pages/p%02d.html", i)] = b
		total += int64(len(b))
	}
	v1 := newTestPack("crashcourse", 1, map[string][]byte{"pages/p00.html": files["pages/p00.html"]}).writeDir(t)
	v2 := newTestPack("crashcourse", 2, files).writeDir(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(20261123, 2))
	killedMidway := 0
	for run := range runs {
		data := t.TempDir()
		ctx := context.Background()
		// Half the runs start from a box that already shows version 1, to
		// check the old version keeps serving through a crash.
		withOld := run%2 == 0
		if withOld {
			lib, closeFn, err := openLibrary(ctx, data)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lib.Import(ctx, v1, nil); err != nil {
				t.Fatal(err)
			}
			closeFn()
		}
		// Kill points: a byte offset within the copy, or (one run in
		// six) the moment the commit begins.
		target := rng.Int64N(total)
		atCommit := run%6 == 5
		killed := runChildUntil(t, exe, data, v2, target, atCommit)
		if killed {
			killedMidway++
		}

		lib, closeFn, err := openLibrary(ctx, data)
		if err != nil {
			t.Fatalf("run %d: reopen after kill: %v", run, err)
		}
		c, err := lib.Catalog.Course(ctx, "crashcourse")
		switch {
		case err != nil && withOld:
			t.Fatalf("run %d: the old version vanished after a crash: %v", run, err)
		case err == nil && c.Version == 2 && c.ItemCount != len(files):
			t.Fatalf("run %d: partial course visible: %d of %d items", run, c.ItemCount, len(files))
		case err == nil && c.Version == 1 && !withOld:
			t.Fatalf("run %d: impossible version 1", run)
		}
		rep, err := lib.Verify(ctx, nil, nil)
		if err != nil || !rep.Clean() {
			t.Fatalf("run %d (kill at %d, commit=%v): verify after crash: %+v %v", run, target, atCommit, rep, err)
		}
		if _, err := lib.GC(ctx); err != nil {
			t.Fatalf("run %d: gc: %v", run, err)
		}
		if left, _ := os.ReadDir(filepath.Join(data, "store", "tmp")); len(left) != 0 {
			t.Fatalf("run %d: gc left %d temp files", run, len(left))
		}
		unref, _ := lib.Catalog.Unreferenced(ctx)
		if len(unref) != 0 {
			t.Fatalf("run %d: %d unreferenced objects after gc", run, len(unref))
		}
		// The restarted importer finishes the job.
		if _, err := lib.Import(ctx, v2, nil); err != nil {
			t.Fatalf("run %d: import after crash: %v", run, err)
		}
		if c, err := lib.Catalog.Course(ctx, "crashcourse"); err != nil || c.Version != 2 || c.ItemCount != len(files) {
			t.Fatalf("run %d: after re-import: %+v %v", run, c, err)
		}
		closeFn()
	}
	if killedMidway < runs*3/4 {
		t.Fatalf("only %d of %d runs were killed before finishing; the test is not exercising crashes", killedMidway, runs)
	}
}

// runChildUntil starts the importer and SIGKILLs it once it reports target
// bytes copied (or reaches the commit). It reports whether the kill landed
// before the import finished.
func runChildUntil(t *testing.T, exe, data, packPath string, target int64, atCommit bool) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "OUTPOST_CRASH_CHILD=1", "OUTPOST_CRASH_DATA="+data, "OUTPOST_CRASH_PACK="+packPath)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if line == "done" {
			break
		}
		hit := atCommit && line == "commit"
		if n, ok := strings.CutPrefix(line, "progress "); ok && !atCommit {
			v, _ := strconv.ParseInt(n, 10, 64)
			hit = v >= target
		}
		if hit {
			cmd.Process.Kill()
			killed = true
			break
		}
	}
	cmd.Wait()
	if !killed && cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("importer failed on its own: %s", stderr.String())
	}
	return killed
}
