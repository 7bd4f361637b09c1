package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestChangesValidate(t *testing.T) {
	good := func() *Changes {
		return &Changes{Cursor: 7, Courses: []CourseChange{{ID: "water-cycle", Version: 2, Manifest: []byte(`{"id":"water-cycle"}`),
			Patches: map[string][]string{sha("new"): {sha("v1"), sha("v0")}}}}, Removed: []string{"old.course_1"}}
	}
	bases := make([]string, MaxPatchBases+1)
	for i := range bases {
		bases[i] = sha(strings.Repeat("v", i))
	}
	cases := []struct {
		name   string
		change func(*Changes)
		ok     bool
	}{
		{"good", func(*Changes) {}, true},
		{"empty", func(c *Changes) { *c = Changes{} }, true},
		{"negative cursor", func(c *Changes) { c.Cursor = -1 }, false},
		{"empty course ID", func(c *Changes) { c.Courses[0].ID = "" }, false},
		{"upper-case course ID", func(c *Changes) { c.Courses[0].ID = "Water" }, false},
		{"course ID with a slash", func(c *Changes) { c.Courses[0].ID = "a/b" }, false},
		{"course ID starting with a dot", func(c *Changes) { c.Courses[0].ID = ".a" }, false},
		{"course ID of 129 bytes", func(c *Changes) { c.Courses[0].ID = strings.Repeat("a", 129) }, false},
		{"course listed twice", func(c *Changes) { c.Courses = append(c.Courses, c.Courses[0]) }, false},
		{"version 0", func(c *Changes) { c.Courses[0].Version = 0 }, false},
		{"no manifest", func(c *Changes) { c.Courses[0].Manifest = nil }, false},
		{"manifest over the limit", func(c *Changes) { c.Courses[0].Manifest = make([]byte, MaxManifest+1) }, false},
		{"patch target not a hash", func(c *Changes) { c.Courses[0].Patches = map[string][]string{"x": {sha("a")}} }, false},
		{"upper-case patch base", func(c *Changes) {
			c.Courses[0].Patches = map[string][]string{sha("n"): {strings.ToUpper(sha("a"))}}
		}, false},
		{"patch base with a query", func(c *Changes) { c.Courses[0].Patches = map[string][]string{sha("n"): {sha("a")[:60] + "&x=1"}} }, false},
		{"too many patch bases", func(c *Changes) { c.Courses[0].Patches = map[string][]string{sha("n"): bases} }, false},
		{"removed ID with ..", func(c *Changes) { c.Removed = []string{".."} }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.change(c)
			err := c.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

func TestBlocksRequestValidate(t *testing.T) {
	idx := func(n int) []int { return make([]int, n) }
	cases := []struct {
		name string
		req  BlocksRequest
		ok   bool
	}{
		{"empty", BlocksRequest{}, true},
		{"a full batch", BlocksRequest{Want: []WantBlocks{{File: sha("a"), Indexes: idx(MaxBlocksPerBatch)}}}, true},
		{"unknown file and negative index are the hub's to answer as missing", BlocksRequest{Want: []WantBlocks{{File: "nope", Indexes: []int{-1}}}}, true},
		{"one block too many", BlocksRequest{Want: []WantBlocks{{File: sha("a"), Indexes: idx(MaxBlocksPerBatch)}, {File: sha("b"), Indexes: idx(1)}}}, false},
		// Each file costs the hub a lookup even with no block asked for.
		{"too many files without blocks", BlocksRequest{Want: make([]WantBlocks, MaxBlocksPerBatch+1)}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}
