package patch

import (
	"bytes"
	"io"
	"runtime"
	"testing"
)

// bytesAllocated returns the heap bytes f allocates. Tests using it must
// not run in parallel with others, or they count foreign allocations.
func bytesAllocated(f func()) int64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return int64(after.TotalAlloc - before.TotalAlloc)
}

// TestDecodeMemory checks the box-side bound: decoding a full segment
// allocates the output, the buffered patch and a small constant, never a
// second copy of the output or of the window.
func TestDecodeMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MiB window")
	}
	old := random(51, 24<<20)
	for _, c := range []struct {
		name string
		new  []byte
	}{
		{"insert 1 MB", concat(old[:12<<20], random(52, 1_000_000), old[12<<20:])},
		{"unrelated", random(53, 24<<20)},
	} {
		const seg = 1
		newSize := int64(len(c.new))
		start, end := SegmentRange(newSize, seg)
		w := ChooseWindow(int64(len(old)), newSize, seg, -1)
		var buf bytes.Buffer
		if _, err := Encode(&buf, bytes.NewReader(old), int64(len(old)), w, bytes.NewReader(c.new), newSize, seg); err != nil {
			t.Fatal(err)
		}
		patch := buf.Bytes()
		dict := old[w.Offset : w.Offset+w.Length]
		for _, r := range []struct {
			kind string
			r    func() io.Reader
			// Allowed patch buffer allocation, in patch sizes: exact when
			// the reader tells its length, else doubling from 64 KiB.
			patchFactor int64
		}{
			{"bytes.Reader", func() io.Reader { return bytes.NewReader(patch) }, 1},
			{"io.SectionReader", func() io.Reader { return io.NewSectionReader(bytes.NewReader(patch), 0, int64(len(patch))) }, 1},
			// Doubling from 64 KiB: the buffers sum to under twice the
			// last, which is under twice the patch.
			{"plain reader", func() io.Reader { return struct{ io.Reader }{bytes.NewReader(patch)} }, 4},
		} {
			var out []byte
			var err error
			n := bytesAllocated(func() { out, err = Decode(r.r(), dict, end-start) })
			if err != nil || !bytes.Equal(out, c.new[start:end]) {
				t.Fatalf("%s, %s: round trip failed: %v", c.name, r.kind, err)
			}
			t.Logf("%s, %s: Decode of %d bytes from a %d-byte patch with a %d-byte window allocated %d bytes (%d over output+patch)",
				c.name, r.kind, end-start, len(patch), len(dict), n, n-(end-start)-int64(len(patch)))
			if limit := (end - start) + r.patchFactor*int64(len(patch)) + 1<<20; n > limit {
				t.Errorf("%s, %s: Decode allocated %d bytes, more than %d", c.name, r.kind, n, limit)
			}
		}
	}
}
