package wire

import (
	"fmt"
)

// Limits on what a decoded message may hold beyond its size: a message
// that passes Decode is well-formed JSON of the right shape, Validate says
// its contents are usable without further checks.
const (
	// MaxPatchBases bounds the old files offered as patch bases for one new
	// file. A hub keeps the last three versions of a course, so three
	// suffice; the margin leaves room for a hub that keeps more.
	MaxPatchBases = 16
	// MaxManifest bounds one course manifest inside a changes message; it
	// equals the pack format's own limit (content/pack MaxManifestSize).
	MaxManifest = 16 << 20
	// MaxCourseID is the longest course ID the pack format allows.
	MaxCourseID = 128
)

// Validate checks a changes message from the upstream before the box acts
// on it: a cursor it can send back, course IDs and versions the catalog
// accepts, manifests within the pack format's limit, and patch offers that
// name files by SHA-256 in bounded number. Every error wraps ErrMalformed.
func (c *Changes) Validate() error {
	if c.Cursor < 0 {
		return fmt.Errorf("changes: %w: cursor %d is negative", ErrMalformed, c.Cursor)
	}
	seen := make(map[string]bool, len(c.Courses))
	for i := range c.Courses {
		cc := &c.Courses[i]
		if err := checkCourseID(cc.ID); err != nil {
			return fmt.Errorf("changes: course %d: %w", i, err)
		}
		if seen[cc.ID] {
			return fmt.Errorf("changes: %w: course %s is listed twice", ErrMalformed, cc.ID)
		}
		seen[cc.ID] = true
		if cc.Version < 1 {
			return fmt.Errorf("changes: course %s: %w: version %d", cc.ID, ErrMalformed, cc.Version)
		}
		if len(cc.Manifest) == 0 || len(cc.Manifest) > MaxManifest {
			return fmt.Errorf("changes: course %s: %w: manifest of %d bytes", cc.ID, ErrMalformed, len(cc.Manifest))
		}
		for to, froms := range cc.Patches {
			if !isSHA256(to) {
				return fmt.Errorf("changes: course %s: %w: patch target %q is not a SHA-256", cc.ID, ErrMalformed, to)
			}
			if len(froms) > MaxPatchBases {
				return fmt.Errorf("changes: course %s: %w: %d patch bases for one file (at most %d)", cc.ID, ErrMalformed, len(froms), MaxPatchBases)
			}
			for _, from := range froms {
				if !isSHA256(from) {
					return fmt.Errorf("changes: course %s: %w: patch base %q is not a SHA-256", cc.ID, ErrMalformed, from)
				}
			}
		}
	}
	for _, id := range c.Removed {
		if err := checkCourseID(id); err != nil {
			return fmt.Errorf("changes: removed course: %w", err)
		}
	}
	return nil
}

// Validate checks a blocks request before the hub does any work for it:
// at most MaxBlocksPerBatch blocks, and at most as many files, since each
// file costs the hub a lookup even when no block of it is asked for.
// Unknown files and out-of-range indexes are not errors: the hub answers
// them with Missing frames, as it always has.
func (r *BlocksRequest) Validate() error {
	if len(r.Want) > MaxBlocksPerBatch {
		return fmt.Errorf("blocks request: %w: %d files (at most %d)", ErrMalformed, len(r.Want), MaxBlocksPerBatch)
	}
	n := 0
	for _, w := range r.Want {
		n += len(w.Indexes)
	}
	if n > MaxBlocksPerBatch {
		return fmt.Errorf("blocks request: %w: %d blocks (at most %d)", ErrMalformed, n, MaxBlocksPerBatch)
	}
	return nil
}

func checkCourseID(id string) error {
	if id == "" || len(id) > MaxCourseID {
		return fmt.Errorf("%w: course ID of %d bytes", ErrMalformed, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (i > 0 && (c == '.' || c == '_' || c == '-')) {
			continue
		}
		return fmt.Errorf("%w: course ID %q has a character packs do not allow", ErrMalformed, id)
	}
	return nil
}

// isSHA256 is 64 lowercase hex digits, the form manifests name files by
// (a patch offer comes from a manifest, so it never needs upper case).
func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
