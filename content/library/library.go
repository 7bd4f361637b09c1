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
	Reserve  int64
	lockPath string
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
	f, err := os.OpenFile(l.lockPath, os.O_CREATE|os.O_RDWR, 0o644)
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

// GCResult says what gc reclaimed.
type GCResult struct {
	Objects      int
	ObjectBytes  int64
	Leftovers    int // temp files and unindexed objects from crashes
	LeftoverByte int64
}

// GC deletes stored objects that no course version references, and what
// interrupted imports left behind.
func (l *Library) GC(ctx context.Context) (*GCResult, error) {
	unlock, err := l.lock(true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var res GCResult
	shas, err := l.Catalog.Unreferenced(ctx)
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	for _, sha := range shas {
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
	return &res, nil
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
