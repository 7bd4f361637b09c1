// Package blockstore keeps a node's content files: each stored whole, once,
// under its SHA-256, so the portal can hand the file straight to sendfile,
// and each described block by block in a SQLite block map so a later version
// of a course (or the delta sync) can reuse any block the box already holds.
//
// Durability rule: an object becomes visible (its row in files) only after
// its bytes were hashed, matched what the caller expected, were renamed into
// objects/, and all of that was synced to disk. A crash at any point leaves
// either nothing or an unindexed file that GC removes; never a half file
// that counts.
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
	"sync"
	"time"

	"github.com/syncthing/syncthing/lib/protocol"
	"github.com/syncthing/syncthing/lib/scanner"
	"golang.org/x/sys/unix"
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
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
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
	b := s.NewBatch()
	obj, _, err := b.Put(ctx, r, want, progress)
	if err != nil {
		return nil, err
	}
	if err := b.Commit(ctx); err != nil {
		return nil, err
	}
	return obj, nil
}

// Batch stores many objects and makes them durable and visible together:
// one filesystem sync and one index transaction instead of three fsyncs per
// file, which for a course of 10,000 small HTML pages is the difference
// between seconds and many minutes on an SD card. Until they are committed,
// the batch's files sit in objects/ unindexed: invisible to readers, and
// removed by SweepDisk if the process dies first.
//
// A batch commits by itself every flushObjects objects or flushBytes bytes,
// so what it keeps in memory (each pending object's block list) stays
// bounded whatever the number of files: a course of 50,000 pages is fifty
// syncs, not one sync and 50,000 block lists held to the end. A Batch is
// not safe for concurrent use.
type Batch struct {
	s            *Store
	pending      []*Object
	pendingBytes int64
	seen         map[string]bool // pending objects, by SHA-256
}

// flushObjects and flushBytes bound a batch's uncommitted objects: enough
// that the sync per flush costs nothing next to writing the files, few
// enough that their block lists take a few megabytes at most.
const (
	flushObjects = 2048
	flushBytes   = 512 << 20
)

// NewBatch starts a batch.
func (s *Store) NewBatch() *Batch { return &Batch{s: s, seen: map[string]bool{}} }

// Put writes one object of the batch; isNew is false when the content was
// already stored (or already in this batch) and r was not read.
func (b *Batch) Put(ctx context.Context, r io.Reader, want Expect, progress func(n int64)) (obj *Object, isNew bool, err error) {
	s := b.s
	if want.SHA256 != "" {
		ok := b.seen[want.SHA256]
		if !ok {
			if ok, err = s.Has(ctx, want.SHA256); err != nil {
				return nil, false, err
			}
		}
		if ok {
			if progress != nil && want.Size > 0 {
				progress(want.Size)
			}
			return &Object{SHA256: want.SHA256, Size: want.Size}, false, nil
		}
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "put-*")
	if err != nil {
		return nil, false, fmt.Errorf("store object: %w", err)
	}
	renamed := false
	defer func() {
		if !renamed {
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
		return nil, false, fmt.Errorf("store object: %w", err)
	}
	if want.Size >= 0 && res.size != want.Size {
		return nil, false, fmt.Errorf("store object: %w: size is %d bytes, expected %d", ErrMismatch, res.size, want.Size)
	}
	if want.SHA256 != "" && res.sha256 != want.SHA256 {
		return nil, false, fmt.Errorf("store object: %w: sha256 is %s, expected %s", ErrMismatch, res.sha256, want.SHA256)
	}
	if err := tmp.Close(); err != nil {
		return nil, false, fmt.Errorf("store object %s: %w", res.sha256, err)
	}
	obj = &Object{SHA256: res.sha256, Size: res.size, BlockSize: res.blockSize, Blocks: res.blocks}
	if b.seen[obj.SHA256] {
		return obj, false, nil // unannounced duplicate within the batch; the deferred remove drops it
	}
	if want.SHA256 == "" {
		// Content the caller could not name may be stored already (or
		// have been flushed by this batch); then it is not new.
		if have, err := s.Has(ctx, obj.SHA256); err != nil || have {
			return obj, false, err
		}
	}
	dst := s.Path(res.sha256)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return nil, false, fmt.Errorf("store object %s: %w", res.sha256, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return nil, false, fmt.Errorf("store object %s: %w", res.sha256, err)
	}
	renamed = true
	b.seen[obj.SHA256] = true
	b.pending = append(b.pending, obj)
	b.pendingBytes += obj.Size
	if len(b.pending) >= flushObjects || b.pendingBytes >= flushBytes {
		if err := b.Commit(ctx); err != nil {
			return nil, false, err
		}
	}
	return obj, true, nil
}

// smallBatch is how many objects are fsynced one by one; above it, one
// syncfs of the store's filesystem is cheaper.
const smallBatch = 8

// Commit makes every pending object of the batch durable, then indexes
// them all in one transaction. Only after Commit do they count as stored.
func (b *Batch) Commit(ctx context.Context) error {
	if len(b.pending) == 0 {
		return nil
	}
	if err := b.sync(); err != nil {
		return err
	}
	if err := b.s.index(ctx, b.pending...); err != nil {
		return err
	}
	// Indexed now: Has finds them, so seen need not remember them.
	b.pending, b.pendingBytes = nil, 0
	clear(b.seen)
	return nil
}

// Discard deletes the files of the batch's pending (not yet committed)
// objects, unless someone else has indexed the same content meanwhile. It
// is for an import refused half-way, and only safe while no other writer
// of the store can be running (the caller holds the content lock alone):
// another import may have renamed the very same file into place.
func (b *Batch) Discard(ctx context.Context) (files int, bytes int64, err error) {
	for _, o := range b.pending {
		indexed, err := b.s.Has(ctx, o.SHA256)
		if err != nil {
			return files, bytes, err
		}
		if indexed {
			continue
		}
		if err := os.Remove(b.s.Path(o.SHA256)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return files, bytes, fmt.Errorf("discard object %s: %w", o.SHA256, err)
		}
		files++
		bytes += o.Size
	}
	b.pending, b.pendingBytes = nil, 0
	clear(b.seen)
	return files, bytes, nil
}

func (b *Batch) sync() error {
	if len(b.pending) > smallBatch {
		d, err := os.Open(b.s.dir)
		if err != nil {
			return fmt.Errorf("sync stored objects: %w", err)
		}
		defer d.Close()
		if err := unix.Syncfs(int(d.Fd())); err != nil {
			return fmt.Errorf("sync stored objects: %w", err)
		}
		return nil
	}
	dirs := map[string]bool{}
	for _, o := range b.pending {
		p := b.s.Path(o.SHA256)
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("sync object %s: %w", o.SHA256, err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sync object %s: %w", o.SHA256, err)
		}
		dirs[filepath.Dir(p)] = true
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("sync stored objects: %w", err)
		}
	}
	return nil
}

// index records objects and their block maps in one transaction.
func (s *Store) index(ctx context.Context, objs ...*Object) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index objects: %w", err)
	}
	defer tx.Rollback()
	fileStmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO files(sha256, size, block_size, stored_at) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("index objects: %w", err)
	}
	defer fileStmt.Close()
	blockStmt, err := tx.PrepareContext(ctx, `INSERT INTO blocks(file_sha256, offset, size, hash, weak_hash) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("index objects: %w", err)
	}
	defer blockStmt.Close()
	now := s.now().Unix()
	for _, o := range objs {
		res, err := fileStmt.ExecContext(ctx, o.SHA256, o.Size, o.BlockSize, now)
		if err != nil {
			return fmt.Errorf("index object %s: %w", o.SHA256, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // a concurrent import of the same content won
		}
		for _, b := range o.Blocks {
			if b.Size == 0 {
				continue
			}
			if _, err := blockStmt.ExecContext(ctx, o.SHA256, b.Offset, b.Size, b.Hash, int64(b.WeakHash)); err != nil {
				return fmt.Errorf("index object %s block at %d: %w", o.SHA256, b.Offset, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index objects: %w", err)
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
		bufs[i] = getChunk(sizeHint)
		defer putChunk(bufs[i])
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

// chunks recycles full-size copy buffers: a course of thousands of small
// files must not allocate (and zero, and collect) megabytes per file.
var chunks = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// getChunk returns a buffer for a file of about sizeHint bytes (-1:
// unknown): small files get a small buffer, others a pooled full chunk.
func getChunk(sizeHint int64) []byte {
	if sizeHint >= 0 && sizeHint < chunkSize/2 {
		// One byte more than the hint, so the read that finds EOF (or a
		// longer stream than promised) needs no second buffer.
		return make([]byte, max(sizeHint+1, 512))
	}
	return *chunks.Get().(*[]byte)
}

func putChunk(b []byte) {
	if cap(b) == chunkSize {
		b = b[:chunkSize]
		chunks.Put(&b)
	}
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

// Stat returns a stored object's size and block size, or ErrNotFound.
func (s *Store) Stat(ctx context.Context, sha string) (size int64, blockSize int, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT size, block_size FROM files WHERE sha256 = ?`, sha).Scan(&size, &blockSize)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("stat object %s: %w", sha, ErrNotFound)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("stat object %s: %w", sha, err)
	}
	return size, blockSize, nil
}
