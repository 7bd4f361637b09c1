// Package library is a node's course collection as operators see it: import
// a pack, export it again, verify, collect garbage, report usage. It composes
// the pack readers, the block store and the catalog, and owns the rule that
// a course appears only once every one of its files is stored and verified.
package library

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"outpost/content/blockstore"
	"outpost/content/catalog"
)

// Library is the set of courses on one node.
type Library struct {
	Store   *blockstore.Store
	Catalog *catalog.Catalog
	// Quota caps the bytes of stored objects; 0 means no quota.
	Quota int64
	// Reserve is free space an import must leave on the disk, so the
	// database and records never hit a full disk because of a course.
	Reserve int64
	// PartialDir holds files being assembled for pending work, named
	// SHA256.part (a sync pass's partials); gc deletes those no pending
	// work needs. Empty: none.
	PartialDir string
	// Clock is the time gc judges pending work's age by (nil: time.Now).
	Clock    func() time.Time
	lockPath string
}

// PendingTTL is how long gc keeps pending work whose owner stopped renewing
// it: a sync pass renews its next versions' files every time the hub
// still offers them, so only work the hub withdrew, or a box that stopped
// syncing a month ago, loses them. A month covers the longest link
// outages the deployments expect; what it keeps is at most the size of the
// next versions, which the box needed room for anyway.
const PendingTTL = 30 * 24 * time.Hour

func (l *Library) now() time.Time {
	if l.Clock != nil {
		return l.Clock()
	}
	return time.Now()
}

// KeepPending records that owner's work in progress needs these files
// (SHA-256), replacing what owner said before, so gc keeps them while they
// are stored for a version not yet installed, and keeps their partials.
// nil forgets owner's work.
func (l *Library) KeepPending(ctx context.Context, owner string, shas []string) error {
	return l.Catalog.SetPending(ctx, owner, shas, l.now())
}

// New returns a library whose coordination lock lives in dataDir.
func New(dataDir string, store *blockstore.Store, cat *catalog.Catalog) *Library {
	return &Library{
		Store:    store,
		Catalog:  cat,
		Reserve:  64 << 20,
		lockPath: filepath.Join(dataDir, "content.lock"),
	}
}

// ErrBusy is returned when gc cannot run because an import is in progress
// (or the other way round).
var ErrBusy = errors.New("another content operation is running")

// ErrNoSpace is wrapped when a pack does not fit in free space or quota.
var ErrNoSpace = errors.New("not enough space")

// lock takes the content lock. Imports share it; gc needs it alone, because
// gc deletes stored objects no course references yet, which is exactly what
// an import's files are until its commit.
func (l *Library) lock(exclusive bool) (func(), error) {
	h, err := l.take(exclusive)
	if err != nil {
		return nil, err
	}
	return h.release, nil
}

// heldLock is a taken content lock.
type heldLock struct{ f *os.File }

func (h *heldLock) release() { h.f.Close() }

// tryExclusive turns a shared hold into an exclusive one if nobody else
// holds the lock, without waiting. A failed attempt may lose the shared
// hold (flock converts by unlocking first), so it is for the end of an
// operation only: an import refused half-way uses it to delete what it
// stored, which is safe only while no other import or sync pass could have
// come to rely on the same files.
func (h *heldLock) tryExclusive() bool {
	return unix.Flock(int(h.f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

func (l *Library) take(exclusive bool) (*heldLock, error) {
	f, err := os.OpenFile(l.lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("take content lock: %w", err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			if exclusive {
				return nil, fmt.Errorf("%w: an import is in progress; run gc again when it has finished", ErrBusy)
			}
			return nil, fmt.Errorf("%w: garbage collection is in progress; import again in a moment", ErrBusy)
		}
		return nil, fmt.Errorf("take content lock: %w", err)
	}
	return &heldLock{f: f}, nil
}

// GCResult says what gc reclaimed, and what it kept for pending work.
type GCResult struct {
	Objects      int
	ObjectBytes  int64
	Leftovers    int // temp files and unindexed objects from crashes, abandoned partials
	LeftoverByte int64
	Pending      int // files kept for work in progress (stored, or partial)
	PendingBytes int64
}

// GC deletes stored objects that no course version references, and what
// interrupted imports left behind. It keeps what pending work (KeepPending)
// needs, stored or partial, unless its owner has not renewed it for
// PendingTTL.
func (l *Library) GC(ctx context.Context) (*GCResult, error) {
	unlock, err := l.lock(true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var res GCResult
	if _, err := l.Catalog.ExpirePending(ctx, l.now().Add(-PendingTTL)); err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	pending, err := l.Catalog.Pending(ctx)
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	shas, err := l.Catalog.Unreferenced(ctx)
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	for _, sha := range shas {
		if pending[sha] {
			size, _, err := l.Store.Stat(ctx, sha)
			if err != nil && !errors.Is(err, blockstore.ErrNotFound) {
				return &res, fmt.Errorf("gc: %w", err)
			}
			res.Pending++
			res.PendingBytes += size
			continue
		}
		n, err := l.Store.Remove(ctx, sha)
		if err != nil {
			return &res, fmt.Errorf("gc: %w", err)
		}
		res.Objects++
		res.ObjectBytes += n
	}
	res.Leftovers, res.LeftoverByte, err = l.Store.SweepDisk(ctx)
	if err != nil {
		return &res, fmt.Errorf("gc: %w", err)
	}
	if err := l.sweepPartials(pending, &res); err != nil {
		return &res, fmt.Errorf("gc: %w", err)
	}
	return &res, nil
}

// sweepPartials deletes partial files no pending work needs (abandoned, or
// for a version the upstream has since replaced). Only SHA.part files are
// considered: the directory is the sync pass's, and anything else in it is
// not gc's to judge.
func (l *Library) sweepPartials(pending map[string]bool, res *GCResult) error {
	if l.PartialDir == "" {
		return nil
	}
	ents, err := os.ReadDir(l.PartialDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sweep partial files: %w", err)
	}
	for _, e := range ents {
		sha, ok := strings.CutSuffix(e.Name(), ".part")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		// A partial is sparse until its blocks arrive: count what it
		// occupies on disk, not its final size.
		var size int64
		if info, err := e.Info(); err == nil {
			size = info.Size()
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				size = st.Blocks * 512
			}
		}
		if pending[sha] {
			res.Pending++
			res.PendingBytes += size
			continue
		}
		if err := os.Remove(filepath.Join(l.PartialDir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sweep partial files: %w", err)
		}
		res.Leftovers++
		res.LeftoverByte += size
	}
	return nil
}

// Usage is what `content du` reports.
type Usage struct {
	Courses     []CourseUsage
	StoredBytes int64 // all indexed objects, deduplicated
	FreeBytes   int64
	Quota       int64
}

// CourseUsage is one course's share.
type CourseUsage struct {
	ID, Title string
	Version   int64
	Bytes     int64 // sum of its files; shared files count in every course
}

// Usage reports space by course, total, free and quota.
func (l *Library) Usage(ctx context.Context) (*Usage, error) {
	cs, err := l.Catalog.Courses(ctx, catalog.Filter{Limit: 1000})
	if err != nil {
		return nil, err
	}
	u := &Usage{Quota: l.Quota}
	for _, c := range cs {
		u.Courses = append(u.Courses, CourseUsage{ID: c.ID, Title: c.Title, Version: c.Version, Bytes: c.Bytes})
	}
	if u.StoredBytes, err = l.Store.UsedBytes(ctx); err != nil {
		return nil, err
	}
	if u.FreeBytes, err = l.Store.FreeBytes(); err != nil {
		return nil, err
	}
	return u, nil
}

// VerifyReport is what `content verify` found.
type VerifyReport struct {
	Checked  int
	Bytes    int64
	Corrupt  []string            // objects quarantined by this run
	Missing  map[string][]string // course id → pack paths no longer in the store
	Problems int
}

// Clean reports whether nothing is wrong.
func (r *VerifyReport) Clean() bool { return len(r.Corrupt) == 0 && len(r.Missing) == 0 }

// Verify re-hashes every stored object, quarantines the corrupt ones, and
// lists the courses that now miss files.
func (l *Library) Verify(ctx context.Context, total func(int64), progress func(int64)) (*VerifyReport, error) {
	objs, err := l.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	if total != nil {
		var sum int64
		for _, o := range objs {
			sum += o.Size
		}
		total(sum)
	}
	rep := &VerifyReport{}
	for _, o := range objs {
		err := l.Store.Verify(ctx, o, progress)
		rep.Checked++
		rep.Bytes += o.Size
		if err == nil {
			continue
		}
		if !errors.Is(err, blockstore.ErrMismatch) && !errors.Is(err, blockstore.ErrNotFound) {
			return rep, fmt.Errorf("verify: %w", err)
		}
		if qerr := l.Store.Quarantine(ctx, o.SHA256, err.Error()); qerr != nil {
			return rep, fmt.Errorf("verify: %w", qerr)
		}
		rep.Corrupt = append(rep.Corrupt, o.SHA256)
	}
	if rep.Missing, err = l.Catalog.Missing(ctx); err != nil {
		return rep, err
	}
	rep.Problems = len(rep.Corrupt)
	for _, ps := range rep.Missing {
		rep.Problems += len(ps)
	}
	return rep, nil
}
