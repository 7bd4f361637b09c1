package patch

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode checks the box-side promise: whatever the patch bytes, Decode
// neither panics nor returns more than maxOut bytes, and reports malformed
// input as ErrCorrupt.
func FuzzDecode(f *testing.F) {
	patch, dict, want := smallPatch(f)
	f.Add(patch, uint32(len(want)), true)
	f.Add(patch, uint32(len(want)-1), true)
	f.Add(patch[:len(patch)/2], uint32(len(want)), true)
	f.Add(patch, uint32(len(want)), false)

	// A patch that is mostly references, one that is mostly literals, and
	// one made without a dictionary.
	// Seeds are kept to a few KiB: the fuzzer minimizes every new input,
	// and minimizing a large one stalls fuzzing for up to a minute.
	old := random(81, 8<<10)
	for _, new := range [][]byte{
		concat(old[:3000], random(82, 100), old[3000:]),
		concat(old[:100], random(83, 1500), old[4000:]),
	} {
		var buf bytes.Buffer
		w := ChooseWindow(int64(len(old)), int64(len(new)), 0, -1)
		if _, err := Encode(&buf, bytes.NewReader(old), int64(len(old)), w, bytes.NewReader(new), int64(len(new)), 0); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes(), uint32(len(new)), false)
	}
	var buf bytes.Buffer
	text := htmlPage(84, 2000)
	if _, err := Encode(&buf, bytes.NewReader(nil), 0, Window{}, bytes.NewReader(text), int64(len(text)), 0); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes(), uint32(len(text)), false)
	f.Add(rleBomb(3), uint32(200<<10), false)

	f.Fuzz(func(t *testing.T, patch []byte, maxOut uint32, useDict bool) {
		// Decode allocates maxOut up front; larger values only slow the
		// fuzzer down without reaching other code.
		limit := int64(maxOut % (256<<10 + 1))
		d := old
		if useDict {
			d = dict
		}
		out, err := Decode(bytes.NewReader(patch), d, limit)
		if int64(len(out)) > limit {
			t.Fatalf("%d bytes out for maxOut %d", len(out), limit)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
	})
}
