package pack

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

// Reader reads one course pack without trusting it. A Reader is not safe for
// concurrent use.
type Reader interface {
	// Manifest returns the raw bytes of manifest.json (at most
	// MaxManifestSize; larger is an error naming the file).
	Manifest(ctx context.Context) ([]byte, error)
	// Walk calls fn for every regular file in the pack except manifest.json,
	// in archive order (folder: lexical order, as filepath.WalkDir visits
	// it), with its pack path (already checked by CheckPath), the size the
	// archive declares, and a reader of its bytes.
	//
	// r yields exactly the file's bytes: if the archive lies about the size
	// or the data is truncated or corrupt, reading r returns an error
	// wrapping ErrInvalid that names the entry, never silently short data.
	// fn may return without reading r fully. An error from fn stops the walk
	// and is returned as is.
	Walk(ctx context.Context, fn func(name string, size int64, r io.Reader) error) error
	Close() error
}

const (
	// maxEntries and maxNameBytes bound the memory duplicate detection takes.
	maxEntries   = 1_000_000
	maxNameBytes = 64 << 20
	// maxZipDirectory bounds what archive/zip reads, and keeps in memory,
	// before we get to count the entries.
	maxZipDirectory = 64 << 20
	// maxEntrySize rejects absurd sizes before anyone plans disk space
	// around them.
	maxEntrySize = 1 << 40
	// zstdMaxWindow is the largest zstd window we allocate: enough for
	// zstd -21 --ultra; -22 and --long need 128 MiB and are refused.
	zstdMaxWindow = 64 << 20
	// zstdTailCheck is how much of the zstd stream after the end of the tar
	// is decompressed, so a checksum there still gets verified.
	zstdTailCheck = 1 << 20
)

const acceptedFormats = "a folder, .zip, .tar, or .tar.zst/.tzst (tar compressed with zstd)"

// invalid reports a problem with the pack's content, naming the pack and
// the entry (if any) so the author knows what to fix. It wraps ErrInvalid,
// and the decoder's error if there is one.
func invalid(pack, entry string, cause error, format string, args ...any) error {
	where := display(pack)
	if entry != "" {
		where += ": " + display(entry)
	}
	msg := fmt.Sprintf(format, args...)
	if cause != nil {
		return fmt.Errorf("%w %s: %s: %w", ErrInvalid, where, msg, cause)
	}
	return fmt.Errorf("%w %s: %s", ErrInvalid, where, msg)
}

// display keeps hostile names from flooding logs or driving a terminal: it
// truncates them and quotes anything that is not plain printable text.
func display(s string) string {
	const limit = 200
	cut := len(s) > limit
	if cut {
		s = s[:limit]
	}
	if q := strconv.Quote(s); q[1:len(q)-1] != s {
		s = q
	}
	if cut {
		s += "…"
	}
	return s
}

// modeProblem says why an entry of this type is refused, or "". Links could
// point outside the pack and special files can block or read devices.
func modeProblem(mode fs.FileMode, target string) string {
	switch {
	case mode&fs.ModeSymlink != 0:
		if target != "" {
			target = " to " + display(target)
		}
		return "is a symbolic link" + target + "; packs must contain the files themselves, so replace the link with a copy of its target"
	case mode&fs.ModeNamedPipe != 0:
		return "is a named pipe (FIFO), not a regular file; remove it"
	case mode&fs.ModeDevice != 0:
		return "is a device file, not a regular file; remove it"
	case !mode.IsRegular():
		return "is not a regular file; remove it"
	}
	return ""
}

// walker applies the rules that every format shares to each entry.
type walker struct {
	ctx    context.Context
	pack   string
	isDir  map[string]bool // every name seen, to catch duplicates
	bytes  int
	nested string // a manifest.json one folder down, for the missing-manifest hint
}

func newWalker(ctx context.Context, pack string) *walker {
	return &walker{ctx: ctx, pack: pack, isDir: map[string]bool{}}
}

// admit checks one entry as the archive describes it and returns its pack
// path, or "" for entries fn does not see (folders). refuse, if set, says
// why the entry's type is not allowed.
func (w *walker) admit(name string, dir bool, refuse string, size int64) (string, error) {
	if err := w.ctx.Err(); err != nil {
		return "", fmt.Errorf("read pack %s: %w", display(w.pack), err)
	}
	if refuse != "" {
		return "", invalid(w.pack, name, nil, "%s", refuse)
	}
	raw := name
	if dir {
		if name = strings.TrimSuffix(name, "/"); name == "" || name == "." {
			return "", nil // the root, as in "./"
		}
	}
	if err := CheckPath(name); err != nil {
		return "", invalid(w.pack, raw, nil, "%v; rename it", err)
	}
	if !utf8.ValidString(name) {
		return "", invalid(w.pack, raw, nil, "name is not valid UTF-8; rename it or re-create the archive with UTF-8 names")
	}
	// A name that is both a file and a folder, explicitly or as the parent
	// of another entry, means different files to different extractors.
	for i := range len(name) {
		if name[i] == '/' {
			if err := w.record(name[:i], true); err != nil {
				return "", err
			}
		}
	}
	if err := w.record(name, dir); err != nil || dir {
		return "", err
	}
	if size > maxEntrySize {
		return "", invalid(w.pack, name, nil, "is larger than the limit of %d bytes", int64(maxEntrySize))
	}
	if w.nested == "" && path.Base(name) == ManifestName && strings.Count(name, "/") == 1 {
		w.nested = name
	}
	return name, nil
}

func (w *walker) record(name string, dir bool) error {
	wasDir, seen := w.isDir[name]
	switch {
	case !seen:
		if w.bytes += len(name); len(w.isDir) >= maxEntries || w.bytes > maxNameBytes {
			return invalid(w.pack, name, nil, "the pack has more than %d entries or %d bytes of names; split the course into smaller packs", maxEntries, maxNameBytes)
		}
		w.isDir[name] = dir
	case wasDir != dir:
		return invalid(w.pack, name, nil, "is both a file and a folder in the archive")
	case !dir:
		return invalid(w.pack, name, nil, "appears more than once in the archive; keep only one copy")
	}
	return nil
}

// missingManifest also points out the usual mistake of archiving the folder
// that contains the pack instead of the pack's contents.
func (w *walker) missingManifest() error {
	if w.nested != "" {
		return invalid(w.pack, ManifestName, nil, "missing at the root of the pack; found %s instead: build the pack from inside that folder so manifest.json is at the top level", display(w.nested))
	}
	return invalid(w.pack, ManifestName, nil, "missing at the root of the pack")
}

func readManifest(r *entryReader) ([]byte, error) {
	if r.size > MaxManifestSize {
		return nil, invalid(r.pack, ManifestName, nil, "is %d bytes; the limit is %d", r.size, MaxManifestSize)
	}
	return io.ReadAll(r) // bounded: r never yields more than r.size bytes
}

// disk reads the pack file and remembers the first I/O error, so that a
// failing USB stick is reported as such and not as a corrupt pack.
type disk struct {
	f   *os.File
	err error
}

func (d *disk) Read(p []byte) (int, error) {
	n, err := d.f.Read(p)
	d.note(err)
	return n, err
}

func (d *disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset") // a hostile zip's fault, not the disk's
	}
	n, err := d.f.ReadAt(p, off)
	d.note(err)
	return n, err
}

func (d *disk) note(err error) {
	if err != nil && err != io.EOF && d.err == nil {
		d.err = err
	}
}

// entryReader gives fn exactly the declared bytes of one entry, turning
// every disagreement between the declared size and the data into an error.
type entryReader struct {
	ctx        context.Context
	r          io.Reader
	disk       *disk
	pack, name string
	size, left int64
	err        error // sticky; io.EOF once complete
}

func newEntryReader(ctx context.Context, r io.Reader, d *disk, pack, name string, size int64) *entryReader {
	return &entryReader{ctx: ctx, r: r, disk: d, pack: pack, name: name, size: size, left: size}
}

func (e *entryReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if err := e.ctx.Err(); err != nil {
		return 0, fmt.Errorf("read %s from pack %s: %w", display(e.name), display(e.pack), err)
	}
	if e.left == 0 {
		return 0, e.checkEnd()
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF && e.left == 0:
		e.err = io.EOF
	case err == io.EOF:
		e.err = invalid(e.pack, e.name, nil, "the data ends after %d of the %d bytes the archive declares; the archive is truncated or was built wrongly, so copy or build it again", e.size-e.left, e.size)
	default:
		e.err = e.fail(err)
	}
	return n, e.err
}

// checkEnd makes sure nothing follows the declared size: some formats only
// verify their checksum or length when the data runs out.
func (e *entryReader) checkEnd() error {
	var one [1]byte
	for range 100 {
		n, err := e.r.Read(one[:])
		switch {
		case n > 0 || errors.Is(err, zip.ErrFormat): // archive/zip's word for "too long"
			e.err = invalid(e.pack, e.name, nil, "holds more data than the %d bytes the archive declares; build the archive again", e.size)
		case err == io.EOF:
			e.err = io.EOF
		case err != nil:
			e.err = e.fail(err)
		default:
			continue
		}
		return e.err
	}
	e.err = e.fail(io.ErrNoProgress)
	return e.err
}

func (e *entryReader) fail(err error) error {
	if e.disk.err != nil {
		return fmt.Errorf("read %s from pack %s: %w", display(e.name), display(e.pack), e.disk.err)
	}
	if errors.Is(err, zip.ErrChecksum) {
		return invalid(e.pack, e.name, err, "the data does not match its checksum; the archive is corrupt, so copy or build it again")
	}
	if msg := windowProblem(err); msg != "" {
		return invalid(e.pack, "", err, "%s", msg)
	}
	return invalid(e.pack, e.name, err, "the data is truncated or corrupt after %d of the %d bytes the archive declares; copy or build the archive again", e.size-e.left, e.size)
}

// finish returns an error that fn saw but swallowed. For streamed formats it
// first reads what fn left, so cancellation and truncation are noticed
// there too.
func (e *entryReader) finish(drain bool) error {
	if drain && e.err == nil {
		if _, err := io.Copy(io.Discard, e); err != nil {
			return err
		}
	}
	if e.err != nil && e.err != io.EOF {
		return e.err
	}
	return nil
}

// windowProblem explains a zstd stream refused for its window size, which is
// the compressor's settings and not corruption, or returns "".
func windowProblem(err error) string {
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return fmt.Sprintf("was compressed with a zstd window larger than %d MiB; compress it again without --long and at level 21 or below", zstdMaxWindow>>20)
	}
	return ""
}

// Open opens a pack at path: a directory, a .zip, a .tar, or a .tar.zst/.tzst.
// The format comes from the file's first bytes, not its name, because packs
// get renamed on their way to a USB stick.
func Open(path string) (_ Reader, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open pack: %w", err)
	}
	if fi.IsDir() {
		// WalkDir does not descend into a root that is a symlink.
		root, err := filepath.EvalSymlinks(path)
		if err != nil {
			return nil, fmt.Errorf("open pack: %w", err)
		}
		return &dirPack{path: path, root: root}, nil
	}
	if !fi.Mode().IsRegular() { // opening a FIFO would block
		return nil, invalid(path, "", nil, "is neither a folder nor a regular file; accepted formats: %s", acceptedFormats)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open pack: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if fi, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("open pack: %w", err)
	}
	head := make([]byte, 512)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("open pack %s: %w", display(path), err)
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return openZip(path, f, fi.Size())
	case bytes.HasPrefix(head, []byte("\x28\xb5\x2f\xfd")):
		return &tarPack{path: path, f: f, size: fi.Size(), zstd: true}, nil
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return &tarPack{path: path, f: f, size: fi.Size()}, nil
	}
	what := "an unknown format"
	if n == 0 {
		what = "empty"
	}
	// Name the formats people try, so the message says what to change.
	for _, k := range [][2]string{{"\x1f\x8b", "gzip-compressed"}, {"\xfd7zXZ\x00", "xz-compressed"},
		{"BZh", "bzip2-compressed"}, {"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"}, {"Rar!", "a RAR archive"}} {
		if bytes.HasPrefix(head, []byte(k[0])) {
			what = k[1]
		}
	}
	return nil, invalid(path, "", nil, "is %s, not a course pack; accepted formats: %s", what, acceptedFormats)
}

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
