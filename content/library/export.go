package library

import (
	"archive/tar"
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"outpost/content/pack"
)

// packEpoch is the timestamp written into exported archives, so exporting
// the same course twice gives byte-identical packs.
var packEpoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// Export writes the visible version of a course as a pack at out: a .tar.zst
// (or .tzst), .tar or .zip archive by extension, or a folder for a name
// without an extension (or ending in /); other extensions are refused. The
// manifest is written first so readers can check space before the files.
// An archive is written to a temporary name and renamed when complete.
func (l *Library) Export(ctx context.Context, id, out string, prog Progress) error {
	if prog == nil {
		prog = noProgress{}
	}
	if err := checkExportName(out); err != nil {
		return fmt.Errorf("export %s: %w", id, err)
	}
	raw, err := l.Catalog.Manifest(ctx, id)
	if err != nil {
		return fmt.Errorf("export %s: %w", id, err)
	}
	m, err := pack.ParseStoredManifest(raw)
	if err != nil {
		return fmt.Errorf("export %s: stored manifest: %w", id, err)
	}
	paths := make([]string, 0, len(m.Files))
	var total int64
	for p, f := range m.Files {
		paths = append(paths, p)
		total += f.Size
	}
	sort.Strings(paths)
	prog.Total(total)

	lower := strings.ToLower(out)
	switch {
	case strings.HasSuffix(lower, ".tar.zst"), strings.HasSuffix(lower, ".tzst"), strings.HasSuffix(lower, ".tar"):
		return l.writeArchive(out, func(w io.Writer) error {
			var tw *tar.Writer
			var zw *zstd.Encoder
			if strings.HasSuffix(lower, ".tar") {
				tw = tar.NewWriter(w)
			} else {
				zw, err = zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
				if err != nil {
					return err
				}
				tw = tar.NewWriter(zw)
			}
			if err := tarFile(tw, pack.ManifestName, int64(len(raw)), strings.NewReader(string(raw))); err != nil {
				return err
			}
			for _, p := range paths {
				if err := l.copyObject(ctx, m.Files[p], p, prog, func(r io.Reader) error { return tarFile(tw, p, m.Files[p].Size, r) }); err != nil {
					return err
				}
			}
			if err := tw.Close(); err != nil {
				return err
			}
			if zw != nil {
				return zw.Close()
			}
			return nil
		})
	case strings.HasSuffix(lower, ".zip"):
		return l.writeArchive(out, func(w io.Writer) error {
			zw := zip.NewWriter(w)
			if err := zipFile(zw, pack.ManifestName, strings.NewReader(string(raw)), zip.Deflate); err != nil {
				return err
			}
			for _, p := range paths {
				// Media is already compressed; storing avoids burning CPU
				// on a Pi for nothing.
				if err := l.copyObject(ctx, m.Files[p], p, prog, func(r io.Reader) error { return zipFile(zw, p, r, zip.Store) }); err != nil {
					return err
				}
			}
			return zw.Close()
		})
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("export %s: %w", id, err)
	}
	if err := os.WriteFile(filepath.Join(out, pack.ManifestName), raw, 0o644); err != nil {
		return fmt.Errorf("export %s: %w", id, err)
	}
	for _, p := range paths {
		dst := filepath.Join(out, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("export %s: %w", id, err)
		}
		err := l.copyObject(ctx, m.Files[p], p, prog, func(r io.Reader) error {
			f, err := os.Create(dst)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, r); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		})
		if err != nil {
			return fmt.Errorf("export %s: %w", id, err)
		}
	}
	return nil
}

// ExportFormats are the archive formats Export writes, by the ending of
// the output's name; any other output is a folder.
var ExportFormats = []string{".tar.zst", ".tzst", ".tar", ".zip"}

// ErrExportFormat is wrapped when an export's name ends in an extension
// that is no format Export writes.
var ErrExportFormat = errors.New("unknown pack format")

// checkExportName refuses an output named like an archive of a format
// Export does not write (out.tgz, out.tar.gz, out.7z): written as a folder
// under that name, it would look like the archive it is not. A folder is a
// name without an extension, an existing directory, or a name ending in /.
func checkExportName(out string) error {
	lower := strings.ToLower(out)
	for _, ext := range ExportFormats {
		if strings.HasSuffix(lower, ext) {
			return nil
		}
	}
	if strings.HasSuffix(out, "/") || strings.HasSuffix(out, string(filepath.Separator)) {
		return nil
	}
	if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		return nil
	}
	ext := filepath.Ext(out)
	if ext == "" {
		return nil
	}
	return fmt.Errorf("%w %q in %s: name the output with %s for an archive, or give a folder (end its name with / if it has a dot)",
		ErrExportFormat, ext, out, strings.Join(ExportFormats, ", "))
}

func (l *Library) copyObject(ctx context.Context, f pack.File, name string, prog Progress, write func(io.Reader) error) error {
	obj, err := l.Store.OpenObject(f.SHA256)
	if err != nil {
		return fmt.Errorf("%s: %w; run `outpost content verify`", name, err)
	}
	defer obj.Close()
	if err := write(&progressReader{ctx: ctx, r: obj, add: prog.Add}); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (l *Library) writeArchive(out string, body func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return fmt.Errorf("export to %s: %w", out, err)
	}
	defer os.Remove(tmp.Name())
	if err := body(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("export to %s: %w", out, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("export to %s: %w", out, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("export to %s: %w", out, err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("export to %s: %w", out, err)
	}
	return nil
}

func tarFile(tw *tar.Writer, name string, size int64, r io.Reader) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: packEpoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := io.Copy(tw, r)
	return err
}

func zipFile(zw *zip.Writer, name string, r io.Reader, method uint16) error {
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method, Modified: packEpoch})
	if err != nil {
		return err
	}
	_, err = io.Copy(w, r)
	return err
}

type progressReader struct {
	ctx context.Context
	r   io.Reader
	add func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	if n > 0 {
		p.add(int64(n))
	}
	return n, err
}
