package pack

import (
	"archive/zip"
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
	// Sized to the declared length (r never yields more): growing a slice
	// by doubling to a 16 MiB manifest would allocate twice that.
	b := bytes.NewBuffer(make([]byte, 0, r.size+bytes.MinRead))
	if _, err := b.ReadFrom(r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
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
