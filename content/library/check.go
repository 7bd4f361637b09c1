package library

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"outpost/content/blockstore"
	"outpost/content/pack"
)

// maxProblems bounds the problems one import gathers: a pack of a million
// mislabelled files must not make the importer hold a million messages.
// The message shows the first 20; the rest are counted.
const maxProblems = 1000

// problems gathers what is wrong with a pack, in the order found.
type problems struct {
	list    []*pack.FieldError
	omitted int
}

func (p *problems) add(file, field, msg string) {
	if len(p.list) >= maxProblems {
		p.omitted++
		return
	}
	p.list = append(p.list, &pack.FieldError{File: file, Field: field, Msg: msg})
}

func (p *problems) err() error {
	ve := &pack.ValidationError{Problems: slices.Clone(p.list)}
	if p.omitted > 0 {
		ve.Problems = append(ve.Problems, &pack.FieldError{File: pack.ManifestName, Msg: fmt.Sprintf("and %d more problems not listed here", p.omitted)})
	}
	return ve
}

// storing is what an import has put into the store so far.
type storing struct {
	batch *blockstore.Batch
	prog  Progress
	// added are the objects this import added to the store, so a refused
	// import can delete them again (32 bytes each: 1.6 MB for 50,000).
	added [][sha256.Size]byte
}

// walk reads every file of the pack and checks it against the manifest:
// listed, of the listed size, of the listed SHA-256; then whether every
// listed file was there. Problems are gathered in probs rather than
// stopping the walk. While st is set and nothing is wrong yet, files are
// stored as they are checked; from the first problem on (or with st nil)
// they are only hashed, since the import will be refused anyway. An error
// is returned only for what stops reading: a damaged archive (then added to
// the problems found before it, which are returned with it), a failing
// disk, a cancelled context.
func (l *Library) walk(ctx context.Context, r pack.Reader, m *pack.Manifest, st *storing, probs *problems, newBytes *int64) error {
	seen := make(map[string]bool, len(m.Files))
	walkErr := r.Walk(ctx, func(name string, size int64, rd io.Reader) error {
		f, ok := m.Files[name]
		if !ok {
			probs.add(name, "", "is in the pack but not listed in manifest.json \"files\"; list it or remove it")
			return nil
		}
		seen[name] = true
		field := fmt.Sprintf("files[%q]", name)
		if size != f.Size {
			probs.add(name, field+".size", fmt.Sprintf("the archive holds %d bytes but the manifest says %d", size, f.Size))
			return nil
		}
		if st == nil || len(probs.list) > 0 {
			return checkFile(rd, name, f, probs)
		}
		obj, isNew, err := st.batch.Put(ctx, rd, blockstore.Expect{SHA256: f.SHA256, Size: f.Size}, st.prog.Add)
		if errors.Is(err, blockstore.ErrMismatch) {
			probs.add(name, field, fmt.Sprintf("content does not match the manifest (%v); the pack is damaged or the manifest is stale", err))
			return nil
		}
		if err != nil {
			return fmt.Errorf("store %s: %w", name, err)
		}
		if isNew {
			*newBytes += obj.Size
			var sum [sha256.Size]byte
			if _, err := hex.Decode(sum[:], []byte(obj.SHA256)); err == nil {
				st.added = append(st.added, sum)
			}
		}
		return nil
	})
	if walkErr != nil {
		if !errors.Is(walkErr, pack.ErrInvalid) || len(probs.list) == 0 {
			return walkErr
		}
		// A damaged archive ends the walk; report it with what came before.
		msg := walkErr.Error()
		if i := strings.Index(msg, pack.ErrInvalid.Error()+" "); i >= 0 {
			msg = msg[i+len(pack.ErrInvalid.Error())+1:]
		}
		probs.add(pack.ManifestName, "", msg)
		return nil
	}
	var absent []string
	for name := range m.Files {
		if !seen[name] {
			absent = append(absent, name)
		}
	}
	slices.Sort(absent)
	for _, name := range absent {
		probs.add(pack.ManifestName, fmt.Sprintf("files[%q]", name), "is listed but absent from the pack")
	}
	return nil
}

// checkFile hashes a file without storing it and records a mismatch.
func checkFile(rd io.Reader, name string, f pack.File, probs *problems) error {
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(rd, f.Size+1))
	if err != nil {
		return fmt.Errorf("check %s: %w", name, err)
	}
	field := fmt.Sprintf("files[%q]", name)
	switch sum := hex.EncodeToString(h.Sum(nil)); {
	case n != f.Size:
		probs.add(name, field+".size", fmt.Sprintf("the file holds %d bytes but the manifest says %d", n, f.Size))
	case sum != f.SHA256:
		probs.add(name, field, fmt.Sprintf("content does not match the manifest (sha256 is %s, expected %s); the pack is damaged or the manifest is stale", sum, f.SHA256))
	}
	return nil
}

// discard deletes what a refused import stored: its uncommitted files, and
// the objects it added that no course references. Deleting is safe only
// while nothing else that writes the store runs, since another import or
// a sync pass may have found one of these objects stored and counted on
// it; so it happens only if the content lock can be had alone, and is
// otherwise left to gc. A file that pending sync work needs (an
// interrupted pass's next version) is kept: the batch is committed, which
// indexes its verified files, and only those no version and no pending work
// references are removed. Errors are not reported: the refusal is what the
// user needs to hear, and gc reclaims anything left.
func (l *Library) discard(ctx context.Context, lk *heldLock, st *storing) {
	if !lk.tryExclusive() {
		return
	}
	pending, err := l.Catalog.Pending(ctx)
	if err != nil {
		return
	}
	keep := false
	for _, sum := range st.added {
		keep = keep || pending[hex.EncodeToString(sum[:])]
	}
	if keep {
		if st.batch.Commit(ctx) != nil {
			return
		}
	} else {
		st.batch.Discard(ctx)
	}
	for _, sum := range st.added {
		sha := hex.EncodeToString(sum[:])
		if used, err := l.Catalog.Referenced(ctx, sha); err != nil || used {
			continue
		}
		l.Store.Remove(ctx, sha)
	}
}
