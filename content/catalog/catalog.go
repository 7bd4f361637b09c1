// Package catalog holds what a box knows about its courses: versions,
// lessons, items and the files they reference, plus the full-text index the
// portal searches. A course version becomes visible in the same transaction
// that inserts it, so readers see the old version or the new one, never a
// mix.
package catalog

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"outpost/content/mediatype"
	"outpost/content/pack"
)

// ErrNotFound is returned for an unknown course or item.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a pack claims a course id and version the box
// already holds with different content.
var ErrConflict = errors.New("course version already present with different content")

// Catalog is the course index over the node's database.
type Catalog struct {
	db  *sql.DB
	now func() time.Time

	mu    sync.Mutex
	stmts map[string]*sql.Stmt // the page queries, prepared on first use
}

// New returns a catalog over an already migrated database.
func New(db *sql.DB) *Catalog { return &Catalog{db: db, now: time.Now} }

// Course is one visible course version.
type Course struct {
	ID      string
	Version int64
	// Sum is the SHA-256 of the version's manifest; with Version it is the
	// course's Edition.
	Sum         string
	Title       string
	Description string
	Language    string
	Subjects    []string
	Grades      []string
	ItemCount   int
	Bytes       int64
	ImportedAt  time.Time
	Lessons     []Lesson // filled by Course, not by Courses
}

// Edition returns the course's edition.
func (co *Course) Edition() Edition { return Edition{Version: co.Version, Sum: co.Sum} }

// Lesson is an ordered group of items.
type Lesson struct {
	Index int
	ID    string
	Title string
	Items []Item
}

// Item is one playable thing.
type Item struct {
	CourseID string
	ID       string
	Kind     pack.Kind
	Title    string
	Path     string
	SHA256   string
	Size     int64
	// MIME is the Content-Type the box chose for the file when the version
	// was committed (mediatype.ForItem); a row written by an older build may
	// hold anything, so the portal checks it again before serving.
	MIME  string
	Entry string
	// TextPath is the pack path of the item's transcript (text_file), or
	// empty; a .vtt one doubles as captions.
	TextPath string
	Lesson   int // index of its lesson in the course
	Index    int // position within its lesson
	Pos      int // position in the whole course, from 0, in lesson order
}

// Version identifies a course version and says whether a commit changed it.
type Version struct {
	ID      string
	Version int64
	Existed bool // the same content was already imported; nothing changed
}

// ManifestSum is the identity of a manifest's content, used to tell a
// re-import of the same pack from a different pack reusing a version number.
func ManifestSum(raw []byte) string {
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:])
}

// Existing reports whether this id and version is already stored, and if so
// whether with the same manifest. Importers call it before copying any file
// so a conflicting pack fails fast.
func (c *Catalog) Existing(ctx context.Context, id string, version int64, manifestSum string) (exists bool, err error) {
	return existing(ctx, c.db, id, version, manifestSum)
}

// CurrentVersion returns the visible version of a course, or 0.
func (c *Catalog) CurrentVersion(ctx context.Context, id string) (int64, error) {
	return currentVersion(ctx, c.db, id)
}

// queryRower is what *sql.DB and *sql.Tx share, so the checks below run the
// same outside a transaction (to fail fast) and inside Commit's (to decide).
type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func existing(ctx context.Context, q queryRower, id string, version int64, manifestSum string) (bool, error) {
	var sum string
	err := q.QueryRowContext(ctx, `SELECT manifest_sha256 FROM course_versions WHERE course_id = ? AND version = ?`, id, version).Scan(&sum)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up course %s version %d: %w", id, version, err)
	}
	if sum != manifestSum {
		return true, fmt.Errorf("course %s version %d: %w; publish the changed pack with a higher version", id, version, ErrConflict)
	}
	return true, nil
}

func currentVersion(ctx context.Context, q queryRower, id string) (int64, error) {
	var v int64
	err := q.QueryRowContext(ctx, `SELECT current_version FROM courses WHERE id = ?`, id).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("look up course %s: %w", id, err)
	}
	return v, nil
}

// TextSource gives the searchable text gathered from an item's files (a
// transcript, the page of a document), or "". Commit asks for each item once,
// in lesson order, so a caller can stream the texts instead of holding a
// whole course's in memory. nil means no texts.
type TextSource func(it pack.Item) (string, error)

// Commit makes a course version visible. Every file the manifest lists must
// already be in the block store; the caller guarantees it. Older versions of
// the course are dropped in the same transaction (their files become garbage
// for gc); an older version than the visible one is refused.
func (c *Catalog) Commit(ctx context.Context, m *pack.Manifest, rawManifest []byte, texts TextSource) (Version, error) {
	sum := ManifestSum(rawManifest)
	v := Version{ID: m.ID, Version: m.Version}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return v, fmt.Errorf("commit course %s: %w", m.ID, err)
	}
	defer tx.Rollback()

	exists, err := existing(ctx, tx, m.ID, m.Version, sum)
	if err != nil {
		return v, fmt.Errorf("commit: %w", err)
	}
	if exists {
		v.Existed = true
		return v, nil
	}
	current, err := currentVersion(ctx, tx, m.ID)
	if err != nil {
		return v, fmt.Errorf("commit: %w", err)
	}
	if current > m.Version {
		return v, fmt.Errorf("commit course %s: version %d is older than the installed version %d; remove the course first to downgrade", m.ID, m.Version, current)
	}

	subjects, _ := json.Marshal(nonNil(m.Subjects))
	grades, _ := json.Marshal(nonNil(m.Grades))
	var items int
	for _, l := range m.Lessons {
		items += len(l.Items)
	}
	var bytes int64
	for _, f := range m.Files {
		bytes += f.Size
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO course_versions(course_id, version, title, description, language, subjects, grades, manifest_sha256, imported_at, item_count, bytes)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.Version, m.Title, m.Description, m.Language, string(subjects), string(grades), sum, c.now().Unix(), items, bytes); err != nil {
		return v, fmt.Errorf("commit course %s: %w", m.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO course_manifests(course_id, version, manifest) VALUES (?, ?, ?)`, m.ID, m.Version, rawManifest); err != nil {
		return v, fmt.Errorf("commit course %s: %w", m.ID, err)
	}
	for _, s := range uniq(m.Subjects) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO course_subjects(course_id, version, subject) VALUES (?, ?, ?)`, m.ID, m.Version, s); err != nil {
			return v, fmt.Errorf("commit course %s: %w", m.ID, err)
		}
	}
	if err := insertRows(ctx, tx, m, texts); err != nil {
		return v, err
	}
	// The switch: from this statement's commit on, readers see the new version.
	if _, err := tx.ExecContext(ctx, `INSERT INTO courses(id, current_version) VALUES (?, ?)
		ON CONFLICT(id) DO UPDATE SET current_version = excluded.current_version`, m.ID, m.Version); err != nil {
		return v, fmt.Errorf("commit course %s: switch version: %w", m.ID, err)
	}
	if err := deleteVersions(ctx, tx, m.ID, `version < ?`, m.Version); err != nil {
		return v, err
	}
	if err := tx.Commit(); err != nil {
		return v, fmt.Errorf("commit course %s: %w", m.ID, err)
	}
	return v, nil
}

// insertRows writes a version's files, lessons, items and search rows with
// statements prepared once: a course of 50,000 items is some 150,000
// inserts, and parsing each statement anew was a good part of the commit.
func insertRows(ctx context.Context, tx *sql.Tx, m *pack.Manifest, texts TextSource) error {
	prep := func(q string) (*sql.Stmt, error) {
		st, err := tx.PrepareContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("commit course %s: %w", m.ID, err)
		}
		return st, nil
	}
	fileStmt, err := prep(`INSERT INTO version_files(course_id, version, path, sha256, size) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer fileStmt.Close()
	lessonStmt, err := prep(`INSERT INTO lessons(course_id, version, idx, lesson_id, title) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer lessonStmt.Close()
	itemStmt, err := prep(`INSERT INTO items(course_id, version, lesson_idx, idx, pos, item_id, kind, title, path, sha256, size, mime, entry, text_path)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer itemStmt.Close()
	searchStmt, err := prep(`INSERT INTO search(course_id, version, item_id, title, body) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer searchStmt.Close()

	paths := make([]string, 0, len(m.Files))
	for p := range m.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		f := m.Files[p]
		if _, err := fileStmt.ExecContext(ctx, m.ID, m.Version, p, f.SHA256, f.Size); err != nil {
			return fmt.Errorf("commit course %s file %s: %w", m.ID, p, err)
		}
	}
	if _, err := searchStmt.ExecContext(ctx, m.ID, m.Version, "", m.Title, m.Description); err != nil {
		return fmt.Errorf("commit course %s: index: %w", m.ID, err)
	}
	pos := 0
	for li, l := range m.Lessons {
		if _, err := lessonStmt.ExecContext(ctx, m.ID, m.Version, li, l.ID, l.Title); err != nil {
			return fmt.Errorf("commit course %s lesson %s: %w", m.ID, l.ID, err)
		}
		for ii, it := range l.Items {
			f := m.Files[it.File]
			entry := it.Entry
			if it.Kind == pack.KindHTML5 && entry == "" {
				entry = "index.html"
			}
			if _, err := itemStmt.ExecContext(ctx, m.ID, m.Version, li, ii, pos, it.ID, string(it.Kind), it.Title, it.File, f.SHA256, f.Size, mediatype.ForItem(string(it.Kind), it.Type, it.File), entry, it.TextFile); err != nil {
				return fmt.Errorf("commit course %s item %s: %w", m.ID, it.ID, err)
			}
			pos++
			body := it.Text
			if texts != nil {
				t, err := texts(it)
				if err != nil {
					return fmt.Errorf("commit course %s item %s: %w", m.ID, it.ID, err)
				}
				if t != "" {
					body += "\n" + t
				}
			}
			if _, err := searchStmt.ExecContext(ctx, m.ID, m.Version, it.ID, it.Title, body); err != nil {
				return fmt.Errorf("commit course %s item %s: index: %w", m.ID, it.ID, err)
			}
		}
	}
	return nil
}

// Remove deletes a course and all its versions. Its files stay on disk until
// gc, so a portal request in flight finishes.
func (c *Catalog) Remove(ctx context.Context, id string) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("remove course %s: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM courses WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("remove course %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("remove course %s: %w (see `outpost content ls`)", id, ErrNotFound)
	}
	if err := deleteVersions(ctx, tx, id, `1 = ?`, 1); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("remove course %s: %w", id, err)
	}
	return nil
}

func deleteVersions(ctx context.Context, tx *sql.Tx, id, cond string, arg any) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM search WHERE course_id = ? AND `+cond, id, arg); err != nil {
		return fmt.Errorf("drop old versions of %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM course_versions WHERE course_id = ? AND `+cond, id, arg); err != nil {
		return fmt.Errorf("drop old versions of %s: %w", id, err)
	}
	return nil
}

// Manifest returns the raw manifest of the visible version, for export.
func (c *Catalog) Manifest(ctx context.Context, id string) ([]byte, error) {
	var raw []byte
	err := c.db.QueryRowContext(ctx, `SELECT m.manifest FROM courses c JOIN course_manifests m ON m.course_id = c.id AND m.version = c.current_version WHERE c.id = ?`, id).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("course %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest of %s: %w", id, err)
	}
	return raw, nil
}

// Unreferenced lists stored objects no course version references: what gc
// may delete.
func (c *Catalog) Unreferenced(ctx context.Context) ([]string, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT f.sha256 FROM files f WHERE NOT EXISTS (SELECT 1 FROM version_files v WHERE v.sha256 = f.sha256) ORDER BY f.sha256`)
	if err != nil {
		return nil, fmt.Errorf("find unreferenced files: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("find unreferenced files: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Missing lists, per visible course, files it references that the store
// does not hold (after a quarantine, say).
func (c *Catalog) Missing(ctx context.Context) (map[string][]string, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT v.course_id, v.path FROM courses c JOIN version_files v ON v.course_id = c.id AND v.version = c.current_version
		WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.sha256 = v.sha256) ORDER BY v.course_id, v.path`)
	if err != nil {
		return nil, fmt.Errorf("find missing files: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var id, p string
		if err := rows.Scan(&id, &p); err != nil {
			return nil, fmt.Errorf("find missing files: %w", err)
		}
		out[id] = append(out[id], p)
	}
	return out, rows.Err()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// Referenced reports whether any course version, visible or not, or any
// pending work (an interrupted sync pass's next version) references a
// stored object: either way it must not be deleted.
func (c *Catalog) Referenced(ctx context.Context, sha string) (bool, error) {
	var used bool
	if err := c.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM version_files WHERE sha256 = ?)
		OR EXISTS (SELECT 1 FROM pending_files WHERE sha256 = ?)`, sha, sha).Scan(&used); err != nil {
		return false, fmt.Errorf("look up references to %s: %w", sha, err)
	}
	return used, nil
}
