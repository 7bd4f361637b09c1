package web

import (
	"fmt"
	"strings"
	"testing"

	"outpost/content/pack"
)

// TestLongCoursePages: a 450-item course is shown 200 items a page with
// working page links, and an item's previous/next cross lesson and page
// boundaries.
func TestLongCoursePages(t *testing.T) {
	e := newEnv(t)
	m := &pack.Manifest{Format: 1, ID: "long", Version: 1, Title: "Long", Language: "en"}
	files := map[string][]byte{}
	for l := range 9 {
		les := pack.Lesson{ID: fmt.Sprintf("l%d", l), Title: fmt.Sprintf("Lesson %d", l)}
		for i := range 50 {
			n := l*50 + i
			p := fmt.Sprintf("p/%03d.txt", n)
			files[p] = []byte(fmt.Sprintf("page %d", n))
			les.Items = append(les.Items, pack.Item{ID: fmt.Sprintf("i%03d", n), Kind: pack.KindDocument, Title: fmt.Sprintf("Item %03d", n), File: p})
		}
		m.Lessons = append(m.Lessons, les)
	}
	e.commit(m, files)

	count := func(page string) int { return strings.Count(page, `href="/c/long/i/`) }
	_, p1 := e.get("/c/long")
	if count(p1) != 200 || !strings.Contains(p1, `href="/c/long?page=2"`) || strings.Contains(p1, `rel="prev"`) {
		t.Fatalf("page 1: %d items, links wrong", count(p1))
	}
	_, p3 := e.get("/c/long?page=3")
	if count(p3) != 50 || !strings.Contains(p3, `rel="prev"`) || strings.Contains(p3, `rel="next"`) {
		t.Fatalf("page 3: %d items, links wrong", count(p3))
	}
	if !strings.Contains(p3, "Lesson 8") || strings.Contains(p3, "Lesson 3<") {
		t.Fatal("page 3 shows the wrong lessons")
	}
	// Item 200 opens lesson 4 and page 2; its neighbours are 199 (lesson 3) and 201.
	_, it := e.get("/c/long/i/i200")
	if !strings.Contains(it, `href="/c/long/i/i199"`) || !strings.Contains(it, `href="/c/long/i/i201"`) {
		t.Fatal("item 200 lacks its neighbours")
	}
	_, last := e.get("/c/long/i/i449")
	if strings.Contains(last, `rel="next"`) || !strings.Contains(last, `href="/c/long/i/i448"`) {
		t.Fatal("the last item should have a previous link and no next")
	}
}
