// Package patch turns a change of a course file (old file O → new file N)
// into small patches that a school box can apply to its copy of O.
//
// The link to a box is thin, and the same change is fetched by every box that
// holds O, so the hub computes each patch once per (O, N) pair, caches it,
// and spends CPU freely to make it small. A patch is a zstd frame of new data
// compressed with a slice of the old file as a raw dictionary: zstd then
// encodes unchanged stretches as back-references into the old bytes and
// changed stretches as literals, which gives patches about as large as the
// changed bytes (a one-sentence HTML edit costs tens of bytes) without a
// separate diff algorithm. Only the highest encoder level is used, because
// the faster levels barely search a large dictionary.
//
// A box is a 1 GB Raspberry Pi, so what it holds while applying a patch must
// not grow with the file. Large files are therefore patched per segment:
// segment i covers new-file bytes [i*SegmentSize, min((i+1)*SegmentSize, newSize))
// and its dictionary is a Window of at most MaxWindow bytes of the old file,
// which the box reads from its own copy. Decoding one segment needs about
// the window plus the segment plus the patch. By default the window is
// centred on the segment's own offset, which covers edits in place,
// appends, and content moved by up to a few MiB; for content moved further
// the hub can locate it with an Index of the old file.
//
// The box verifies each decoded segment against the new file's block hashes
// (that is the caller's job), so a patch built against the wrong window, a
// poor choice of window, or a corrupt patch costs bytes, never correctness.
// What this package must guarantee on the box side is only that a hostile
// or corrupt patch cannot make it allocate without bound, loop, or panic.
package patch

import (
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

const (
	// SegmentSize is the number of new-file bytes one patch produces. It is a
	// multiple of every syncthing block size up to 8 MiB, so a decoded
	// segment can be verified block by block without carrying partial blocks
	// over to the next segment (blocks of 16 MiB span two segments).
	SegmentSize = 8 << 20

	// MaxWindow is the largest dictionary a box must hold for one segment.
	// Twice the segment size leaves 4 MiB of old data on each side of the
	// segment's own old range, so shifts of up to 4 MiB (an insertion or a
	// deletion earlier in the file) still find their old bytes without any
	// help from the hub.
	MaxWindow = 16 << 20

	// encoderWindow bounds the back-reference distance the encoder searches.
	// The dictionary sits before the segment in zstd's history, so the oldest
	// dictionary byte is MaxWindow+SegmentSize away from the segment's last
	// byte; with klauspost's default 8 MiB window the end of a segment could
	// not reach the dictionary at all (see TestEncoderWindowReach). The value
	// is never written into the patch: segments are single-segment frames
	// whose window is their content size, and the decoder resolves
	// references into the dictionary independently of the window, so this
	// costs hub memory only.
	encoderWindow = 32 << 20
)

// Compile-time proof that every dictionary byte is within the encoder's reach.
var _ [encoderWindow - SegmentSize - MaxWindow]struct{}

// ErrCorrupt is wrapped by every error Decode returns for a malformed patch.
var ErrCorrupt = errors.New("patch: corrupt patch")

// Window is the slice of the old file used as a segment's dictionary. The
// hub records it with the cached patch so the box reads the same bytes.
type Window struct {
	Offset, Length int64
}

// Segments returns the number of patches a new file of this size needs. An
// empty new file needs none: the box can create it without a patch, and a
// zero-length segment would only be a special case for both sides.
func Segments(newSize int64) int {
	if newSize <= 0 {
		return 0
	}
	return int((newSize + SegmentSize - 1) / SegmentSize)
}

// SegmentRange returns the new-file byte range [start, end) of segment seg.
// end-start is the maxOut the box passes to Decode. For a seg outside
// [0, Segments(newSize)) it returns an empty range.
func SegmentRange(newSize int64, seg int) (start, end int64) {
	if seg < 0 || seg >= Segments(newSize) {
		return 0, 0
	}
	start = int64(seg) * SegmentSize
	return start, min(start+SegmentSize, newSize)
}

// ChooseWindow picks the old-file window used as dictionary for segment seg.
//
// hint is the hub's estimate of the old-file offset where the segment's
// content starts, e.g. from Index.Hint. A negative hint means unknown: the
// content is then assumed at the segment's own offset, which is right for
// in-place edits and appends and, thanks to the margin of
// (MaxWindow-segment length)/2 on each side, for content moved by up to
// 4 MiB by an insertion or deletion earlier in the file.
//
// An old file of at most MaxWindow bytes is used whole. Otherwise the window
// is MaxWindow bytes centred on the expected old range and slid, not
// shrunk, where it would cross either end of the old file: the box has to
// budget for MaxWindow anyway, and more old bytes can only help.
func ChooseWindow(oldSize, newSize int64, seg int, hint int64) Window {
	if oldSize <= 0 {
		return Window{}
	}
	if oldSize <= MaxWindow {
		return Window{Offset: 0, Length: oldSize}
	}
	start, end := SegmentRange(newSize, seg)
	if hint < 0 {
		hint = start
	}
	margin := (MaxWindow - (end - start)) / 2
	off := hint - margin
	off = min(off, oldSize-MaxWindow)
	off = max(off, 0)
	return Window{Offset: off, Length: MaxWindow}
}

// Encode writes the patch for segment seg of the new file: a single zstd
// frame of new[start:end) compressed with old[w] as raw dictionary. It
// returns the number of bytes written to dst.
//
// It allocates about 128 MiB per call: the window and the segment, the
// encoder's match tables (64 MiB, built again for every window) and its
// history. That is affordable because it runs on the hub, once per
// (O, N, segment), and segments can be encoded in parallel.
func Encode(dst io.Writer, old io.ReaderAt, oldSize int64, w Window, new io.ReaderAt, newSize int64, seg int) (n int64, err error) {
	if seg < 0 || seg >= Segments(newSize) {
		return 0, fmt.Errorf("patch: encode segment %d: out of range for a new file of %d bytes", seg, newSize)
	}
	if w.Offset < 0 || w.Length < 0 || w.Length > MaxWindow || w.Offset > oldSize-w.Length {
		return 0, fmt.Errorf("patch: encode segment %d: window %+v does not fit an old file of %d bytes within %d bytes", seg, w, oldSize, MaxWindow)
	}
	dict := make([]byte, w.Length)
	if _, err := readFull(old, dict, w.Offset); err != nil {
		return 0, fmt.Errorf("patch: encode segment %d: reading old window: %w", seg, err)
	}
	start, end := SegmentRange(newSize, seg)
	src := make([]byte, end-start)
	if _, err := readFull(new, src, start); err != nil {
		return 0, fmt.Errorf("patch: encode segment %d: reading new data: %w", seg, err)
	}
	p, err := encode(dict, src, encoderWindow)
	if err != nil {
		return 0, fmt.Errorf("patch: encode segment %d: %w", seg, err)
	}
	m, err := dst.Write(p)
	if err != nil {
		return int64(m), fmt.Errorf("patch: encode segment %d: writing patch: %w", seg, err)
	}
	return int64(m), nil
}

// readFull is io.ReadFull for an io.ReaderAt: a ReaderAt may return io.EOF
// together with the last bytes, which is not an error here.
func readFull(r io.ReaderAt, p []byte, off int64) (int, error) {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// encode compresses src with dict as raw dictionary, letting back-references
// reach window bytes. The window is a parameter only so that the test that
// justifies encoderWindow can compare sizes.
func encode(dict, src []byte, window int) ([]byte, error) {
	opts := []zstd.EOption{
		zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithWindowSize(window),
		// EncodeAll of one segment uses one encoder; more would only
		// allocate more 64 MiB table sets.
		zstd.WithEncoderConcurrency(1),
		// Halves the history buffer (window+block instead of 2×window);
		// encodes are one-shot, so the buffer is never slid anyway.
		zstd.WithLowerEncoderMem(true),
		// A single-segment frame always states its content size (other
		// frames omit it below 256 bytes), which lets the box refuse an
		// oversized frame before allocating, and states no window size
		// that a box would have to honour.
		zstd.WithSingleSegment(true),
		// 4 bytes that let Decode tell a wrong dictionary or a damaged patch
		// from a good one before the caller hashes blocks.
		zstd.WithEncoderCRC(true),
	}
	if len(dict) > 0 {
		// ID 0 is not written to the frame: the window is identified by
		// the cache entry, not by the patch.
		opts = append(opts, zstd.WithEncoderDictRaw(0, dict))
	}
	enc, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating zstd encoder: %w", err)
	}
	defer enc.Close()
	return enc.EncodeAll(src, nil), nil
}

// maxPatchSize bounds the patch bytes Decode reads for maxOut bytes of
// output. Our encoder stores an incompressible block raw, so a real patch
// is at most maxOut plus a frame header, 3 bytes per block and a checksum;
// the slack is generous so that a future encoder with smaller blocks still
// fits, while a hostile sender still cannot make the box buffer more than
// about maxOut.
func maxPatchSize(maxOut int64) int64 {
	return maxOut + maxOut/64 + 1024
}

// Decode decodes a patch made by Encode, given the dictionary bytes (the box
// reads old[w] from its own copy), and returns the decoded segment.
//
// maxOut is the segment's expected length (see SegmentRange). A patch that
// would produce more, or that is larger than any patch for maxOut bytes
// could be, is refused before the output is allocated, so memory stays at
// about len(dict) + maxOut + the patch (itself at most about maxOut) plus a
// few hundred KiB of decoder state, whatever the patch says. Any malformed
// input yields an error wrapping ErrCorrupt. Decode may return fewer than
// maxOut bytes; the caller checks the result against the block hashes.
func Decode(patch io.Reader, dict []byte, maxOut int64) ([]byte, error) {
	if maxOut < 0 || maxOut > SegmentSize {
		// Larger outputs are a caller bug, and allowing them would void
		// the memory bound the box relies on.
		return nil, fmt.Errorf("patch: decode: maxOut %d outside [0, SegmentSize]", maxOut)
	}
	limit := maxPatchSize(maxOut)
	p, err := readPatch(patch, limit)
	if err != nil {
		return nil, fmt.Errorf("patch: decode: reading patch: %w", err)
	}
	if n := int64(len(p)); n > limit {
		return nil, fmt.Errorf("patch: decode: %w: more than %d bytes for %d bytes of output", ErrCorrupt, limit, maxOut)
	}
	if len(p) == 0 {
		return nil, fmt.Errorf("patch: decode: %w: empty patch", ErrCorrupt)
	}

	// The decoder insists on positive limits; a zero maxOut is still
	// enforced by the capacity of out below.
	lim := uint64(max(maxOut, 1))
	opts := []zstd.DOption{
		// Rejects a frame header whose content size exceeds maxOut before
		// anything is allocated for it.
		zstd.WithDecoderMaxMemory(lim),
		// Rejects frames claiming a window larger than the output: ours
		// never do, and the decoder sizes its block buffers from it.
		zstd.WithDecoderMaxWindow(max(lim, zstd.MinWindowSize)),
		// Decode into out and never past its capacity, which also bounds
		// frames that omit their content size.
		zstd.WithDecodeAllCapLimit(true),
		// One block decoder, allocating on demand: the box decodes one
		// segment at a time and needs the memory more than the speed.
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
	}
	if len(dict) > 0 {
		opts = append(opts, zstd.WithDecoderDictRaw(0, dict))
	}
	dec, err := zstd.NewReader(nil, opts...)
	if err != nil {
		return nil, fmt.Errorf("patch: decode: creating zstd decoder: %w", err)
	}
	defer dec.Close()
	out, err := dec.DecodeAll(p, make([]byte, 0, maxOut))
	if err != nil {
		return nil, fmt.Errorf("patch: decode: %w: %w", ErrCorrupt, err)
	}
	if int64(len(out)) > maxOut {
		// The options above should make this unreachable; it is the
		// promise callers size their buffers by, so check it anyway.
		return nil, fmt.Errorf("patch: decode: %w: %d bytes exceed the limit of %d", ErrCorrupt, len(out), maxOut)
	}
	return out, nil
}

// readPatch reads r to its end, or to limit+1 bytes so the caller can tell
// that the limit was exceeded. The patch of an unrelated file is as large
// as the segment, so the buffer is sized from r's remaining length when r
// can tell it (bytes.Reader, bytes.Buffer, os.File, io.SectionReader), and
// otherwise doubled as needed but never past limit+1.
func readPatch(r io.Reader, limit int64) ([]byte, error) {
	size := int64(64 << 10)
	if n, ok := remaining(r); ok {
		// One more byte than announced, so that EOF is seen without growing.
		size = n + 1
	}
	buf := make([]byte, 0, min(size, limit+1))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return buf, nil
			}
			// Not append or slices.Grow: their growth overshoots 2×,
			// which for an 8 MiB patch is megabytes of waste.
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), limit+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// remaining reports how many bytes r has left, if r can tell cheaply.
func remaining(r io.Reader) (int64, bool) {
	if l, ok := r.(interface{ Len() int }); ok {
		return int64(l.Len()), true
	}
	if s, ok := r.(io.Seeker); ok {
		cur, err := s.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0, false
		}
		end, err := s.Seek(0, io.SeekEnd)
		if _, err2 := s.Seek(cur, io.SeekStart); err != nil || err2 != nil || end < cur {
			return 0, false
		}
		return end - cur, true
	}
	return 0, false
}
