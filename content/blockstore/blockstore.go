// Package blockstore keeps a node's content files: each stored whole, once,
// under its SHA-256, so the portal can hand the file straight to sendfile,
// and each described block by block in a SQLite block map so a later version
// of a course (or the delta sync) can reuse any block the box already holds.
//
// Durability rule: an object becomes visible (its row in files) only after
// its bytes were hashed, matched what the caller expected, were fsynced, and
// the rename into objects/ was fsynced. A crash at any point leaves either
// nothing or an unreferenced file that GC removes; never a half file.
package blockstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/syncthing/syncthing/lib/protocol"
	"github.com/syncthing/syncthing/lib/scanner"
)

// ErrMismatch is wrapped when stored bytes do not match what the caller
// promised (hash or size).
var ErrMismatch = errors.New("content does not match its manifest")

// ErrNotFound is returned for an object the store does not hold.
var ErrNotFound = errors.New("object not found")

// Store is a content-addressed file store rooted at a directory, with its
// index in the node's database.
type Store struct {
	dir string
	db  *sql.DB
	now func() time.Time
}

// Object describes a stored file.
type Object struct {
	SHA256    string
	Size      int64
	BlockSize int
	Blocks    []protocol.BlockInfo
}

// Expect is what the caller knows about the bytes it is about to Put.
// Size < 0 means unknown.
type Expect struct {
	SHA256 string
	Size   int64
}

// Open returns a store over dir (created if missing). The database must
// already be migrated.
func Open(dir string, db *sql.DB) (*Store, error) {
	for _, sub := range []string{"objects", "tmp", "quarantine"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("open block store: %w", err)
		}
	}
	return &Store{dir: dir, db: db, now: time.Now}, nil
}

// Dir is the store's root directory.
func (s *Store) Dir() string { return s.dir }

// Path is where an object with this hash lives (whether or not it exists).
func (s *Store) Path(sha string) string {
	if len(sha) < 2 {
		return filepath.Join(s.dir, "objects", "_", sha)
	}
	return filepath.Join(s.dir, "objects", sha[:2], sha)
}

// Has reports whether the object is stored and indexed.
func (s *Store) Has(ctx context.Context, sha string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM files WHERE sha256 = ?`, sha).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look up object %s: %w", sha, err)
	}
	return n > 0, nil
}

// OpenObject opens a stored object for reading.
func (s *Store) OpenObject(sha string) (*os.File, error) {
	if !validHash(sha) {
		return nil, fmt.Errorf("open object %q: %w", sha, ErrNotFound)
	}
	f, err := os.Open(s.Path(sha))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open object %s: %w", sha, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open object %s: %w", sha, err)
	}
	return f, nil
}

// Put stores r's bytes. If want.SHA256 is set and the object is already
// stored, r is not read at all. Progress, if not nil, is told of every chunk
// read (for progress bars).
func (s *Store) Put(ctx context.Context, r io.Reader, want Expect, progress func(n int64)) (*Object, error) {
	if want.SHA256 != "" {
		if ok, err := s.Has(ctx, want.SHA256); err != nil {
			return nil, err
		} else if ok {
			if progress != nil && want.Size > 0 {
				progress(want.Size)
			}
			return &Object{SHA256: want.SHA256, Size: want.Size}, nil
		}
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "put-*")
	if err != nil {
		return nil, fmt.Errorf("store object: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	src := r
	if want.Size >= 0 {
		// Read one byte past the promise so a longer stream is caught too.
		src = io.LimitReader(r, want.Size+1)
	}
	res, err := hashCopy(ctx, tmp, src, want.Size, progress)
	if err != nil {
		return nil, fmt.Errorf("store object: %w", err)
	}
	if want.Size >= 0 && res.size != want.Size {
		return nil, fmt.Errorf("store object: %w: size is %d bytes, expected %d", ErrMismatch, res.size, want.Size)
	}
	if want.SHA256 != "" && res.sha256 != want.SHA256 {
		return nil, fmt.Errorf("store object: %w: sha256 is %s, expected %s", ErrMismatch, res.sha256, want.SHA256)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("store object %s: fsync: %w", res.sha256, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("store object %s: %w", res.sha256, err)
	}
	dst := s.Path(res.sha256)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, fmt.Errorf("store object %s: %w", res.sha256, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return nil, fmt.Errorf("store object %s: %w", res.sha256, err)
	}
	committed = true
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return nil, fmt.Errorf("store object %s: %w", res.sha256, err)
	}
	obj := &Object{SHA256: res.sha256, Size: res.size, BlockSize: res.blockSize, Blocks: res.blocks}
	if err := s.index(ctx, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// index records the object and its block map in one transaction.
func (s *Store) index(ctx context.Context, o *Object) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index object %s: %w", o.SHA256, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO files(sha256, size, block_size, stored_at) VALUES (?, ?, ?, ?)`,
		o.SHA256, o.Size, o.BlockSize, s.now().Unix())
	if err != nil {
		return fmt.Errorf("index object %s: %w", o.SHA256, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // a concurrent Put of the same content won
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO blocks(file_sha256, offset, size, hash, weak_hash) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("index object %s: %w", o.SHA256, err)
	}
	defer stmt.Close()
	for _, b := range o.Blocks {
		if b.Size == 0 {
			continue
		}
		if _, err := stmt.ExecContext(ctx, o.SHA256, b.Offset, b.Size, b.Hash, int64(b.WeakHash)); err != nil {
			return fmt.Errorf("index object %s block at %d: %w", o.SHA256, b.Offset, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index object %s: %w", o.SHA256, err)
	}
	return nil
}

// BlockLocation is where a block with a given hash can be read locally.
type BlockLocation struct {
	SHA256 string
	Offset int64
	Size   int
}

// FindBlock looks a block hash up in the block map.
func (s *Store) FindBlock(ctx context.Context, hash []byte) (*BlockLocation, error) {
	var loc BlockLocation
	err := s.db.QueryRowContext(ctx, `SELECT file_sha256, offset, size FROM blocks WHERE hash = ? LIMIT 1`, hash).
		Scan(&loc.SHA256, &loc.Offset, &loc.Size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("find block %x: %w", hash, err)
	}
	return &loc, nil
}

// Blocks returns an object's block list from the block map.
func (s *Store) Blocks(ctx context.Context, sha string) ([]protocol.BlockInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT offset, size, hash, weak_hash FROM blocks WHERE file_sha256 = ? ORDER BY offset`, sha)
	if err != nil {
		return nil, fmt.Errorf("read block list of %s: %w", sha, err)
	}
	defer rows.Close()
	var out []protocol.BlockInfo
	for rows.Next() {
		var b protocol.BlockInfo
		var weak int64
		if err := rows.Scan(&b.Offset, &b.Size, &b.Hash, &weak); err != nil {
			return nil, fmt.Errorf("read block list of %s: %w", sha, err)
		}
		b.WeakHash = uint32(weak)
		out = append(out, b)
	}
	return out, rows.Err()
}

type hashResult struct {
	sha256    string
	size      int64
	blockSize int
	blocks    []protocol.BlockInfo
}

// chunkSize is large enough that channel hand-offs cost nothing next to the
// hashing, small enough that the two in flight stay cheap on a 1 GB Pi.
const chunkSize = 1 << 20

// hashCopy copies src to dst while computing both the whole-file SHA-256
// (the object's name) and syncthing's per-block hashes (the block map). The
// two hashes run on different goroutines so import uses both cores of a Pi
// and stays bound by the disk rather than by SHA-256.
func hashCopy(ctx context.Context, dst io.Writer, src io.Reader, sizeHint int64, progress func(int64)) (*hashResult, error) {
	blockSize := protocol.BlockSize(max(sizeHint, 0))
	pr, pw := io.Pipe()
	type blocksOut struct {
		blocks []protocol.BlockInfo
		err    error
	}
	done := make(chan blocksOut, 1)
	go func() {
		// The size is unknown to the block hasher (the stream may lie), so
		// it gets -1 and simply hashes what arrives.
		b, err := scanner.Blocks(ctx, pr, blockSize, -1, nil, true)
		pr.CloseWithError(err)
		done <- blocksOut{b, err}
	}()

	whole := sha256.New()
	var bufs [3][]byte
	for i := range bufs {
		bufs[i] = make([]byte, chunkSize)
	}
	var total int64
	var copyErr error
	// While the block hasher consumes one chunk from the pipe, this
	// goroutine reads, writes and whole-hashes the next. Three buffers: one
	// in the pipe writer, one queued in the channel, one being filled; the
	// send of the third blocks until the first is fully written.
	pending := make(chan []byte, 1)
	writerDone := make(chan error, 1)
	go func() {
		var err error
		for c := range pending {
			if err == nil {
				_, err = pw.Write(c)
			}
		}
		writerDone <- err
	}()
	i := 0
	for {
		if err := ctx.Err(); err != nil {
			copyErr = err
			break
		}
		buf := bufs[i%len(bufs)]
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			chunk := buf[:n]
			if _, werr := dst.Write(chunk); werr != nil {
				copyErr = werr
				break
			}
			whole.Write(chunk)
			pending <- chunk
			total += int64(n)
			if progress != nil {
				progress(int64(n))
			}
			i++
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			copyErr = err
			break
		}
	}
	close(pending)
	werr := <-writerDone
	if copyErr != nil {
		pw.CloseWithError(copyErr)
		<-done
		return nil, copyErr
	}
	pw.Close()
	bo := <-done
	if werr != nil && bo.err == nil {
		bo.err = werr
	}
	if bo.err != nil {
		return nil, fmt.Errorf("hash blocks: %w", bo.err)
	}
	return &hashResult{
		sha256:    hex.EncodeToString(whole.Sum(nil)),
		size:      total,
		blockSize: blockSize,
		blocks:    bo.blocks,
	}, nil
}

func validHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
