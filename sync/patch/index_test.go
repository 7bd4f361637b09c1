package patch

import (
	"bytes"
	"testing"
	"time"
)

func TestIndexHint(t *testing.T) {
	const mib = 1 << 20
	old := random(61, 40*mib)
	x, err := NewIndex(bytes.NewReader(old), int64(len(old)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		new  []byte
		want []int64 // per segment
	}{
		{"same", old, []int64{0, 8 * mib, 16 * mib, 24 * mib, 32 * mib}},
		// Segment 0 holds 1 MiB of old data in place, then the new bytes;
		// later segments are old data moved by the insertion.
		{"7 MiB inserted at 1 MiB", concat(old[:mib], random(62, 7*mib), old[mib:]),
			[]int64{0, 1 * mib, 9 * mib, 17 * mib, 25 * mib, 33 * mib}},
		// Segment 0 holds 3 MiB in place and 5 MiB moved: the 5 MiB win.
		{"10 MiB deleted at 3 MiB", concat(old[:3*mib], old[13*mib:]),
			[]int64{10 * mib, 18 * mib, 26 * mib, 34 * mib}},
		{"unrelated", random(63, 10*mib), []int64{-1, -1}},
	} {
		if n := Segments(int64(len(c.new))); n != len(c.want) {
			t.Fatalf("%s: %d segments, test expects %d", c.name, n, len(c.want))
		}
		for seg, want := range c.want {
			start, end := SegmentRange(int64(len(c.new)), seg)
			if got := x.Hint(c.new[start:end], start); got != want {
				t.Errorf("%s: segment %d: hint %d, want %d", c.name, seg, got, want)
			}
		}
	}
}

// TestIndexRepetitive checks that content repeated throughout the old file
// (padding, a repeated pattern) cannot vote: it says nothing about where
// content moved.
func TestIndexRepetitive(t *testing.T) {
	zeros := make([]byte, 4<<20)
	// Random, so that it has anchors, but every anchor occurs 64 times.
	repeated := bytes.Repeat(random(64, 64<<10), 64)
	for i, old := range [][]byte{zeros, repeated} {
		x, err := NewIndex(bytes.NewReader(old), int64(len(old)))
		if err != nil {
			t.Fatal(err)
		}
		if len(x.anchors) == 0 && i == 1 {
			t.Fatal("no anchors in repeated random data: the test proves nothing")
		}
		for _, pos := range x.anchors {
			if pos != ambiguous {
				t.Fatalf("anchor at %d in a repetitive file is not marked ambiguous", pos)
			}
		}
		if got := x.Hint(old[1000:], 0); got != -1 {
			t.Errorf("repetitive data: hint %d, want -1 (unknown)", got)
		}
	}
}

func TestIndexShortRead(t *testing.T) {
	if _, err := NewIndex(bytes.NewReader(make([]byte, 10)), 100); err == nil {
		t.Error("NewIndex accepted an old file shorter than oldSize")
	}
}

// BenchmarkIndex reports the hub's extra cost for Index.Hint: one pass
// over the old file and one over each segment.
func BenchmarkIndex(b *testing.B) {
	old := random(71, 25<<20)
	b.SetBytes(int64(len(old)))
	var x *Index
	for b.Loop() {
		var err error
		x, err = NewIndex(bytes.NewReader(old), int64(len(old)))
		if err != nil {
			b.Fatal(err)
		}
	}
	t0 := time.Now()
	x.Hint(old[8<<20:16<<20], 8<<20)
	b.ReportMetric(float64(time.Since(t0).Microseconds()), "µs/segment-hint")
	b.ReportMetric(float64(len(x.anchors)), "anchors")
}
