package library_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"outpost/content/pack"
	"outpost/content/samplecourse"
)

// memoryChild imports one pack and prints the process's peak RSS (VmHWM):
// run in a child so the figure is the import's alone.
func memoryChild(data, packPath string) int {
	ctx := context.Background()
	lib, closeFn, err := openLibrary(ctx, data)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer closeFn()
	if _, err := lib.Import(ctx, packPath, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmHWM:" {
			fmt.Println("hwm_kib", f[1])
		}
	}
	return 0
}

// TestImportMemoryIsBounded imports courses of 2,000 and 12,000 HTML pages,
// each in a child process, and compares their peak RSS. What an import may
// still hold in proportion to the course is its manifest: the raw bytes,
// the decoded form (about 2.5 times as big) and the garbage collector's
// headroom over them (up to as much again), about 8 bytes per manifest
// byte; the manifest itself is capped at 16 MiB (pack.MaxManifestSize).
// Nothing per file or per item may add to that: before, every item's
// search text and every file's block list were held to the end, and the
// peak grew by 22 bytes per manifest byte (36 MiB at 1,000 pages, 103 MiB
// at 10,000, 330 MiB at 50,000). The bound, 12 bytes per manifest byte,
// leaves room for the collector's timing; the fixed part, 64 MiB, is what
// a 2,000-page import needs at most on a 1 GB Pi.
func TestImportMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 14,000 files")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	peak := func(n int) (hwm, manifest int64) {
		dir := t.TempDir()
		packDir := filepath.Join(dir, "pack")
		if _, err := samplecourse.WritePages(packDir, "pages", n); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(packDir, pack.ManifestName))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Stderr = os.Stderr
		cmd.Env = append(os.Environ(), "OUTPOST_MEMORY_CHILD=1", "OUTPOST_CRASH_DATA="+filepath.Join(dir, "data"), "OUTPOST_CRASH_PACK="+packDir)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("import of %d pages: %v\n%s", n, err, out)
		}
		kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(string(out), "hwm_kib")), 10, 64)
		if err != nil {
			t.Fatalf("child said %q", out)
		}
		return kib << 10, fi.Size()
	}
	small, smallManifest := peak(2000)
	large, largeManifest := peak(12000)
	t.Logf("peak RSS: %d MiB at 2,000 pages (manifest %d KB), %d MiB at 12,000 (manifest %d KB): %.1f bytes per manifest byte",
		small>>20, smallManifest>>10, large>>20, largeManifest>>10, float64(large-small)/float64(largeManifest-smallManifest))
	if small > 64<<20 {
		t.Errorf("importing 2,000 pages peaked at %d MiB, more than 64 MiB", small>>20)
	}
	if grow := large - small; grow > 12*(largeManifest-smallManifest) {
		t.Errorf("6 times the pages took %d MiB more at peak: %.1f bytes per manifest byte, more than 12",
			grow>>20, float64(grow)/float64(largeManifest-smallManifest))
	}
}
