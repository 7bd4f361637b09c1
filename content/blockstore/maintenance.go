package blockstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Stored is one row of the store's index.
type Stored struct {
	SHA256 string
	Size   int64
}

// List returns every indexed object.
func (s *Store) List(ctx context.Context) ([]Stored, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT sha256, size FROM files ORDER BY sha256`)
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	defer rows.Close()
	var out []Stored
	for rows.Next() {
		var o Stored
		if err := rows.Scan(&o.SHA256, &o.Size); err != nil {
			return nil, fmt.Errorf("list objects: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Verify re-hashes one object from disk. It returns nil when the bytes match
// the name and the indexed size, and an error wrapping ErrMismatch or
// ErrNotFound otherwise.
func (s *Store) Verify(ctx context.Context, o Stored, progress func(int64)) error {
	f, err := s.OpenObject(o.SHA256)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, &ctxReader{ctx: ctx, r: f, progress: progress})
	if err != nil {
		return fmt.Errorf("verify object %s: %w", o.SHA256, err)
	}
	if n != o.Size {
		return fmt.Errorf("verify object %s: %w: %d bytes on disk, %d indexed", o.SHA256, ErrMismatch, n, o.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != o.SHA256 {
		return fmt.Errorf("verify object %s: %w: bytes on disk hash to %s", o.SHA256, ErrMismatch, got)
	}
	return nil
}

// Quarantine moves a corrupt object aside and drops it from the index, so it
// is neither served nor reused as a source of blocks. The file is kept for
// inspection; a later import or sync brings a good copy back.
func (s *Store) Quarantine(ctx context.Context, sha, reason string) error {
	dst := filepath.Join(s.dir, "quarantine", fmt.Sprintf("%s.%d", sha, s.now().UnixNano()))
	err := os.Rename(s.Path(sha), dst)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("quarantine object %s: %w", sha, err)
	}
	if errors.Is(err, os.ErrNotExist) {
		dst = ""
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("quarantine object %s: %w", sha, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM files WHERE sha256 = ?`, sha); err != nil {
		return fmt.Errorf("quarantine object %s: %w", sha, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO quarantine(sha256, path, reason, detected_at) VALUES (?, ?, ?, ?)`,
		sha, dst, reason, s.now().Unix()); err != nil {
		return fmt.Errorf("quarantine object %s: %w", sha, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("quarantine object %s: %w", sha, err)
	}
	return nil
}

// Remove drops an object from the index, then from disk. In that order, a
// crash in between leaves an unindexed file that SweepDisk removes, never an
// index row pointing at nothing.
func (s *Store) Remove(ctx context.Context, sha string) (int64, error) {
	var size int64
	err := s.db.QueryRowContext(ctx, `DELETE FROM files WHERE sha256 = ? RETURNING size`, sha).Scan(&size)
	if err != nil {
		return 0, fmt.Errorf("remove object %s: %w", sha, err)
	}
	if err := os.Remove(s.Path(sha)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return size, fmt.Errorf("remove object %s: %w", sha, err)
	}
	return size, nil
}

// SweepDisk deletes what a crash can leave behind: temp files of Puts that
// never finished, and object files that never made it into the index. It
// must not run concurrently with Put (the daemon and the CLI take the data
// directory lock first).
func (s *Store) SweepDisk(ctx context.Context) (files int, bytes int64, err error) {
	tmpDir := filepath.Join(s.dir, "tmp")
	entries, err := os.ReadDir(tmpDir)
	if err != nil {
		return 0, 0, fmt.Errorf("sweep temp files: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(tmpDir, e.Name())
		if info, err := e.Info(); err == nil {
			bytes += info.Size()
		}
		if err := os.RemoveAll(p); err != nil {
			return files, bytes, fmt.Errorf("sweep temp file %s: %w", p, err)
		}
		files++
	}
	indexed := map[string]bool{}
	all, err := s.List(ctx)
	if err != nil {
		return files, bytes, err
	}
	for _, o := range all {
		indexed[o.SHA256] = true
	}
	objDir := filepath.Join(s.dir, "objects")
	err = filepath.WalkDir(objDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || indexed[d.Name()] {
			return nil
		}
		if info, err := d.Info(); err == nil {
			bytes += info.Size()
		}
		files++
		return os.Remove(p)
	})
	if err != nil {
		return files, bytes, fmt.Errorf("sweep unindexed objects: %w", err)
	}
	return files, bytes, nil
}

// QuarantineEntry is one recorded verification failure.
type QuarantineEntry struct {
	SHA256, Path, Reason string
	At                   time.Time
}

// Quarantined lists what verification has set aside.
func (s *Store) Quarantined(ctx context.Context) ([]QuarantineEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT sha256, path, reason, detected_at FROM quarantine ORDER BY detected_at`)
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	defer rows.Close()
	var out []QuarantineEntry
	for rows.Next() {
		var q QuarantineEntry
		var at int64
		if err := rows.Scan(&q.SHA256, &q.Path, &q.Reason, &at); err != nil {
			return nil, fmt.Errorf("list quarantine: %w", err)
		}
		q.At = time.Unix(at, 0)
		out = append(out, q)
	}
	return out, rows.Err()
}

// UsedBytes is the total size of indexed objects.
func (s *Store) UsedBytes(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(sum(size), 0) FROM files`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sum object sizes: %w", err)
	}
	return n, nil
}

type ctxReader struct {
	ctx      context.Context
	r        io.Reader
	progress func(int64)
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if n > 0 && c.progress != nil {
		c.progress(int64(n))
	}
	return n, err
}

// FreeBytes is the space left for unprivileged writers on the store's disk.
func (s *Store) FreeBytes() (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(s.dir, &st); err != nil {
		return 0, fmt.Errorf("read free space of %s: %w", s.dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
