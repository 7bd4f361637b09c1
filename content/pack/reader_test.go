package pack

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// ent is one entry of a test archive. For tar, typ is the type flag; for
// zip and folders, mode carries the type bits.
type ent struct {
	name string
	data string
	typ  byte
	link string
	mode fs.FileMode
}

func testManifest(files map[string]string) *Manifest {
	m := &Manifest{
		Format: FormatVersion, ID: "algebra-1", Version: 3, Title: "Algebra I", Language: "en",
		Lessons: []Lesson{{ID: "l1", Title: "Intro", Items: []Item{{ID: "i1", Kind: KindVideo, Title: "Welcome", File: "lessons/a.txt"}}}},
		Files:   map[string]File{},
	}
	for name, data := range files {
		m.Files[name] = File{SHA256: HashBytes(sha256Sum(data)), Size: int64(len(data))}
	}
	return m
}

func sha256Sum(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func manifestEnt(t testing.TB) ent {
	b, err := testManifest(map[string]string{"lessons/a.txt": "hello"}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return ent{name: ManifestName, data: string(b)}
}

func tarBytes(t testing.TB, ents ...ent) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, Format: tar.FormatPAX}
		if e.typ == tar.TypeGNUSparse {
			h.Format = tar.FormatGNU
		}
		if e.typ == tar.TypeXGlobalHeader {
			h = &tar.Header{Typeflag: e.typ, PAXRecords: map[string]string{"comment": e.data}}
		}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if _, err := io.WriteString(tw, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zipBytes(t testing.TB, ents ...ent) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(e.mode | 0o644)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t testing.TB, p string, data []byte) string {
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeDir(t testing.TB, root string, ents ...ent) string {
	for _, e := range ents {
		p := filepath.Join(root, filepath.FromSlash(e.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if e.mode&fs.ModeSymlink != 0 {
			if err := os.Symlink(e.link, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		writeFile(t, p, []byte(e.data))
	}
	return root
}

// builders make a pack of each format from the same entries.
var builders = []struct {
	format string
	build  func(t testing.TB, dir string, ents ...ent) string
}{
	{"folder", func(t testing.TB, dir string, ents ...ent) string {
		return writeDir(t, filepath.Join(dir, "pack"), ents...)
	}},
	{"zip", func(t testing.TB, dir string, ents ...ent) string {
		return writeFile(t, filepath.Join(dir, "pack.zip"), zipBytes(t, ents...))
	}},
	{"tar", func(t testing.TB, dir string, ents ...ent) string {
		return writeFile(t, filepath.Join(dir, "pack.tar"), tarBytes(t, ents...))
	}},
	{"tar.zst", func(t testing.TB, dir string, ents ...ent) string {
		return writeFile(t, filepath.Join(dir, "pack.tar.zst"), zstdBytes(t, tarBytes(t, ents...)))
	}},
}

type walked struct {
	names []string
	data  map[string]string
}

// readPack opens, reads the manifest and walks a pack reading every file,
// returning the first error from any step.
func readPack(ctx context.Context, p string) ([]byte, walked, error) {
	w := walked{data: map[string]string{}}
	r, err := Open(p)
	if err != nil {
		return nil, w, err
	}
	defer r.Close()
	m, err := r.Manifest(ctx)
	if err != nil {
		return nil, w, err
	}
	err = r.Walk(ctx, func(name string, size int64, rd io.Reader) error {
		b, err := io.ReadAll(rd)
		if err != nil {
			return err
		}
		if int64(len(b)) != size {
			return fmt.Errorf("%s: read %d bytes, declared %d", name, len(b), size)
		}
		w.names = append(w.names, name)
		w.data[name] = string(b)
		return nil
	})
	return m, w, err
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{1}).Read(b)
	return string(b)
}

func TestReadHappyPath(t *testing.T) {
	man := manifestEnt(t)
	files := []ent{
		{name: "lessons/a.txt", data: "hello"},
		{name: "lessons/empty.txt"},
		{name: "lessons/sub/big.bin", data: randomString(300 << 10)},
		{name: "z.txt", data: strings.Repeat("compressible ", 10000)},
	}
	for _, b := range builders {
		t.Run(b.format, func(t *testing.T) {
			p := b.build(t, t.TempDir(), append([]ent{man}, files...)...)
			m, w, err := readPack(t.Context(), p)
			if err != nil {
				t.Fatal(err)
			}
			if string(m) != man.data {
				t.Errorf("manifest = %q, want %q", m, man.data)
			}
			var want []string
			for _, f := range files {
				want = append(want, f.name)
				if w.data[f.name] != f.data {
					t.Errorf("%s: got %d bytes, want %d bytes", f.name, len(w.data[f.name]), len(f.data))
				}
			}
			if !slices.Equal(w.names, want) {
				t.Errorf("walked %q, want %q", w.names, want)
			}
		})
	}
}

// TestReadTarConventions covers what real tar tools write: "./" prefixes,
// the root folder entry, folder entries and a pax global header from git
// archive. The manifest is last, so Manifest must stream past a large file.
func TestReadTarConventions(t *testing.T) {
	big := randomString(1 << 20)
	data := tarBytes(t,
		ent{typ: tar.TypeXGlobalHeader, data: "3f1c2e0"},
		ent{name: "./", typ: tar.TypeDir},
		ent{name: "./lessons/", typ: tar.TypeDir},
		ent{name: "./lessons/a.txt", data: big},
		manifestEnt(t),
	)
	for _, name := range []string{"pack.tar", "pack.tzst"} {
		t.Run(name, func(t *testing.T) {
			d := data
			if name == "pack.tzst" {
				d = zstdBytes(t, data)
			}
			_, w, err := readPack(t.Context(), writeFile(t, filepath.Join(t.TempDir(), name), d))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(w.names, []string{"lessons/a.txt"}) || w.data["lessons/a.txt"] != big {
				t.Errorf("walked %q", w.names)
			}
		})
	}
}

func TestOpenDetectsFormatByContent(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, data string }{
		{"zip-named.tar", string(zipBytes(t, manifestEnt(t)))},
		{"tar-named.zip", string(tarBytes(t, manifestEnt(t)))},
		{"zstd-named.bin", string(zstdBytes(t, tarBytes(t, manifestEnt(t))))},
	} {
		if _, _, err := readPack(t.Context(), writeFile(t, filepath.Join(dir, c.name), []byte(c.data))); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// rawFile is a zip entry written as is, so its sizes and CRC can lie.
type rawFile struct {
	h    zip.FileHeader
	data []byte
}

func zipRaw(t testing.TB, files ...rawFile) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, err := zw.CreateRaw(&f.h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func storedRaw(t testing.TB, name string, data []byte, declared uint64) rawFile {
	return rawFile{zip.FileHeader{Name: name, Method: zip.Store, CRC32: crc32.ChecksumIEEE(data),
		CompressedSize64: uint64(len(data)), UncompressedSize64: declared}, data}
}

func manifestRaw(t testing.TB) rawFile {
	m := manifestEnt(t)
	return storedRaw(t, m.name, []byte(m.data), uint64(len(m.data)))
}

func deflated(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.DefaultCompression)
	if err == nil {
		_, err = fw.Write(data)
	}
	if err == nil {
		err = fw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rejectCase is a pack that must be refused, and what the error must say.
type rejectCase struct {
	name  string
	build func(t *testing.T, dir string) string
	entry string // must appear in the message
	msg   string // must appear in the message too
}

func TestReadRejects(t *testing.T) {
	man := manifestEnt(t)
	fileOf := func(name string, data []byte) func(t *testing.T, dir string) string {
		return func(t *testing.T, dir string) string { return writeFile(t, filepath.Join(dir, name), data) }
	}
	withFormats := func(format string, ents ...ent) func(t *testing.T, dir string) string {
		return func(t *testing.T, dir string) string {
			for _, b := range builders {
				if b.format == format {
					return b.build(t, dir, append([]ent{man}, ents...)...)
				}
			}
			t.Fatalf("no builder %s", format)
			return ""
		}
	}
	payload := []byte("0123456789abcdef")
	bigManifest := ent{name: ManifestName, data: strings.Repeat(" ", MaxManifestSize+1)}

	cases := []rejectCase{
		{"tar dotdot", withFormats("tar", ent{name: "../evil.txt", data: "x"}), "../evil.txt", "'..'"},
		{"tar.zst dotdot", withFormats("tar.zst", ent{name: "a/../../evil.txt", data: "x"}), "a/../../evil.txt", "'..'"},
		{"zip dotdot", withFormats("zip", ent{name: "../evil.txt", data: "x"}), "../evil.txt", "'..'"},
		{"tar absolute", withFormats("tar", ent{name: "/etc/passwd", data: "x"}), "/etc/passwd", "absolute"},
		{"zip absolute", withFormats("zip", ent{name: "/etc/passwd", data: "x"}), "/etc/passwd", "absolute"},
		{"zip backslash", withFormats("zip", ent{name: `lessons\a.txt`, data: "x"}), `lessons\\a.txt`, "backslash"},
		{"folder backslash", withFormats("folder", ent{name: `a\b.txt`, data: "x"}), `a\\b.txt`, "backslash"},
		{"tar invalid utf-8", withFormats("tar", ent{name: "caf\xe9.txt", data: "x"}), `caf\xe9.txt`, "UTF-8"},
		{"tar symlink", withFormats("tar", ent{name: "lessons/a.txt", typ: tar.TypeSymlink, link: "/etc/passwd"}), "lessons/a.txt", "symbolic link to /etc/passwd"},
		{"zip symlink", withFormats("zip", ent{name: "lessons/a.txt", data: "/etc/passwd", mode: fs.ModeSymlink}), "lessons/a.txt", "symbolic link"},
		{"folder symlink", withFormats("folder", ent{name: "lessons/a.txt", mode: fs.ModeSymlink, link: "/etc/passwd"}), "lessons/a.txt", "symbolic link to /etc/passwd"},
		{"folder symlinked manifest", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "real.json"), []byte(man.data))
			return writeDir(t, filepath.Join(dir, "pack"), ent{name: ManifestName, mode: fs.ModeSymlink, link: filepath.Join(dir, "real.json")})
		}, ManifestName, "symbolic link"},
		{"tar char device", withFormats("tar", ent{name: "dev/null", typ: tar.TypeChar}), "dev/null", "device"},
		{"tar block device", withFormats("tar", ent{name: "dev/sda", typ: tar.TypeBlock}), "dev/sda", "device"},
		{"tar fifo", withFormats("tar", ent{name: "pipe", typ: tar.TypeFifo}), "pipe", "FIFO"},
		{"zip fifo", withFormats("zip", ent{name: "pipe", mode: fs.ModeNamedPipe}), "pipe", "FIFO"},
		{"tar hardlink", withFormats("tar", ent{name: "b.txt", typ: tar.TypeLink, link: ManifestName}), "b.txt", "hard link"},
		{"tar duplicate", withFormats("tar", ent{name: "a.txt", data: "1"}, ent{name: "./a.txt", data: "2"}), "a.txt", "more than once"},
		{"tar duplicate manifest", withFormats("tar.zst", ent{name: "./" + ManifestName, data: "{}"}), ManifestName, "more than once"},
		{"zip duplicate", withFormats("zip", ent{name: "a.txt", data: "1"}, ent{name: "a.txt", data: "2"}), "a.txt", "more than once"},
		{"tar file and folder", withFormats("tar", ent{name: "a", data: "1"}, ent{name: "a/", typ: tar.TypeDir}), "a", "both a file and a folder"},
		{"zip file and parent", withFormats("zip", ent{name: "a/b", data: "1"}, ent{name: "a", data: "2"}), "a", "both a file and a folder"},
		{"tar sparse", withFormats("tar", ent{name: "holes.bin", typ: tar.TypeGNUSparse}), "holes.bin", "sparse"},
		{"tar truncated data", fileOf("pack.tar", func() []byte {
			var buf bytes.Buffer
			buf.Write(tarBytes(t, man)[:1024]) // manifest header+data, no trailer
			tw := tar.NewWriter(&buf)
			tw.WriteHeader(&tar.Header{Name: "lessons/a.txt", Size: 1000, Mode: 0o644})
			tw.Write(payload) // far fewer than declared, and no Close
			return buf.Bytes()
		}()), "lessons/a.txt", "truncated"},
		{"tar data longer than header", fileOf("pack.tar", func() []byte {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			tw.WriteHeader(&tar.Header{Name: ManifestName, Size: int64(len(man.data)), Mode: 0o644})
			io.WriteString(tw, man.data)
			tw.WriteHeader(&tar.Header{Name: "short.txt", Size: 4, Mode: 0o644})
			tw.Write(payload[:4])
			tw.Flush()
			buf.Write(bytes.Repeat([]byte("x"), 512)) // data the header does not account for
			return buf.Bytes()
		}()), "short.txt", "after entry"},
		{"zstd truncated", fileOf("pack.tar.zst", func() []byte {
			z := zstdBytes(t, tarBytes(t, man, ent{name: "lessons/big.bin", data: randomString(256 << 10)}))
			return z[:len(z)/2]
		}()), "lessons/big.bin", "truncated or corrupt"},
		{"zstd window too large", fileOf("pack.tar.zst", func() []byte {
			// One frame with one raw block, declaring a 128 MiB window as
			// zstd --long does; encoders shrink the window for small inputs.
			data := tarBytes(t, man)
			n := len(data)<<3 | 1 // raw block, last
			frame := append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 17 << 3, byte(n), byte(n >> 8), byte(n >> 16)}, data...)
			return frame
		}()), "pack.tar.zst", "zstd window larger than 64 MiB"},
		{"zstd corrupt checksum", fileOf("pack.tar.zst", func() []byte {
			z := zstdBytes(t, tarBytes(t, man))
			z[len(z)-1] ^= 0xff
			return z
		}()), "pack.tar.zst", "CRC check failed"},
		{"zip stored size larger than data", fileOf("pack.zip", zipRaw(t, manifestRaw(t),
			storedRaw(t, "lessons/a.txt", payload, uint64(len(payload))+10))), "lessons/a.txt", "of the 26 bytes"},
		{"zip stored size smaller than data", fileOf("pack.zip", zipRaw(t, manifestRaw(t),
			storedRaw(t, "lessons/a.txt", payload, uint64(len(payload))-6))), "lessons/a.txt", "more data than the 10 bytes"},
		{"zip deflated size larger than data", fileOf("pack.zip", zipRaw(t, manifestRaw(t),
			rawFile{zip.FileHeader{Name: "lessons/a.txt", Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(payload),
				CompressedSize64: uint64(len(deflated(t, payload))), UncompressedSize64: 1 << 20}, deflated(t, payload)})), "lessons/a.txt", "1048576 bytes"},
		{"zip deflated size smaller than data", fileOf("pack.zip", zipRaw(t, manifestRaw(t),
			rawFile{zip.FileHeader{Name: "lessons/a.txt", Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(payload),
				CompressedSize64: uint64(len(deflated(t, payload))), UncompressedSize64: 3}, deflated(t, payload)})), "lessons/a.txt", "more data than the 3 bytes"},
		{"zip crc mismatch", fileOf("pack.zip", zipRaw(t, manifestRaw(t), func() rawFile {
			f := storedRaw(t, "lessons/a.txt", payload, uint64(len(payload)))
			f.h.CRC32 ^= 1
			return f
		}())), "lessons/a.txt", "checksum"},
		{"zip absurd size", fileOf("pack.zip", zipRaw(t, manifestRaw(t),
			storedRaw(t, "huge.bin", payload, 1<<41))), "huge.bin", "limit"},
		{"zip encrypted", fileOf("pack.zip", zipRaw(t, manifestRaw(t), func() rawFile {
			f := storedRaw(t, "secret.txt", payload, uint64(len(payload)))
			f.h.Flags |= 1
			return f
		}())), "secret.txt", "encrypted"},
		{"zip unknown method", fileOf("pack.zip", zipRaw(t, manifestRaw(t), func() rawFile {
			f := storedRaw(t, "a.txt", payload, uint64(len(payload)))
			f.h.Method = 93
			return f
		}())), "a.txt", "method 93"},
		{"zip truncated", fileOf("pack.zip", func() []byte {
			z := zipBytes(t, man, ent{name: "a.txt", data: "x"})
			return z[:len(z)-30]
		}()), "pack.zip", "not a readable zip"},
	}
	for _, b := range builders {
		cases = append(cases, rejectCase{b.format + " missing manifest", func(t *testing.T, dir string) string {
			return b.build(t, dir, ent{name: "course/" + ManifestName, data: man.data}, ent{name: "course/a.txt", data: "x"})
		}, ManifestName, "missing at the root of the pack; found course/manifest.json"}, rejectCase{b.format + " oversized manifest", func(t *testing.T, dir string) string {
			return b.build(t, dir, bigManifest)
		}, ManifestName, "the limit is 16777216"})
	}
	for _, c := range []struct{ name, data, msg string }{
		{"text.bin", "hello, this is not an archive", "unknown format"},
		{"pack.tar.gz", "\x1f\x8b\x08\x00rest", "gzip"},
		{"empty.zip", "", "empty"},
	} {
		cases = append(cases, rejectCase{"unknown format " + c.name, fileOf(c.name, []byte(c.data)), c.name, c.msg})
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := readPack(t.Context(), c.build(t, t.TempDir()))
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if !strings.Contains(err.Error(), c.entry) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q\ndoes not mention %q and %q", err, c.entry, c.msg)
			}
			if c.name == "unknown format text.bin" && !strings.Contains(err.Error(), ".tar.zst") {
				t.Errorf("error %q does not list the accepted formats", err)
			}
		})
	}
}

// An fn that ignores a read error must not make a lying entry pass.
func TestWalkReportsSwallowedReadErrors(t *testing.T) {
	payload := []byte("0123456789")
	p := writeFile(t, filepath.Join(t.TempDir(), "pack.zip"), zipRaw(t, manifestRaw(t),
		storedRaw(t, "a.txt", payload, 100)))
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.Walk(t.Context(), func(name string, size int64, rd io.Reader) error {
		io.Copy(io.Discard, rd)
		return nil
	})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "a.txt") {
		t.Errorf("Walk = %v, want an ErrInvalid naming a.txt", err)
	}
}

func TestWalkCallback(t *testing.T) {
	ents := []ent{manifestEnt(t), {name: "a.txt", data: strings.Repeat("a", 100000)}, {name: "b.txt", data: "b"}, {name: "c.txt", data: "c"}}
	stop := errors.New("stop here")
	for _, b := range builders {
		p := b.build(t, t.TempDir(), ents...)
		walk := func(ctx context.Context, fn func(name string, size int64, r io.Reader) error) error {
			r, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			return r.Walk(ctx, fn)
		}
		t.Run(b.format+"/partial reads", func(t *testing.T) {
			var got []string
			err := walk(t.Context(), func(name string, size int64, r io.Reader) error {
				var one [1]byte
				if _, err := io.ReadFull(r, one[:]); err != nil {
					return err
				}
				got = append(got, name+":"+string(one[:]))
				return nil
			})
			if err != nil || !slices.Equal(got, []string{"a.txt:a", "b.txt:b", "c.txt:c"}) {
				t.Errorf("Walk = %v, visited %q", err, got)
			}
		})
		t.Run(b.format+"/fn error returned as is", func(t *testing.T) {
			for _, want := range []error{stop, fs.SkipAll, fs.SkipDir} {
				n := 0
				err := walk(t.Context(), func(string, int64, io.Reader) error { n++; return want })
				if err != want || n != 1 {
					t.Errorf("Walk = %v after %d calls, want %v after 1", err, n, want)
				}
			}
		})
		t.Run(b.format+"/cancel between entries", func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			n := 0
			err := walk(ctx, func(string, int64, io.Reader) error { n++; cancel(); return nil })
			if !errors.Is(err, context.Canceled) || n != 1 {
				t.Errorf("Walk = %v after %d calls, want context.Canceled after 1", err, n)
			}
		})
		t.Run(b.format+"/cancel during read", func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			err := walk(ctx, func(_ string, _ int64, r io.Reader) error {
				cancel()
				_, err := r.Read(make([]byte, 10))
				return err
			})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Walk = %v, want context.Canceled", err)
			}
		})
	}
}

func TestManifestCanceled(t *testing.T) {
	for _, b := range builders {
		r, err := Open(b.build(t, t.TempDir(), manifestEnt(t)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := r.Manifest(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Manifest = %v, want context.Canceled", b.format, err)
		}
		r.Close()
	}
}
