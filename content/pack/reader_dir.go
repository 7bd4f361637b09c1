package pack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// dirPack is a pack unpacked in a folder.
type dirPack struct {
	path string // as given, for messages
	root string // symlinks resolved
}

func (d *dirPack) Close() error { return nil }

func (d *dirPack) Manifest(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read manifest of pack %s: %w", display(d.path), err)
	}
	p := filepath.Join(d.root, ManifestName)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		w := newWalker(ctx, d.path)
		entries, _ := os.ReadDir(d.root) // only for the hint
		for _, e := range entries {
			fi, err := os.Lstat(filepath.Join(d.root, e.Name(), ManifestName))
			if w.nested == "" && e.IsDir() && err == nil && fi.Mode().IsRegular() {
				w.nested = e.Name() + "/" + ManifestName
			}
		}
		return nil, w.missingManifest()
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest of pack %s: %w", display(d.path), err)
	}
	if msg := d.refusal(p, fi.Mode()); msg != "" {
		return nil, invalid(d.path, ManifestName, nil, "%s", msg)
	}
	f, er, err := d.open(ctx, ManifestName, p, fi)
	if err != nil && !errors.Is(err, ErrInvalid) {
		err = fmt.Errorf("read manifest of pack %s: %w", display(d.path), err)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readManifest(er)
}

func (d *dirPack) refusal(p string, mode fs.FileMode) string {
	target := ""
	if mode&fs.ModeSymlink != 0 {
		target, _ = os.Readlink(p)
	}
	return modeProblem(mode, target)
}

// open opens the regular file that Lstat described as fi, refusing it if it
// was swapped for something else, such as a symlink, in between.
func (d *dirPack) open(ctx context.Context, name, p string, fi fs.FileInfo) (*os.File, *entryReader, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	now, err := f.Stat()
	if err == nil && (!os.SameFile(fi, now) || !now.Mode().IsRegular()) {
		err = invalid(d.path, name, nil, "changed while the pack was being read; try again")
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	dk := &disk{f: f}
	return f, newEntryReader(ctx, dk, dk, d.path, name, now.Size()), nil
}

func (d *dirPack) Walk(ctx context.Context, fn func(name string, size int64, r io.Reader) error) error {
	w := newWalker(ctx, d.path)
	ioErr := func(err error) error { return fmt.Errorf("walk pack %s: %w", display(d.path), err) }
	var fnErr error // kept apart so that fn returning fs.SkipAll is not taken as WalkDir's
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return ioErr(err)
		}
		if p == d.root {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return ioErr(err)
		}
		refuse := ""
		if !e.IsDir() {
			refuse = d.refusal(p, e.Type())
		}
		name, err := w.admit(filepath.ToSlash(rel), e.IsDir(), refuse, 0)
		if err != nil || name == "" || name == ManifestName {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return ioErr(err)
		}
		f, er, err := d.open(ctx, name, p, fi)
		if err != nil && !errors.Is(err, ErrInvalid) {
			return ioErr(err)
		}
		if err != nil {
			return err
		}
		defer f.Close()
		if fnErr = fn(name, er.size, er); fnErr != nil {
			return fs.SkipAll
		}
		return er.finish(false)
	})
	if fnErr != nil {
		return fnErr
	}
	return err
}
