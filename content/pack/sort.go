package pack

import "sort"

// sortProblems orders problems by field so the same pack always produces the
// same message (map iteration over files is random).
func sortProblems(p []*FieldError) {
	sort.SliceStable(p, func(i, j int) bool { return p[i].Field < p[j].Field })
}
