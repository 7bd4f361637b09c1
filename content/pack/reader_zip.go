package pack

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// zipPack reads a zip through its central directory, which Open checks in
// full, so Manifest and Walk only deal with entry data.
type zipPack struct {
	path     string
	f        *os.File
	disk     *disk
	manifest *zip.File   // nil when missing
	missing  error       // what Manifest reports then
	files    []*zip.File // regular files in archive order, without the manifest
}

// budgetReaderAt stops archive/zip from reading, and keeping, an arbitrarily
// large central directory: NewReader reads records until they stop, whatever
// count the archive declares.
type budgetReaderAt struct {
	r     io.ReaderAt
	left  int64
	spent bool
}

func (b *budgetReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if b.left -= int64(len(p)); b.left < 0 {
		b.spent = true
		return 0, errors.New("central directory too large")
	}
	return b.r.ReadAt(p, off)
}

func openZip(p string, f *os.File, size int64) (*zipPack, error) {
	z := &zipPack{path: p, f: f, disk: &disk{f: f}}
	// The slack covers the search for the end record, up to 65 KiB.
	budget := &budgetReaderAt{r: z.disk, left: maxZipDirectory + 128<<10}
	zr, err := zip.NewReader(budget, size)
	switch {
	case budget.spent:
		return nil, invalid(p, "", nil, "the zip central directory is larger than %d MiB; split the course into smaller packs", maxZipDirectory>>20)
	case z.disk.err != nil:
		return nil, fmt.Errorf("open pack %s: %w", display(p), z.disk.err)
	case err != nil && !errors.Is(err, zip.ErrInsecurePath):
		// ErrInsecurePath (GODEBUG=zipinsecurepath=0) comes with a usable
		// reader; admit names the bad entry better.
		return nil, invalid(p, "", err, "is not a readable zip archive; create it again with a standard zip tool")
	}
	if len(zr.File) > maxEntries {
		return nil, invalid(p, "", nil, "the pack has %d entries, more than the limit of %d; split the course into smaller packs", len(zr.File), maxEntries)
	}
	w := newWalker(context.Background(), p)
	for _, zf := range zr.File {
		mode := zf.Mode()
		dir := mode.IsDir() || strings.HasSuffix(zf.Name, "/")
		refuse := ""
		switch {
		case dir && zf.UncompressedSize64 != 0:
			refuse = fmt.Sprintf("is a folder that holds %d bytes of data; build the archive again", zf.UncompressedSize64)
		case dir:
		case modeProblem(mode, "") != "":
			refuse = modeProblem(mode, "")
		case zf.Flags&0x1 != 0:
			refuse = "is encrypted; packs must not be password-protected"
		case zf.Method != zip.Store && zf.Method != zip.Deflate:
			refuse = fmt.Sprintf("uses zip compression method %d, which this appliance cannot read; use deflate or store", zf.Method)
		}
		name, err := w.admit(zf.Name, dir, refuse, int64(min(zf.UncompressedSize64, maxEntrySize+1)))
		switch {
		case err != nil:
			return nil, err
		case name == ManifestName:
			z.manifest = zf
		case name != "":
			z.files = append(z.files, zf)
		}
	}
	z.missing = w.missingManifest()
	budget.left = 1 << 62 // entry data is not part of the directory
	return z, nil
}

func (z *zipPack) Close() error { return z.f.Close() }

func (z *zipPack) open(ctx context.Context, zf *zip.File) (io.Closer, *entryReader, error) {
	z.disk.err = nil
	rc, err := zf.Open()
	switch {
	case err != nil && z.disk.err != nil:
		return nil, nil, fmt.Errorf("read %s from pack %s: %w", display(zf.Name), display(z.path), z.disk.err)
	case err != nil:
		return nil, nil, invalid(z.path, zf.Name, err, "cannot be read; the archive is truncated or corrupt")
	}
	return rc, newEntryReader(ctx, rc, z.disk, z.path, zf.Name, int64(zf.UncompressedSize64)), nil
}

func (z *zipPack) Manifest(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read manifest of pack %s: %w", display(z.path), err)
	}
	if z.manifest == nil {
		return nil, z.missing
	}
	rc, er, err := z.open(ctx, z.manifest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readManifest(er)
}

func (z *zipPack) Walk(ctx context.Context, fn func(name string, size int64, r io.Reader) error) error {
	for _, zf := range z.files {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("walk pack %s: %w", display(z.path), err)
		}
		rc, er, err := z.open(ctx, zf)
		if err != nil {
			return err
		}
		err = fn(zf.Name, er.size, er)
		rc.Close()
		if err != nil {
			return err
		}
		if err := er.finish(false); err != nil {
			return err
		}
	}
	return nil
}
