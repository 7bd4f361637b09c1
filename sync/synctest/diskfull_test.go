package synctest

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"outpost/sync/upstream"
)

// smallDisk mounts a tmpfs of size bytes on a new directory and returns it:
// a real filesystem that really runs out of space, so the box's ENOSPC
// paths run, not a raised reserve standing in for them. Mounting needs
// root (CAP_SYS_ADMIN); `make test` runs as root on a fresh machine and in
// CI, so anywhere else the test says why it cannot run.
func smallDisk(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+strconv.FormatInt(size, 10)+",mode=0700"); err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("mounting a %d-byte tmpfs needs root (CAP_SYS_ADMIN): %v; run `make test` as root", size, err)
		}
		t.Fatalf("mount a %d-byte tmpfs on %s: %v", size, dir, err)
	}
	// Registered after TempDir, so it runs before TempDir's removal; the
	// box's own cleanup (registered later) closes its files first.
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// resize grows or shrinks a tmpfs in place, as freeing space on the box's
// disk would.
func resize(t *testing.T, dir string, size int64) {
	t.Helper()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV, "size="+strconv.FormatInt(size, 10)); err != nil {
		t.Fatalf("resize tmpfs %s to %d bytes: %v", dir, size, err)
	}
}

// fill takes every free byte of dir's filesystem with one file (another
// writer on the box: a log, a USB import), returning its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Errorf("fill %s: %v", dir, err)
		return path
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	// Bounded: a tmpfs of at most a few tens of MiB fills in a few hundred
	// chunks; the loop stops at ENOSPC, then writes single pages to take
	// the tail.
	for _, n := range []int{len(chunk), 4096} {
		for range 4096 {
			if _, err := f.Write(chunk[:n]); err != nil {
				if !errors.Is(err, unix.ENOSPC) {
					t.Errorf("fill %s: %v", dir, err)
				}
				break
			}
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Bavail*uint64(st.Bsize) >= 64<<10 {
		t.Errorf("fill %s: %d bytes still free", dir, st.Bavail*uint64(st.Bsize))
	}
	return path
}

// TestDiskFullPauses syncs onto a real small filesystem. A course that
// cannot fit pauses the pass before it fetches anything; a disk that fills
// up under the pass (another writer takes the space) pauses it at the
// write that fails, keeping what was fetched. Either way no version
// becomes visible without its files, the status says what to do, and once
// space is freed the next pass finishes without fetching a verified block
// twice.
func TestDiskFullPauses(t *testing.T) {
	h := startHub(t)
	// 4 MiB of incompressible video in 128 KiB blocks and a few pages.
	files := Course(8, 2, 2<<20, 0, 0, 4)
	publish(t, h, "big", 1, files, "science")

	t.Run("does not fit", func(t *testing.T) {
		dir := smallDisk(t, 6<<20)
		b := startBoxIn(t, h, dir, nil)
		b.Node.Library.Reserve = 0
		err := b.Client.Pass(testCtx(t))
		assertPaused(t, b, err)
		resize(t, dir, 32<<20)
		if err := b.Client.Pass(testCtx(t)); err != nil {
			t.Fatalf("pass after the disk grew: %v", err)
		}
		assertHolds(t, b, "big", 1, files)
	})

	// Blocks the box fetches for the course: 2×16 of video, one per page.
	const blocks = 2*16 + 4
	for _, tc := range []struct {
		name  string
		after int64  // fetched blocks stored before the disk fills
		want  string // which write met the full disk
	}{
		{"fills while fetching", 5, "while writing"},
		{"fills before storing", blocks, "while storing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := smallDisk(t, 32<<20)
			var (
				filler  atomic.Value // string: the filler's path, once written
				fetched fetchCounter
				stored  atomic.Int64
			)
			hooks := fetched.hooks(func(_ []byte, source string) {
				// Another writer takes the rest of the disk: the next
				// write of the box's fails with ENOSPC.
				if source == "fetched" && stored.Add(1) == tc.after {
					filler.Store(fill(t, dir))
				}
			})
			b := startBoxIn(t, h, dir, hooks)
			b.Node.Library.Reserve = 0
			err := b.Client.Pass(testCtx(t))
			if filler.Load() == nil {
				t.Fatalf("the disk was never filled (pass: %v)", err)
			}
			assertPaused(t, b, err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("the pause came from another step than the one that met the full disk: %v; want %q", err, tc.want)
			}
			if err := os.Remove(filler.Load().(string)); err != nil {
				t.Fatal(err)
			}
			if err := b.Client.Pass(testCtx(t)); err != nil {
				t.Fatalf("pass after space was freed: %v", err)
			}
			assertHolds(t, b, "big", 1, files)
			for hash, n := range fetched.counts() {
				if n != 1 {
					t.Errorf("block %s fetched and verified %d times", hash, n)
				}
			}
		})
	}
}

func startBoxIn(t *testing.T, h *Hub, dir string, hooks *upstream.Hooks) *Box {
	t.Helper()
	tok, _, err := h.Hub.CreateToken(testCtx(t), "school-a", []string{"science"}, 3600e9)
	if err != nil {
		t.Fatal(err)
	}
	b, err := StartBox(testCtx(t), filepath.Join(dir, "box"), h.URL(), tok, hooks, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// assertPaused checks a pass that met a full disk: paused, not failed; the
// status tells a person what to do; nothing became visible.
func assertPaused(t *testing.T, b *Box, err error) {
	t.Helper()
	t.Logf("pass on a full disk: %v", err)
	if !errors.Is(err, upstream.ErrPaused) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("pass on a full disk: %v; want a pause that says the disk is full", err)
	}
	st := b.Client.Status()
	if st.State != upstream.StatePaused || !strings.Contains(st.Message, "gc") {
		t.Fatalf("status on a full disk: %+v; want paused, saying to run gc", st)
	}
	if v, _ := b.Node.Catalog.CurrentVersion(testCtx(t), "big"); v != 0 {
		t.Fatal("a course became visible without its files")
	}
}
