package patch

import (
	"bytes"
	"errors"
	"math/rand"
	"strings"
	"testing"
)

// random returns n bytes from a fixed seed: incompressible, so a patch can
// only be small by referencing the old file.
func random(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

var words = strings.Fields(`the a of to and in is for on with as by at from
	course lesson student teacher video chapter exercise answer question page
	read write learn school box hub file sync network offline water health
	mathematics science history language reading practice example figure`)

// sentence returns a pseudo-English sentence, so HTML tests see the skewed
// byte statistics of real pages rather than random bytes.
func sentence(r *rand.Rand) string {
	n := 6 + r.Intn(12)
	ws := make([]string, n)
	for i := range ws {
		ws[i] = words[r.Intn(len(words))]
	}
	s := strings.Join(ws, " ")
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// htmlPage returns a page of about size bytes made of paragraphs of sentences.
func htmlPage(seed int64, size int) []byte {
	r := rand.New(rand.NewSource(seed))
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><title>Lesson</title></head><body>\n")
	for b.Len() < size {
		b.WriteString("<p>")
		for i := 0; i < 3+r.Intn(4); i++ {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(sentence(r))
		}
		b.WriteString("</p>\n")
	}
	b.WriteString("</body></html>\n")
	return []byte(b.String())
}

func concat(parts ...[]byte) []byte {
	return bytes.Join(parts, nil)
}

// result is what a round trip measured.
type result struct {
	patch []int64 // patch bytes per segment
	total int64
}

// roundTrip patches old into new segment by segment, as hub and box would,
// and checks each decoded segment against the new data. hint, if not nil,
// gives the hint passed to ChooseWindow.
func roundTrip(t testing.TB, old, new []byte, hint func(seg []byte, start int64) int64) result {
	t.Helper()
	oldR, newR := bytes.NewReader(old), bytes.NewReader(new)
	oldSize, newSize := int64(len(old)), int64(len(new))
	var res result
	for seg := range Segments(newSize) {
		start, end := SegmentRange(newSize, seg)
		h := int64(-1)
		if hint != nil {
			h = hint(new[start:end], start)
		}
		w := ChooseWindow(oldSize, newSize, seg, h)
		var buf bytes.Buffer
		n, err := Encode(&buf, oldR, oldSize, w, newR, newSize, seg)
		if err != nil {
			t.Fatalf("segment %d: %v", seg, err)
		}
		if n != int64(buf.Len()) {
			t.Fatalf("segment %d: Encode reported %d bytes, wrote %d", seg, n, buf.Len())
		}
		got, err := Decode(&buf, old[w.Offset:w.Offset+w.Length], end-start)
		if err != nil {
			t.Fatalf("segment %d: %v", seg, err)
		}
		if !bytes.Equal(got, new[start:end]) {
			t.Fatalf("segment %d: decoded %d bytes differ from the new data (%d bytes)", seg, len(got), end-start)
		}
		res.patch = append(res.patch, n)
		res.total += n
	}
	return res
}

// scatter overwrites runs bytes in total with random data, one run at a
// random place in each of runs equal slots, so runs never overlap and the
// changed byte count is exact.
func scatter(base []byte, runs, total int, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	out := bytes.Clone(base)
	slot := len(out) / runs
	for i := range runs {
		n := total / runs
		if i < total%runs {
			n++
		}
		off := i*slot + r.Intn(slot-n)
		r.Read(out[off : off+n])
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	const mib = 1 << 20
	page := htmlPage(7, 20_000)
	// Replace one whole sentence in the middle of the page.
	i := bytes.Index(page[len(page)/2:], []byte(". ")) + len(page)/2 + 2
	j := bytes.IndexByte(page[i:], '.') + i + 1
	edited := concat(page[:i], []byte("Boil drinking water for one minute before use."), page[j:])

	type tc struct {
		name    string
		big     bool // 25 MiB data, skipped with -short
		old     func() []byte
		new     func(old []byte) []byte
		changed int64 // bytes a perfect patch would carry
		// limit is a generous, deterministic bound on the total patch size.
		limit func(changed, newSize int64) int64
	}
	base := func() []byte { return random(1, 25*mib) }
	cases := []tc{
		{name: "identical", big: true, old: base,
			new:   func(old []byte) []byte { return old },
			limit: func(_, _ int64) int64 { return 16 << 10 }},
		{name: "scattered-1pct-50runs", big: true, old: base, changed: 25 * mib / 100,
			new:   func(old []byte) []byte { return scatter(old, 50, 25*mib/100, 2) },
			limit: func(changed, _ int64) int64 { return 2 * changed }},
		{name: "insert-1MB-middle", big: true, old: base, changed: 1_000_000,
			new: func(old []byte) []byte {
				return concat(old[:len(old)/2], random(3, 1_000_000), old[len(old)/2:])
			},
			limit: func(changed, _ int64) int64 { return 2 * changed }},
		{name: "append-5MB", big: true, old: base, changed: 5_000_000,
			new:   func(old []byte) []byte { return concat(old, random(4, 5_000_000)) },
			limit: func(changed, _ int64) int64 { return 2 * changed }},
		{name: "unrelated-3MiB", old: func() []byte { return random(5, 3*mib) }, changed: 3 * mib,
			new: func([]byte) []byte { return random(6, 3*mib) },
			// Nothing to reference: the patch must not expand the data
			// by more than framing.
			limit: func(_, newSize int64) int64 { return newSize + 1024 }},
		{name: "empty-old", old: func() []byte { return nil },
			new: func([]byte) []byte { return htmlPage(8, 100_000) }, changed: 100_000,
			// Plain compression of text.
			limit: func(changed, _ int64) int64 { return changed / 2 }},
		{name: "html-one-sentence", old: func() []byte { return page }, changed: 47,
			new:   func([]byte) []byte { return edited },
			limit: func(_, _ int64) int64 { return 200 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.big && testing.Short() {
				t.Skip("25 MiB case")
			}
			t.Parallel()
			old := c.old()
			new := c.new(old)
			res := roundTrip(t, old, new, nil)
			t.Logf("old %d bytes, new %d bytes, changed %d bytes: patch %d bytes, per segment %v",
				len(old), len(new), c.changed, res.total, res.patch)
			if limit := c.limit(c.changed, int64(len(new))); res.total > limit {
				t.Errorf("patch of %d bytes exceeds the bound of %d", res.total, limit)
			}
		})
	}
}

// TestShiftedInsertion measures what Index buys: content that moved by more
// than ChooseWindow's 4 MiB margin is outside the centred window, except
// near the end of the old file where the window slides to cover it.
func TestShiftedInsertion(t *testing.T) {
	if testing.Short() {
		t.Skip("40 MiB case")
	}
	t.Parallel()
	const inserted = 6 << 20
	old := random(11, 40<<20)
	new := concat(old[:1<<20], random(12, inserted), old[1<<20:])

	centred := roundTrip(t, old, new, nil)
	x, err := NewIndex(bytes.NewReader(old), int64(len(old)))
	if err != nil {
		t.Fatal(err)
	}
	indexed := roundTrip(t, old, new, x.Hint)
	t.Logf("6 MiB inserted at 1 MiB of 40 MiB: centred window %d bytes %v, with Index.Hint %d bytes %v",
		centred.total, centred.patch, indexed.total, indexed.patch)
	if indexed.total > inserted+inserted/10 {
		t.Errorf("with Index.Hint, patch of %d bytes for %d inserted bytes", indexed.total, inserted)
	}
}

// TestEncoderWindowReach is the experiment behind encoderWindow: a segment
// that is a verbatim copy of the oldest half of a MaxWindow dictionary,
// the worst case for back-reference distance, encoded with different
// encoder windows.
func TestEncoderWindowReach(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MiB dictionary")
	}
	t.Parallel()
	dict := random(21, MaxWindow)
	src := dict[:SegmentSize]
	for _, window := range []int{8 << 20, 16 << 20, encoderWindow} {
		p, err := encode(dict, src, window)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("encoder window %2d MiB: patch %d bytes for a segment copied from the dictionary's start", window>>20, len(p))
		got, err := Decode(bytes.NewReader(p), dict, SegmentSize)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("encoder window %d MiB: round trip failed: %v", window>>20, err)
		}
		if window == encoderWindow && len(p) > 4096 {
			t.Errorf("encoder window %d MiB does not reach the dictionary's start: patch %d bytes", window>>20, len(p))
		}
	}
}

func TestSegments(t *testing.T) {
	for _, c := range []struct {
		size int64
		n    int
		last [2]int64
	}{
		{0, 0, [2]int64{0, 0}},
		{1, 1, [2]int64{0, 1}},
		{SegmentSize, 1, [2]int64{0, SegmentSize}},
		{SegmentSize + 1, 2, [2]int64{SegmentSize, SegmentSize + 1}},
		{25 << 20, 4, [2]int64{24 << 20, 25 << 20}},
	} {
		if got := Segments(c.size); got != c.n {
			t.Errorf("Segments(%d) = %d, want %d", c.size, got, c.n)
		}
		if c.n > 0 {
			s, e := SegmentRange(c.size, c.n-1)
			if [2]int64{s, e} != c.last {
				t.Errorf("SegmentRange(%d, %d) = %d, %d, want %v", c.size, c.n-1, s, e, c.last)
			}
		}
		if s, e := SegmentRange(c.size, c.n); s != 0 || e != 0 {
			t.Errorf("SegmentRange(%d, %d) past the end = %d, %d, want empty", c.size, c.n, s, e)
		}
	}
}

func TestChooseWindow(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name             string
		oldSize, newSize int64
		seg              int
		hint             int64
		want             Window
	}{
		{"empty old", 0, 10 * mib, 0, -1, Window{}},
		{"small old used whole", 3 * mib, 30 * mib, 2, -1, Window{0, 3 * mib}},
		{"old of exactly MaxWindow", MaxWindow, 30 * mib, 3, -1, Window{0, MaxWindow}},
		{"first segment slides right", 25 * mib, 25 * mib, 0, -1, Window{0, MaxWindow}},
		{"middle segment centred", 40 * mib, 40 * mib, 2, -1, Window{12 * mib, MaxWindow}},
		{"last segment slides left", 25 * mib, 25 * mib, 3, -1, Window{9 * mib, MaxWindow}},
		{"short last segment gets wider margins", 100 * mib, 41 * mib, 5, -1, Window{65 * mib / 2, MaxWindow}},
		{"hint 0 is an offset, not unknown", 40 * mib, 40 * mib, 2, 0, Window{0, MaxWindow}},
		{"hint moves window back", 40 * mib, 46 * mib, 3, 18 * mib, Window{14 * mib, MaxWindow}},
		{"hint moves window on", 40 * mib, 34 * mib, 1, 14 * mib, Window{10 * mib, MaxWindow}},
		{"hint past the old end", 40 * mib, 40 * mib, 1, 1 << 40, Window{24 * mib, MaxWindow}},
	} {
		got := ChooseWindow(c.oldSize, c.newSize, c.seg, c.hint)
		if got != c.want {
			t.Errorf("%s: ChooseWindow(%d, %d, %d, %d) = %+v, want %+v", c.name, c.oldSize, c.newSize, c.seg, c.hint, got, c.want)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	old := bytes.NewReader(make([]byte, 100))
	new := bytes.NewReader(make([]byte, 100))
	for _, c := range []struct {
		name string
		w    Window
		seg  int
	}{
		{"segment past end", Window{0, 100}, 1},
		{"negative segment", Window{0, 100}, -1},
		{"window past old end", Window{50, 51}, 0},
		{"negative offset", Window{-1, 10}, 0},
		{"negative length", Window{0, -1}, 0},
		{"window over MaxWindow", Window{0, MaxWindow + 1}, 0},
	} {
		oldSize := int64(100)
		if c.w.Length > oldSize {
			oldSize = c.w.Length
		}
		if _, err := Encode(&bytes.Buffer{}, old, oldSize, c.w, new, 100, c.seg); err == nil {
			t.Errorf("%s: Encode accepted window %+v segment %d", c.name, c.w, c.seg)
		}
	}
	// A ReaderAt shorter than the size it is claimed to have.
	if _, err := Encode(&bytes.Buffer{}, old, 200, Window{0, 200}, new, 100, 0); err == nil {
		t.Error("Encode accepted an old file shorter than oldSize")
	}
}

// smallPatch returns a real patch of a modest segment and its dictionary.
func smallPatch(t testing.TB) (patch, dict, want []byte) {
	t.Helper()
	old := htmlPage(31, 40_000)
	want = concat(old[:10_000], []byte("<p>A new paragraph about clean water.</p>"), old[10_500:])
	var buf bytes.Buffer
	w := ChooseWindow(int64(len(old)), int64(len(want)), 0, -1)
	if _, err := Encode(&buf, bytes.NewReader(old), int64(len(old)), w, bytes.NewReader(want), int64(len(want)), 0); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), old, want
}

func TestDecodeHostile(t *testing.T) {
	patch, dict, want := smallPatch(t)
	maxOut := int64(len(want))
	check := func(name string, p, dict []byte, maxOut int64, mustFail bool) {
		t.Helper()
		out, err := Decode(bytes.NewReader(p), dict, maxOut)
		if int64(len(out)) > maxOut {
			t.Errorf("%s: %d bytes out, more than maxOut %d", name, len(out), maxOut)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: error %v does not wrap ErrCorrupt", name, err)
		}
		if mustFail && err == nil {
			t.Errorf("%s: no error", name)
		}
	}

	check("empty", nil, dict, maxOut, true)
	for n := 1; n < len(patch); n++ {
		check("truncated", patch[:n], dict, maxOut, true)
	}
	check("trailing garbage", concat(patch, []byte{1, 2, 3}), dict, maxOut, true)
	check("output over maxOut", patch, dict, maxOut-1, true)
	check("zero maxOut", patch, dict, 0, true)
	for seed := range int64(200) {
		r := rand.New(rand.NewSource(seed))
		g := random(seed, r.Intn(4096))
		check("garbage", g, dict, maxOut, true)
		// Keep the frame magic so the decoder gets past the first check.
		g = concat(patch[:4+r.Intn(8)], g)
		check("garbage after magic", g, dict, maxOut, false)
		// Flip one byte of a real patch.
		f := bytes.Clone(patch)
		f[r.Intn(len(f))] ^= byte(1 + r.Intn(255))
		check("flipped byte", f, dict, maxOut, false)
	}
	// The old file on the box is not what the hub used: the checksum
	// turns this into an error before the caller hashes blocks.
	wrong := bytes.Clone(dict)
	wrong[len(wrong)/3] ^= 0xff
	for _, d := range [][]byte{wrong, dict[1:], nil, random(41, len(dict))} {
		out, err := Decode(bytes.NewReader(patch), d, maxOut)
		if err == nil && bytes.Equal(out, want) {
			continue // the patch did not reference the damaged bytes
		}
		check("wrong dictionary", patch, d, maxOut, true)
	}
	if _, err := Decode(bytes.NewReader(patch), dict, SegmentSize+1); err == nil {
		t.Error("Decode accepted maxOut over SegmentSize")
	}
	// A patch far larger than any real patch of maxOut bytes is refused
	// before it is buffered whole.
	check("oversized patch", concat(patch, make([]byte, maxPatchSize(maxOut))), dict, maxOut, true)
}

// rleBomb returns a frame without content size whose RLE blocks expand to
// blocks×128 KiB: a few bytes that claim unbounded output.
func rleBomb(blocks int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, // magic
		0x00,   // no content size, not single segment, no checksum
		7 << 3} // window 2^(10+7) = 128 KiB
	for i := range blocks {
		h := uint32(1)<<1 | uint32(128<<10)<<3 // RLE block of 128 KiB
		if i == blocks-1 {
			h |= 1
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 'x')
	}
	return b
}

// TestDecodeBombs checks that frames claiming huge output are refused
// without the box allocating it.
func TestDecodeBombs(t *testing.T) {
	const maxOut = 1 << 20
	bigFCS := []byte{0x28, 0xb5, 0x2f, 0xfd,
		0xe0,                                    // 8-byte content size, single segment
		0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0x78, 'x'} // 1 TiB, then an RLE block
	for _, c := range []struct {
		name  string
		patch []byte
	}{
		{"RLE blocks past maxOut", rleBomb(1000)},
		{"content size 1 TiB", bigFCS},
		{"window 2 GiB", []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3, 1, 0, 0}},
	} {
		var out []byte
		var err error
		n := bytesAllocated(func() { out, err = Decode(bytes.NewReader(c.patch), nil, maxOut) })
		if !errors.Is(err, ErrCorrupt) || len(out) > maxOut {
			t.Errorf("%s: got %d bytes, error %v; want ErrCorrupt", c.name, len(out), err)
		}
		if n > maxOut+(4<<20) {
			t.Errorf("%s: Decode allocated %d bytes for maxOut %d", c.name, n, maxOut)
		}
	}
	// Within maxOut the same kind of frame is fine.
	out, err := Decode(bytes.NewReader(rleBomb(8)), nil, maxOut)
	if err != nil || len(out) != maxOut || out[maxOut-1] != 'x' {
		t.Errorf("8 RLE blocks: got %d bytes, error %v", len(out), err)
	}
}
