package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"outpost/appliance/database/databasetest"
	"outpost/content/pack"
)

func sampleCatalog(t testing.TB) *Catalog {
	t.Helper()
	db := databasetest.Open(t)
	c := New(db)
	sum := sha256.Sum256([]byte("x"))
	h := hex.EncodeToString(sum[:])
	for _, m := range []*pack.Manifest{
		{Format: 1, ID: "fractions", Version: 1, Title: "Fractions", Description: "Halves and quarters", Language: "en", Subjects: []string{"math"},
			Lessons: []pack.Lesson{{ID: "l", Title: "L", Items: []pack.Item{{ID: "v", Kind: pack.KindVideo, Title: "Number line", File: "a.webm", Text: "denominator"}}}},
			Files:   map[string]pack.File{"a.webm": {SHA256: h, Size: 1}}},
		{Format: 1, ID: "plantes", Version: 1, Title: "Les plantes", Description: "Photosynthèse et chlorophylle", Language: "fr", Subjects: []string{"science"},
			Lessons: []pack.Lesson{{ID: "l", Title: "L", Items: []pack.Item{{ID: "p", Kind: pack.KindPDF, Title: "Fiche", File: "a.pdf"}}}},
			Files:   map[string]pack.File{"a.pdf": {SHA256: h, Size: 1}}},
	} {
		raw, _ := m.Marshal()
		if _, err := c.Commit(context.Background(), m, raw, nil); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestSearchAndFilters(t *testing.T) {
	ctx := context.Background()
	c := sampleCatalog(t)
	cases := []struct {
		q    string
		f    Filter
		want []string // course/item ids
	}{
		{"denomin", Filter{}, []string{"fractions/v"}},
		{"photosynthese", Filter{}, []string{"plantes/"}}, // diacritics folded
		{"fractions", Filter{Language: "fr"}, nil},
		{"chlorophylle", Filter{Subject: "science"}, []string{"plantes/"}},
		{"chlorophylle", Filter{Subject: "math"}, nil},
	}
	for _, tc := range cases {
		hits, err := c.Search(ctx, tc.q, tc.f)
		if err != nil {
			t.Fatalf("%q: %v", tc.q, err)
		}
		var got []string
		for _, h := range hits {
			got = append(got, h.CourseID+"/"+h.ItemID)
		}
		if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
			t.Errorf("search %q %+v = %v, want %v", tc.q, tc.f, got, tc.want)
		}
	}
	cs, _ := c.Courses(ctx, Filter{Language: "en"})
	if len(cs) != 1 || cs[0].ID != "fractions" {
		t.Fatalf("language filter: %+v", cs)
	}
	langs, subjects, _ := c.Facets(ctx)
	if len(langs) != 2 || len(subjects) != 2 {
		t.Fatalf("facets %v %v", langs, subjects)
	}
}

// FuzzSearch: whatever a user types into the search box, search answers
// without an error (FTS5 syntax in the input is neutralised).
func FuzzSearch(f *testing.F) {
	for _, s := range []string{"fractions", `"unclosed`, "a AND OR NOT", "col:val", "*", "NEAR(a b)", "'", "-x", "é^", "\x00"} {
		f.Add(s)
	}
	c := sampleCatalog(f)
	f.Fuzz(func(t *testing.T, q string) {
		if _, err := c.Search(context.Background(), q, Filter{}); err != nil {
			t.Fatalf("search %q: %v", q, err)
		}
	})
}

// TestEdition: a course's edition changes whenever what it shows may:
// with a new version, and with the same version number imported again
// with other content after a removal (the number alone would say nothing
// changed, and a page kept under it would show the removed pack).
func TestEdition(t *testing.T) {
	ctx := context.Background()
	c := New(databasetest.Open(t))
	if _, err := c.Edition(ctx, "big"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("edition of a course not on the box: %v, want ErrNotFound", err)
	}
	commit := func(m *pack.Manifest) Edition {
		t.Helper()
		raw, _ := m.Marshal()
		if _, err := c.Commit(ctx, m, raw, nil); err != nil {
			t.Fatal(err)
		}
		e, err := c.Edition(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		co, err := c.CourseWindow(ctx, m.ID, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		if co.Edition() != e {
			t.Errorf("the course says edition %v, Edition %v", co.Edition(), e)
		}
		return e
	}
	first := commit(largeManifest("big", 20))
	m := largeManifest("big", 20)
	m.Version = 2
	second := commit(m)
	if second == first || second.Version != 2 {
		t.Errorf("version 2's edition %v, version 1's %v", second, first)
	}
	if err := c.Remove(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	m = largeManifest("big", 21)
	m.Version = 2
	if again := commit(m); again == second || again.Version != 2 {
		t.Errorf("other content under version 2: edition %v, the removed one's %v", again, second)
	}
}
