package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"outpost/content/pack"
)

// Filter narrows course listings and searches. Empty fields match all.
type Filter struct {
	Language string
	Subject  string
	Limit    int // 0 means a default of 200
	Offset   int
}

func (f Filter) limit() int {
	if f.Limit <= 0 || f.Limit > 1000 {
		return 200
	}
	return f.Limit
}

const visibleCourse = `FROM courses c JOIN course_versions v ON v.course_id = c.id AND v.version = c.current_version`

// courseCols are a course's summary, all stored in its course_versions row
// (counts included, computed at commit): no page pays for the size of a
// course to show its header.
const courseCols = `v.course_id, v.version, v.manifest_sha256, v.title, v.description, v.language, v.subjects, v.grades, v.imported_at, v.item_count, v.bytes`

// Courses lists visible courses, by title.
func (c *Catalog) Courses(ctx context.Context, f Filter) ([]Course, error) {
	q := `SELECT ` + courseCols + ` ` + visibleCourse
	where, args := f.where()
	q += where + ` ORDER BY v.title COLLATE NOCASE, v.course_id LIMIT ? OFFSET ?`
	args = append(args, f.limit(), f.Offset)
	rows, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list courses: %w", err)
	}
	defer rows.Close()
	var out []Course
	for rows.Next() {
		co, err := scanCourse(rows)
		if err != nil {
			return nil, fmt.Errorf("list courses: %w", err)
		}
		out = append(out, *co)
	}
	return out, rows.Err()
}

func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	if f.Language != "" {
		conds = append(conds, `v.language = ?`)
		args = append(args, f.Language)
	}
	if f.Subject != "" {
		conds = append(conds, `EXISTS (SELECT 1 FROM course_subjects s WHERE s.course_id = v.course_id AND s.version = v.version AND s.subject = ?)`)
		args = append(args, f.Subject)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

type scanner interface{ Scan(...any) error }

func scanCourse(r scanner) (*Course, error) {
	var co Course
	var subjects, grades string
	var at int64
	if err := r.Scan(&co.ID, &co.Version, &co.Sum, &co.Title, &co.Description, &co.Language, &subjects, &grades, &at, &co.ItemCount, &co.Bytes); err != nil {
		return nil, err
	}
	_ = json.Unmarshal([]byte(subjects), &co.Subjects)
	_ = json.Unmarshal([]byte(grades), &co.Grades)
	co.ImportedAt = time.Unix(at, 0)
	return &co, nil
}

// Course returns the visible version of a course with all its lessons and
// items. Pages use CourseWindow and ItemContext, which stay cheap for a
// course of 10,000 items.
func (c *Catalog) Course(ctx context.Context, id string) (*Course, error) {
	return c.CourseWindow(ctx, id, 0, -1)
}

// CourseWindow returns a course with the items at positions [offset,
// offset+limit) in lesson order (limit < 0: all), grouped under their
// lessons; lessons outside the window are left out. Lesson.Index keeps each
// lesson's place in the whole course.
func (c *Catalog) CourseWindow(ctx context.Context, id string, offset, limit int) (*Course, error) {
	co, err := c.courseSummary(ctx, id)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		offset = 0
	}
	irows, err := c.query(ctx, qWindowItems, co.ID, co.Version, offset, limit)
	if err != nil {
		return nil, fmt.Errorf("read items of %s: %w", id, err)
	}
	var items []*Item
	for irows.Next() {
		it, err := scanItem(irows)
		if err != nil {
			irows.Close()
			return nil, fmt.Errorf("read items of %s: %w", id, err)
		}
		items = append(items, it)
	}
	irows.Close()
	if err := irows.Err(); err != nil {
		return nil, fmt.Errorf("read items of %s: %w", id, err)
	}
	// Lessons of the window, plus (for a full listing) empty lessons too.
	q, args := qAllLessons, []any{co.ID, co.Version}
	if limit >= 0 {
		if len(items) == 0 {
			return co, nil
		}
		q = qWindowLessons
		args = append(args, items[0].Lesson, items[len(items)-1].Lesson)
	}
	lrows, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read lessons of %s: %w", id, err)
	}
	defer lrows.Close()
	at := map[int]int{} // lesson idx → position in co.Lessons
	for lrows.Next() {
		var l Lesson
		if err := lrows.Scan(&l.Index, &l.ID, &l.Title); err != nil {
			return nil, fmt.Errorf("read lessons of %s: %w", id, err)
		}
		at[l.Index] = len(co.Lessons)
		co.Lessons = append(co.Lessons, l)
	}
	if err := lrows.Err(); err != nil {
		return nil, fmt.Errorf("read lessons of %s: %w", id, err)
	}
	for _, it := range items {
		if i, ok := at[it.Lesson]; ok {
			co.Lessons[i].Items = append(co.Lessons[i].Items, *it)
		}
	}
	return co, nil
}

// The queries behind every page, named so a test can check their plans
// (content/catalog's TestPageQueriesUseIndexes): each reads a handful of
// rows through an index, whatever the size of the course.
const (
	qCourseSummary = `SELECT ` + courseCols + ` ` + visibleCourse + ` WHERE c.id = ?`
	qEdition       = `SELECT v.version, v.manifest_sha256 ` + visibleCourse + ` WHERE c.id = ?`
	// qWindowItems reads a window of a course by position; pos < 0 never
	// matches, limit < 0 means no limit.
	qWindowItems   = `SELECT ` + itemCols + ` FROM items WHERE course_id = ? AND version = ? AND pos >= ? ORDER BY pos LIMIT ?`
	qWindowLessons = `SELECT idx, lesson_id, title FROM lessons WHERE course_id = ? AND version = ? AND idx BETWEEN ? AND ? ORDER BY idx`
	qAllLessons    = `SELECT idx, lesson_id, title FROM lessons WHERE course_id = ? AND version = ? ORDER BY idx`
	// qItemInLesson is an item with its lesson: one lookup by item id, one
	// by the lesson's primary key.
	// (The item's columns are itemCols, qualified.)
	qItemInLesson = `SELECT i.course_id, i.item_id, i.kind, i.title, i.path, i.sha256, i.size, i.mime, i.entry, i.text_path, i.lesson_idx, i.idx, i.pos,
		l.idx, l.lesson_id, l.title FROM items i
		JOIN lessons l ON l.course_id = i.course_id AND l.version = i.version AND l.idx = i.lesson_idx
		WHERE i.course_id = ? AND i.version = ? AND i.item_id = ?`
	// qNeighbours are the items just before and after a position: two
	// lookups in the position index.
	qNeighbours  = `SELECT ` + itemCols + ` FROM items WHERE course_id = ? AND version = ? AND pos IN (?, ?) ORDER BY pos`
	qVisibleItem = `SELECT ` + itemCols + ` FROM items i WHERE i.course_id = ? AND i.item_id = ?
		AND i.version = (SELECT current_version FROM courses WHERE id = ?)`
	qVisibleFile = `SELECT vf.sha256, vf.size FROM version_files vf JOIN courses c ON c.id = vf.course_id AND c.current_version = vf.version
		WHERE vf.course_id = ? AND vf.path = ?`
)

// query and queryRow run a portal query through a statement prepared once
// per catalog (database/sql then prepares it once per pooled connection):
// parsing and planning a statement anew cost a quarter of an item page's
// CPU. Only queries written in this file come here, a few shapes each
// (filters add fixed conditions; what a user types is always an argument),
// so the statements kept are bounded by the code, not by requests.
func (c *Catalog) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (c *Catalog) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, q)
	if err != nil {
		// A Row cannot carry an error of its own; an unprepared query
		// reports the same error from Scan.
		return c.db.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (c *Catalog) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[q]; ok {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("prepare page query: %w", err)
	}
	if c.stmts == nil {
		c.stmts = map[string]*sql.Stmt{}
	}
	c.stmts[q] = st
	return st, nil
}

func (c *Catalog) courseSummary(ctx context.Context, id string) (*Course, error) {
	co, err := scanCourse(c.queryRow(ctx, qCourseSummary, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("course %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read course %s: %w", id, err)
	}
	return co, nil
}

// Edition identifies what a course's visible version holds: its version
// number and the SHA-256 of its manifest. The number alone is not enough:
// a course removed and imported again may carry the same number with other
// content. Whatever is derived from a course version alone (a rendered
// page) may be kept under its edition.
type Edition struct {
	Version int64
	Sum     string
}

// Edition returns the edition of a course's visible version: one lookup by
// primary key, cheap enough to ask on every page view.
func (c *Catalog) Edition(ctx context.Context, id string) (Edition, error) {
	var e Edition
	err := c.queryRow(ctx, qEdition, id).Scan(&e.Version, &e.Sum)
	if errors.Is(err, sql.ErrNoRows) {
		return Edition{}, fmt.Errorf("course %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Edition{}, fmt.Errorf("read course %s: %w", id, err)
	}
	return e, nil
}

// ItemContext is what an item page shows: its course (without lessons), its
// lesson (without items), the item and its neighbours in lesson order.
type ItemContext struct {
	Course     *Course
	Lesson     Lesson
	Item       Item
	Prev, Next *Item
}

// ItemContext looks up one item and its surroundings with three indexed
// queries, whatever the size of the course.
func (c *Catalog) ItemContext(ctx context.Context, courseID, itemID string) (*ItemContext, error) {
	co, err := c.courseSummary(ctx, courseID)
	if err != nil {
		return nil, err
	}
	ic := &ItemContext{Course: co}
	var kind string
	it := &ic.Item
	err = c.queryRow(ctx, qItemInLesson, co.ID, co.Version, itemID).Scan(&it.CourseID, &it.ID, &kind, &it.Title, &it.Path, &it.SHA256, &it.Size, &it.MIME, &it.Entry, &it.TextPath, &it.Lesson, &it.Index, &it.Pos,
		&ic.Lesson.Index, &ic.Lesson.ID, &ic.Lesson.Title)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("item %s/%s: %w", courseID, itemID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read item %s/%s: %w", courseID, itemID, err)
	}
	it.Kind = pack.Kind(kind)
	rows, err := c.query(ctx, qNeighbours, co.ID, co.Version, it.Pos-1, it.Pos+1)
	if err != nil {
		return nil, fmt.Errorf("read neighbours of %s/%s: %w", courseID, itemID, err)
	}
	defer rows.Close()
	for rows.Next() {
		n, err := scanItem(rows)
		if err != nil {
			return nil, fmt.Errorf("read neighbours of %s/%s: %w", courseID, itemID, err)
		}
		if n.Pos < it.Pos {
			ic.Prev = n
		} else {
			ic.Next = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read neighbours of %s/%s: %w", courseID, itemID, err)
	}
	return ic, nil
}

const itemCols = `course_id, item_id, kind, title, path, sha256, size, mime, entry, text_path, lesson_idx, idx, pos`

func scanItem(r scanner) (*Item, error) {
	var it Item
	var kind string
	if err := r.Scan(&it.CourseID, &it.ID, &kind, &it.Title, &it.Path, &it.SHA256, &it.Size, &it.MIME, &it.Entry, &it.TextPath, &it.Lesson, &it.Index, &it.Pos); err != nil {
		return nil, err
	}
	it.Kind = pack.Kind(kind)
	return &it, nil
}

// Item returns one item of a course's visible version.
func (c *Catalog) Item(ctx context.Context, courseID, itemID string) (*Item, error) {
	it, err := scanItem(c.queryRow(ctx, qVisibleItem, courseID, itemID, courseID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("item %s/%s: %w", courseID, itemID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read item %s/%s: %w", courseID, itemID, err)
	}
	return it, nil
}

// File returns the object of a pack path in a course's visible version (for
// downloads and transcripts).
func (c *Catalog) File(ctx context.Context, courseID, p string) (sha string, size int64, err error) {
	err = c.queryRow(ctx, qVisibleFile, courseID, p).Scan(&sha, &size)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, fmt.Errorf("file %s/%s: %w", courseID, p, ErrNotFound)
	}
	if err != nil {
		return "", 0, fmt.Errorf("look up file %s/%s: %w", courseID, p, err)
	}
	return sha, size, nil
}

// Hit is one search result: a course (ItemID empty) or an item.
type Hit struct {
	CourseID    string
	CourseTitle string
	ItemID      string
	ItemTitle   string
	Kind        pack.Kind
	Snippet     string // plain text with the matched words between \x02 and \x03
}

// Search finds courses and items whose titles or texts match the words of
// query. Words are matched as prefixes so "evapor" finds "evaporation"; FTS
// syntax in the query is neutralised, so user input cannot make it fail.
func (c *Catalog) Search(ctx context.Context, query string, f Filter) ([]Hit, error) {
	match := ftsQuery(query)
	if match == "" {
		return nil, nil
	}
	where, args := f.where()
	if where == "" {
		where = " WHERE "
	} else {
		where += " AND "
	}
	q := `SELECT s.course_id, v.title, s.item_id, coalesce(i.title, ''), coalesce(i.kind, ''),
			snippet(search, 4, char(2), char(3), '…', 12)
		FROM search s
		JOIN courses c ON c.id = s.course_id AND c.current_version = s.version
		JOIN course_versions v ON v.course_id = c.id AND v.version = c.current_version
		LEFT JOIN items i ON i.course_id = s.course_id AND i.version = s.version AND i.item_id = s.item_id` +
		where + ` search MATCH ? ORDER BY bm25(search, 0, 0, 0, 10, 1) LIMIT ? OFFSET ?`
	args = append(args, match, f.limit(), f.Offset)
	rows, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("search %q: %w", query, err)
	}
	defer rows.Close()
	var out []Hit
	for rows.Next() {
		var h Hit
		var kind string
		if err := rows.Scan(&h.CourseID, &h.CourseTitle, &h.ItemID, &h.ItemTitle, &kind, &h.Snippet); err != nil {
			return nil, fmt.Errorf("search %q: %w", query, err)
		}
		h.Kind = pack.Kind(kind)
		out = append(out, h)
	}
	return out, rows.Err()
}

// ftsQuery turns free text into an FTS5 query of quoted prefix terms, all of
// which must match.
func ftsQuery(q string) string {
	var terms []string
	for _, w := range strings.FieldsFunc(q, func(r rune) bool {
		return !(r == '\'' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 127)
	}) {
		w = strings.Trim(w, "'-")
		if w == "" {
			continue
		}
		terms = append(terms, `"`+strings.ReplaceAll(w, `"`, `""`)+`"*`)
		if len(terms) == 16 {
			break
		}
	}
	return strings.Join(terms, " ")
}

// Facets lists the languages and subjects of visible courses, for the
// portal's browse filters.
func (c *Catalog) Facets(ctx context.Context) (languages, subjects []string, err error) {
	languages, err = c.strings(ctx, `SELECT DISTINCT v.language `+visibleCourse+` ORDER BY 1`)
	if err != nil {
		return nil, nil, err
	}
	subjects, err = c.strings(ctx, `SELECT DISTINCT s.subject FROM courses c JOIN course_subjects s ON s.course_id = c.id AND s.version = c.current_version ORDER BY 1`)
	return languages, subjects, err
}

func (c *Catalog) strings(ctx context.Context, q string) ([]string, error) {
	rows, err := c.query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list facets: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("list facets: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
