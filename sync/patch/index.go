package patch

import (
	"fmt"
	"io"
)

// Content moved by more than ChooseWindow's margin (for example a large
// insertion early in a file) falls partly or wholly outside the centred
// window, and the patch carries what it misses as literals
// (TestShiftedInsertion measures it).
// Searching the old file for each segment would cost O(oldSize) per
// segment, quadratic for a large file. Instead the hub indexes the old file
// once, at content-defined anchors, and each segment votes for the shift
// its anchors agree on: O(oldSize + newSize) per (O, N) pair, a few percent
// of the encoding time.

const (
	// anchorContext is how many trailing bytes decide a gear hash: each
	// step shifts the hash left by one bit, so older bytes fall out.
	anchorContext = 64

	// anchorBits sets the anchor density to one per 2^anchorBits bytes on
	// average: 512 votes per full segment, and about 4 MiB of index per GiB
	// of old file.
	anchorBits = 14
)

// gear maps bytes to fixed pseudo-random values for the rolling hash. The
// values only need to be well mixed and identical on every run; they come
// from the splitmix64 sequence with a fixed seed.
var gear = func() (g [256]uint64) {
	x := uint64(0x6f7574706f7374) // "outpost"
	for i := range g {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		g[i] = z ^ z>>31
	}
	return g
}()

// ambiguous marks an anchor hash seen more than once in the old file
// (zero padding, repeated structures): it cannot tell where content moved.
const ambiguous = -1

// Index locates content-defined anchors of an old file, so that the hub
// can estimate per segment where the new content came from (see Hint).
type Index struct {
	anchors map[uint64]int64
}

// anchorScanner rolls a gear hash over a byte stream and reports anchors:
// positions at least anchorContext bytes into the stream (earlier hashes
// depend on where the stream starts, not only on content) whose hash has
// its top anchorBits bits clear.
type anchorScanner struct {
	h   uint64
	pos int64
}

func (s *anchorScanner) scan(p []byte, anchor func(h uint64, pos int64)) {
	for _, b := range p {
		s.h = s.h<<1 + gear[b]
		s.pos++
		if s.h>>(64-anchorBits) == 0 && s.pos >= anchorContext {
			anchor(s.h, s.pos)
		}
	}
}

// NewIndex reads the old file once and indexes its anchors.
func NewIndex(old io.ReaderAt, oldSize int64) (*Index, error) {
	x := &Index{anchors: make(map[uint64]int64, oldSize>>anchorBits)}
	var s anchorScanner
	add := func(h uint64, pos int64) {
		if _, dup := x.anchors[h]; dup {
			x.anchors[h] = ambiguous
		} else {
			x.anchors[h] = pos
		}
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < oldSize; {
		p := buf[:min(int64(len(buf)), oldSize-off)]
		if _, err := readFull(old, p, off); err != nil {
			return nil, fmt.Errorf("patch: index old file at offset %d: %w", off, err)
		}
		s.scan(p, add)
		off += int64(len(p))
	}
	return x, nil
}

// Hint estimates the old-file offset where the content of a new-file
// segment starts, for ChooseWindow. seg holds the segment's bytes and
// segStart its new-file offset. Each anchor found in both files votes for
// how far its content moved; the move most anchors agree on wins (the
// smallest on a tie), so a segment straddling an edit follows its larger
// part. It returns -1 (unknown) when no anchor matches, as for data
// unrelated to the old file.
func (x *Index) Hint(seg []byte, segStart int64) int64 {
	votes := make(map[int64]int)
	var s anchorScanner
	s.scan(seg, func(h uint64, pos int64) {
		if oldEnd, ok := x.anchors[h]; ok && oldEnd != ambiguous {
			votes[segStart+pos-oldEnd]++
		}
	})
	var best int64
	bestVotes := 0
	for shift, n := range votes {
		if n > bestVotes || n == bestVotes && closer(shift, best) {
			best, bestVotes = shift, n
		}
	}
	if bestVotes == 0 {
		return -1
	}
	// A segment that starts with inserted bytes followed by content from
	// near the old file's start maps its first byte before offset 0. As a
	// window position that is the same as 0, and negative means unknown.
	return max(segStart-best, 0)
}

// closer orders candidate shifts deterministically, preferring small ones
// because they keep the window near the segment's own offset.
func closer(a, b int64) bool {
	aa, ab := max(a, -a), max(b, -b)
	if aa != ab {
		return aa < ab
	}
	return a < b
}
