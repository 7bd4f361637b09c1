package catalog

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"outpost/appliance/database/databasetest"
	"outpost/content/pack"
)

// largeManifest is a course of n items in lessons of 10, all sharing one
// file: enough rows that SQLite's planner sees real tables.
func largeManifest(id string, n int) *pack.Manifest {
	m := &pack.Manifest{Format: 1, ID: id, Version: 1, Title: "Large " + id, Language: "en",
		Files: map[string]pack.File{"a.txt": {SHA256: strings.Repeat("ab", 32), Size: 3}}}
	for i := range n {
		if i%10 == 0 {
			m.Lessons = append(m.Lessons, pack.Lesson{ID: fmt.Sprintf("l%d", i/10), Title: fmt.Sprintf("L%d", i/10)})
		}
		l := &m.Lessons[len(m.Lessons)-1]
		l.Items = append(l.Items, pack.Item{ID: fmt.Sprintf("i%d", i), Kind: pack.KindDocument, Title: fmt.Sprintf("Item %d", i), File: "a.txt"})
	}
	return m
}

// TestPageQueriesUseIndexes: every query behind the portal's course and
// item pages reads a bounded number of rows through an index. A plan that
// scans a table, sorts, or searches items, lessons or files by the course
// and version alone (an aggregate over the course, an OR the planner cannot
// use, an OFFSET) costs in proportion to the course: 39 ms a page at 50,000
// items. Plans are checked instead of timings, which vary with the machine.
func TestPageQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	db := databasetest.Open(t)
	c := New(db)
	for _, id := range []string{"big", "other"} {
		m := largeManifest(id, 500)
		raw, _ := m.Marshal()
		if _, err := c.Commit(ctx, m, raw, nil); err != nil {
			t.Fatal(err)
		}
	}
	queries := []struct {
		name, sql string
		args      []any
	}{
		{"course summary", qCourseSummary, []any{"big"}},
		{"course window items", qWindowItems, []any{"big", 1, 200, 200}},
		{"course window lessons", qWindowLessons, []any{"big", 1, 20, 39}},
		{"course edition", qEdition, []any{"big"}},
		{"item and its lesson", qItemInLesson, []any{"big", 1, "i250"}},
		{"neighbours", qNeighbours, []any{"big", 1, 249, 251}},
		{"media item", qVisibleItem, []any{"big", "i250", "big"}},
		{"file", qVisibleFile, []any{"big", "a.txt"}},
	}
	// Tables (and the aliases the queries give them) with rows per item or
	// file of a course, and the constraints that pick a whole course of
	// them: a search by these alone reads every row of a course.
	perCourse := map[string]bool{"items": true, "i": true, "lessons": true, "version_files": true, "vf": true}
	courseWide := regexp.MustCompile(`^\((course_id=\?|id=\?)( AND version=\?)?\)$`)
	for _, q := range queries {
		rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q.sql, q.args...)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, d := range plan {
			bad := ""
			switch {
			case strings.HasPrefix(d, "SCAN"):
				bad = "scans a table"
			case strings.Contains(d, "TEMP B-TREE"):
				bad = "sorts its rows"
			case strings.HasPrefix(d, "SEARCH") && perCourse[strings.Fields(d)[1]]:
				if i := strings.Index(d, "("); i < 0 || courseWide.MatchString(d[i:]) {
					bad = "reads every row of the course"
				}
			}
			if bad != "" {
				t.Errorf("%s %s: %q\nplan: %s\nquery: %s", q.name, bad, d, strings.Join(plan, " | "), q.sql)
			}
		}
	}
}

// TestCourseRowHoldsNoManifest: the course summary every page reads lives
// in course_versions; a manifest there (16 MB at 50,000 items) made each
// read walk its overflow pages to reach the columns after it.
func TestCourseRowHoldsNoManifest(t *testing.T) {
	db := databasetest.Open(t)
	rows, err := db.Query(`SELECT name, type FROM pragma_table_info('course_versions')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, typ string
		rows.Scan(&name, &typ)
		if typ == "BLOB" || name == "manifest" {
			t.Errorf("course_versions has column %s %s; keep large values out of the row pages read", name, typ)
		}
	}
}

// TestItemContextAndWindows: neighbours cross lesson boundaries, windows
// start where asked, and the counts are the course's.
func TestItemContextAndWindows(t *testing.T) {
	ctx := context.Background()
	c := New(databasetest.Open(t))
	m := largeManifest("big", 35)
	raw, _ := m.Marshal()
	if _, err := c.Commit(ctx, m, raw, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ item, prev, next, lesson string }{
		{"i0", "", "i1", "l0"}, {"i9", "i8", "i10", "l0"}, {"i10", "i9", "i11", "l1"}, {"i34", "i33", "", "l3"},
	} {
		ic, err := c.ItemContext(ctx, "big", tc.item)
		if err != nil {
			t.Fatal(err)
		}
		id := func(it *Item) string {
			if it == nil {
				return ""
			}
			return it.ID
		}
		if id(ic.Prev) != tc.prev || id(ic.Next) != tc.next || ic.Lesson.ID != tc.lesson || ic.Course.ItemCount != 35 || ic.Course.Bytes != 3 {
			t.Errorf("%s: prev %q next %q lesson %q count %d bytes %d; want %q %q %q 35 3",
				tc.item, id(ic.Prev), id(ic.Next), ic.Lesson.ID, ic.Course.ItemCount, ic.Course.Bytes, tc.prev, tc.next, tc.lesson)
		}
	}
	co, err := c.CourseWindow(ctx, "big", 18, 4)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range co.Lessons {
		for _, it := range l.Items {
			got = append(got, l.ID+"/"+it.ID)
		}
	}
	if want := "l1/i18 l1/i19 l2/i20 l2/i21"; strings.Join(got, " ") != want {
		t.Errorf("window 18+4 = %v, want %s", got, want)
	}
	full, err := c.Course(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Lessons) != 4 || len(full.Lessons[3].Items) != 5 {
		t.Errorf("whole course: %d lessons", len(full.Lessons))
	}
}
