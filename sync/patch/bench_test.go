package patch

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkEncode25MiB measures hub CPU for the 1 MB insertion into a
// 25 MiB file, all segments; MB/s is of new-file bytes.
func BenchmarkEncode25MiB(b *testing.B) {
	old := random(1, 25<<20)
	new := concat(old[:len(old)/2], random(3, 1_000_000), old[len(old)/2:])
	oldR, newR := bytes.NewReader(old), bytes.NewReader(new)
	oldSize, newSize := int64(len(old)), int64(len(new))
	b.SetBytes(newSize)
	var total int64
	for b.Loop() {
		total = 0
		for seg := range Segments(newSize) {
			w := ChooseWindow(oldSize, newSize, seg, -1)
			n, err := Encode(io.Discard, oldR, oldSize, w, newR, newSize, seg)
			if err != nil {
				b.Fatal(err)
			}
			total += n
		}
	}
	b.ReportMetric(float64(total), "patch-bytes")
}

// BenchmarkDecodeSegment measures box CPU for one full segment of the same
// insertion case.
func BenchmarkDecodeSegment(b *testing.B) {
	old := random(1, 25<<20)
	new := concat(old[:len(old)/2], random(3, 1_000_000), old[len(old)/2:])
	oldSize, newSize := int64(len(old)), int64(len(new))
	const seg = 1
	start, end := SegmentRange(newSize, seg)
	w := ChooseWindow(oldSize, newSize, seg, -1)
	var buf bytes.Buffer
	if _, err := Encode(&buf, bytes.NewReader(old), oldSize, w, bytes.NewReader(new), newSize, seg); err != nil {
		b.Fatal(err)
	}
	dict := old[w.Offset : w.Offset+w.Length]
	b.SetBytes(end - start)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(buf.Bytes()), dict, end-start); err != nil {
			b.Fatal(err)
		}
	}
}
