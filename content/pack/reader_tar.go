package pack

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// tarPack streams a tar or zstd-compressed tar from the start on every pass,
// so memory stays bounded whatever the archive holds.
type tarPack struct {
	path string
	f    *os.File
	size int64
	zstd bool
}

func (t *tarPack) Close() error { return t.f.Close() }

var errFound = errors.New("found")

func (t *tarPack) Manifest(ctx context.Context) ([]byte, error) {
	var data []byte
	w := newWalker(ctx, t.path)
	err := t.scan(w, func(name string, size int64, r *entryReader) (err error) {
		if name != ManifestName {
			return nil
		}
		if data, err = readManifest(r); err != nil {
			return err
		}
		return errFound
	})
	switch {
	case err == errFound:
		return data, nil
	case err != nil:
		return nil, err
	}
	return nil, w.missingManifest()
}

func (t *tarPack) Walk(ctx context.Context, fn func(name string, size int64, r io.Reader) error) error {
	return t.scan(newWalker(ctx, t.path), func(name string, size int64, r *entryReader) error {
		if name == ManifestName {
			return nil
		}
		return fn(name, size, r)
	})
}

// scan admits every entry and calls fn for each regular file, the manifest
// included.
func (t *tarPack) scan(w *walker, fn func(name string, size int64, r *entryReader) error) error {
	dk := &disk{f: t.f}
	var in io.Reader = bufio.NewReaderSize(io.NewSectionReader(dk, 0, t.size), 64<<10)
	if t.zstd {
		dec, err := zstd.NewReader(in, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(zstdMaxWindow))
		if err != nil {
			return fmt.Errorf("read pack %s: %w", display(t.path), err)
		}
		defer dec.Close()
		in = dec
	}
	corrupt := func(where string, err error) error {
		if dk.err != nil {
			return fmt.Errorf("read pack %s: %w", display(t.path), dk.err)
		}
		if msg := windowProblem(err); msg != "" {
			return invalid(t.path, "", err, "%s", msg)
		}
		return invalid(t.path, "", err, "%s: the archive is truncated or corrupt; copy or build it again", where)
	}
	tr := tar.NewReader(in)
	where := "at the start of the archive"
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		// ErrInsecurePath (GODEBUG=tarinsecurepath=0) comes with a usable
		// header; admit names the bad entry better.
		if err != nil && (hdr == nil || !errors.Is(err, tar.ErrInsecurePath)) {
			return corrupt(where, err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // pax metadata, as git archive writes
		}
		refuse := tarRefusal(hdr)
		name, err := w.admit(strings.TrimPrefix(hdr.Name, "./"), hdr.Typeflag == tar.TypeDir, refuse, hdr.Size)
		if err != nil {
			return err
		}
		where = "after entry " + display(hdr.Name)
		if name == "" {
			continue
		}
		er := newEntryReader(w.ctx, tr, dk, t.path, name, hdr.Size)
		if err := fn(name, hdr.Size, er); err != nil {
			return err
		}
		if err := er.finish(true); err != nil {
			return err
		}
	}
	if t.zstd {
		if _, err := io.Copy(io.Discard, io.LimitReader(in, zstdTailCheck)); err != nil {
			return corrupt("after the last entry", err)
		}
	}
	return nil
}

// tarRefusal says why a tar entry's type is not allowed, or "".
func tarRefusal(hdr *tar.Header) string {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir:
	case tar.TypeSymlink:
		return modeProblem(fs.ModeSymlink, hdr.Linkname)
	case tar.TypeLink:
		return fmt.Sprintf("is a hard link to %s; packs must contain plain files, so archive with --hard-dereference", display(hdr.Linkname))
	case tar.TypeChar, tar.TypeBlock:
		return modeProblem(fs.ModeDevice, "")
	case tar.TypeFifo:
		return modeProblem(fs.ModeNamedPipe, "")
	case tar.TypeGNUSparse:
		return "is a sparse file; archive without --sparse (-S)"
	default:
		return fmt.Sprintf("has tar entry type %q, which packs may not use; only regular files and folders are allowed", hdr.Typeflag)
	}
	for k := range hdr.PAXRecords {
		// archive/tar would expand the holes: a tiny archive could make us
		// read terabytes of zeros.
		if strings.HasPrefix(k, "GNU.sparse.") {
			return "is a sparse file; archive without --sparse (-S)"
		}
	}
	return ""
}
