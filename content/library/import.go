package library

import (
	"context"
	"errors"
	"fmt"

	"github.com/dustin/go-humanize"

	"outpost/content/catalog"
	"outpost/content/pack"
)

// Progress receives import progress; the CLI turns it into a bar. All
// methods may be called from the importing goroutine only.
type Progress interface {
	Total(bytes int64)
	Add(bytes int64)
}

type noProgress struct{}

func (noProgress) Total(int64) {}
func (noProgress) Add(int64)   {}

// ImportResult says what an import did.
type ImportResult struct {
	ID              string
	Version         int64
	Title           string
	Files           int
	Bytes           int64 // bytes the pack's files occupy
	NewBytes        int64 // bytes actually written (the rest was already stored)
	AlreadyImported bool
	Replaced        int64 // the version that was visible before, or 0
}

// Hooks let tests stop an import at a chosen point; nil in production.
type Hooks struct {
	BeforeCommit func()
}

// Import reads a pack (folder, zip, tar, tar.zst), stores its files, and
// makes the course version visible in one step once everything is stored
// and verified. On any error the catalog is unchanged, and the files this
// import stored are deleted again unless another import or sync pass is
// running (then the next gc reclaims them). A refused pack is reported with
// every problem found: the manifest's, and each file's against it.
func (l *Library) Import(ctx context.Context, path string, prog Progress) (*ImportResult, error) {
	return l.ImportWithHooks(ctx, path, prog, Hooks{})
}

// ImportWithHooks is Import with test hooks.
func (l *Library) ImportWithHooks(ctx context.Context, path string, prog Progress, hooks Hooks) (_ *ImportResult, err error) {
	if prog == nil {
		prog = noProgress{}
	}
	lk, err := l.take(false)
	if err != nil {
		return nil, err
	}
	defer lk.release()

	r, err := pack.Open(path)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	defer r.Close()
	raw, err := r.Manifest(ctx)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	m, err := pack.DecodeManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	if verr := m.Validate(); verr != nil {
		// Nothing is stored for a manifest with problems, but the files are
		// still checked against what it says, so one run tells the author
		// everything to fix.
		probs := &problems{}
		var ve *pack.ValidationError
		if errors.As(verr, &ve) {
			probs.list = append(probs.list, ve.Problems...)
		} else {
			return nil, fmt.Errorf("import %s: %w", path, verr)
		}
		if err := l.walk(ctx, r, m, nil, probs, nil); err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		return nil, fmt.Errorf("import %s: %w", path, probs.err())
	}
	res := &ImportResult{ID: m.ID, Version: m.Version, Title: m.Title, Files: len(m.Files)}
	for _, f := range m.Files {
		res.Bytes += f.Size
	}
	if exists, err := l.Catalog.Existing(ctx, m.ID, m.Version, catalog.ManifestSum(raw)); err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	} else if exists {
		// The same pack again: nothing to do unless verify quarantined some
		// of its files, in which case this import is the repair.
		missing, err := l.Catalog.Missing(ctx)
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		if len(missing[m.ID]) == 0 {
			res.AlreadyImported = true
			return res, nil
		}
	}
	if res.Replaced, err = l.Catalog.CurrentVersion(ctx, m.ID); err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	if res.Replaced > m.Version {
		// Refused before a byte is copied, not by the commit at the end.
		return nil, fmt.Errorf("import %s: course %s version %d is older than the installed version %d; remove the course first to downgrade", path, m.ID, m.Version, res.Replaced)
	}
	need, err := l.newBytes(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	if err := l.checkSpace(ctx, path, need); err != nil {
		return nil, err
	}
	prog.Total(need)

	st := &storing{batch: l.Store.NewBatch(), prog: prog}
	defer func() {
		if err != nil {
			l.discard(context.WithoutCancel(ctx), lk, st)
		}
	}()
	probs := &problems{}
	if err := l.walk(ctx, r, m, st, probs, &res.NewBytes); err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	if len(probs.list) > 0 {
		return nil, fmt.Errorf("import %s: %w", path, probs.err())
	}
	// Files first, durable and indexed; only then the catalog, so a
	// visible course never references a file that is not safely stored.
	if err := st.batch.Commit(ctx); err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	texts, doneTexts, err := l.gatherTexts(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	defer doneTexts()
	if hooks.BeforeCommit != nil {
		hooks.BeforeCommit()
	}
	v, err := l.Catalog.Commit(ctx, m, raw, texts)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	res.AlreadyImported = v.Existed
	if v.Existed {
		res.Replaced = 0
	}
	return res, nil
}

// newBytes is what the pack adds to the store: files not already held,
// each distinct content counted once.
func (l *Library) newBytes(ctx context.Context, m *pack.Manifest) (int64, error) {
	var need int64
	counted := map[string]bool{}
	for _, f := range m.Files {
		if counted[f.SHA256] {
			continue
		}
		counted[f.SHA256] = true
		have, err := l.Store.Has(ctx, f.SHA256)
		if err != nil {
			return 0, err
		}
		if !have {
			need += f.Size
		}
	}
	return need, nil
}

func (l *Library) checkSpace(ctx context.Context, path string, need int64) error {
	free, err := l.Store.FreeBytes()
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	if need > free-l.Reserve {
		return fmt.Errorf("import %s: %w: the pack needs %s, the disk has %s free (%s kept in reserve); run `outpost content gc` or remove a course with `outpost content rm`",
			path, ErrNoSpace, humanize.IBytes(uint64(need)), humanize.IBytes(uint64(max(free, 0))), humanize.IBytes(uint64(l.Reserve)))
	}
	if l.Quota > 0 {
		used, err := l.Store.UsedBytes(ctx)
		if err != nil {
			return fmt.Errorf("import %s: %w", path, err)
		}
		if used+need > l.Quota {
			return fmt.Errorf("import %s: %w: the pack needs %s, the content quota of %s has %s left; raise the quota or remove a course with `outpost content rm`",
				path, ErrNoSpace, humanize.IBytes(uint64(need)), humanize.IBytes(uint64(l.Quota)), humanize.IBytes(uint64(max(l.Quota-used, 0))))
		}
	}
	return nil
}
