package loadgen

import (
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits buckets, so a reported latency is within 1/64 (1.6 %) of the
// true one. A fixed-size histogram keeps memory flat however long a run
// lasts, and merging the clients' histograms is a sum.
const subBits = 6

// numBuckets covers every positive int64 nanosecond count.
const numBuckets = 64 << subBits

type histogram struct {
	counts [numBuckets]int64
	n      int64
}

// bucketOf maps a duration to its bucket: values below 2^subBits ns are
// exact, larger ones keep their top subBits+1 significant bits.
func bucketOf(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	m := v >> shift // in [2^subBits, 2^(subBits+1))
	return (shift+1)<<subBits | int(m-1<<subBits)
}

// bucketMax is the largest duration that falls in bucket i; quantiles
// report it so they never understate a latency.
func bucketMax(i int) time.Duration {
	if i < 1<<subBits {
		return time.Duration(i)
	}
	shift := i>>subBits - 1
	m := uint64(1<<subBits + i&(1<<subBits-1))
	return time.Duration((m+1)<<shift - 1)
}

func (h *histogram) add(d time.Duration) {
	h.counts[bucketOf(d)]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0 < q <= 1) of the recorded durations,
// or 0 when nothing was recorded.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	// The rank of the q-quantile, 1-based, rounded up: p99 of 100 samples is
	// the 99th smallest.
	rank := int64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++
	}
	rank = min(max(rank, 1), h.n)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return bucketMax(i)
		}
	}
	return bucketMax(numBuckets - 1)
}
