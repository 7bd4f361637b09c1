package linkemu

import "math/rand/v2"

// schedule draws the gaps, in link bytes, between scheduled cuts.
type schedule struct {
	rng    *rand.Rand
	lo, hi int64
}

// scheduleStream separates the cut generator's stream from any other PCG a
// caller seeds with the same number.
const scheduleStream = 0x6c696e6b656d75 // "linkemu"

func newSchedule(seed, mean int64) *schedule {
	// A gap of 0 would cut before the byte that was meant to be the first
	// of the new segment, i.e. cut twice at one offset.
	return &schedule{
		rng: rand.New(rand.NewPCG(uint64(seed), scheduleStream)),
		lo:  max(mean/2, 1),
		hi:  max(mean+mean/2, 1), // mean*3/2 without the overflow
	}
}

func (s *schedule) next() int64 {
	return s.lo + s.rng.Int64N(s.hi-s.lo+1)
}

// CutSchedule returns the link byte offsets of the first n cuts a proxy
// with the given Seed and CutMeanBytes makes (MaxCuts aside), so a test can
// know in advance where its transfer will be interrupted. It returns nil if
// meanBytes is not positive.
func CutSchedule(seed, meanBytes int64, n int) []int64 {
	if meanBytes <= 0 || meanBytes > maxCutMean || n <= 0 {
		return nil
	}
	s := newSchedule(seed, meanBytes)
	offsets := make([]int64, n)
	var at int64
	for i := range offsets {
		at += s.next()
		offsets[i] = at
	}
	return offsets
}
