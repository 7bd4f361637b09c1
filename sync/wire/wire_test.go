package wire

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/syncthing/syncthing/lib/protocol"
)

// ---- messages ---------------------------------------------------------

// plainJSON decompresses an encoded message, for tests that look at the
// JSON a peer actually receives.
func plainJSON(t testing.TB, enc []byte) string {
	t.Helper()
	d, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out, err := d.DecodeAll(enc, nil)
	if err != nil {
		t.Fatalf("not a zstd stream: %v", err)
	}
	return string(out)
}

// zstdOf compresses raw bytes the way a foreign implementation might: one
// EncodeAll call, so the frame carries its content size.
func zstdOf(t testing.TB, raw []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	e, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	return e.EncodeAll(raw, nil)
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func sampleFileBlocks() FileBlocks {
	const bs = 128 << 10
	fb := FileBlocks{SHA256: sha("file"), Size: 2*bs + 1000, BlockSize: bs}
	for i := range 3 {
		h := sha256.Sum256([]byte{byte(i)})
		fb.Hashes = append(fb.Hashes, h[:]...)
		fb.Weak = binary.BigEndian.AppendUint32(fb.Weak, 0x01020304*uint32(i+1))
	}
	return fb
}

// sampleMessages has one value of every message type, with every field set
// (and bytes that are not UTF-8, which JSON must carry as base64).
func sampleMessages() []any {
	return []any{
		&EnrolRequest{Token: "abcdefghijklmnopqrstuvwxyz23", Hostname: "school-7"},
		&EnrolResponse{DeviceID: protocol.NewDeviceID([]byte("box")).String(), Site: "Kisumu North", Channels: []string{"primary", "health"}},
		&Changes{
			Cursor: 42,
			Courses: []CourseChange{
				{ID: "water-cycle", Version: 3, Manifest: []byte("{\"id\":\"water-cycle\"}\n\xff\x00"),
					Patches: map[string][]string{sha("new"): {sha("old1"), sha("old2")}}},
				{ID: "fractions", Version: 1, Manifest: []byte(`{}`)},
			},
			Removed: []string{"old-course"},
		},
		&Changes{Cursor: 0, Courses: []CourseChange{}, Removed: []string{}},
		&FilesRequest{Files: []string{sha("a"), sha("b")}},
		&FilesResponse{Files: []FileBlocks{sampleFileBlocks(), {SHA256: sha("empty"), Size: 0, BlockSize: 128 << 10, Hashes: []byte{}, Weak: []byte{}}}},
		&BlocksRequest{Want: []WantBlocks{{File: sha("a"), Indexes: []int{0, 5, 2}}, {File: sha("b"), Indexes: []int{7}}}},
		&Error{Code: CodeRevoked, Message: "the hub revoked this box"},
	}
}

func TestRoundTripEveryMessage(t *testing.T) {
	for _, v := range sampleMessages() {
		t.Run(fmt.Sprintf("%T", v), func(t *testing.T) {
			var buf bytes.Buffer
			if err := Encode(&buf, v); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), mustMarshal(t, v)) {
				t.Error("Encode and Marshal disagree")
			}
			got := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			// A plain io.Reader, as an HTTP body is.
			if err := Decode(iotest.HalfReader(bytes.NewReader(buf.Bytes())), got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, v) {
				t.Errorf("round trip changed the message:\n got %+v\nwant %+v", got, v)
			}
		})
	}
}

// TestJSONFieldNames pins the JSON another implementation must produce and
// accept (docs/SYNC_PROTOCOL.md): names, base64 for bytes, big-endian weak
// hashes, null for absent lists.
func TestJSONFieldNames(t *testing.T) {
	fb := FileBlocks{SHA256: sha("x"), Size: 5, BlockSize: 128 << 10, Hashes: bytes.Repeat([]byte{0xab}, 32), Weak: []byte{0x00, 0x06, 0x01, 0xf6}}
	cases := []struct {
		v    any
		want string
	}{
		{&EnrolRequest{Token: "t", Hostname: "h"}, `{"token":"t","hostname":"h"}`},
		{&EnrolResponse{DeviceID: "D", Site: "S", Channels: []string{"c"}}, `{"device_id":"D","site":"S","channels":["c"]}`},
		{&Changes{Cursor: 7, Courses: []CourseChange{{ID: "c", Version: 2, Manifest: []byte("{}")}}},
			`{"cursor":7,"courses":[{"id":"c","version":2,"manifest":"e30="}],"removed":null}`},
		{&CourseChange{ID: "c", Version: 2, Manifest: nil, Patches: map[string][]string{"n": {"o"}}},
			`{"id":"c","version":2,"manifest":null,"patches":{"n":["o"]}}`},
		{&FilesRequest{Files: []string{"f"}}, `{"files":["f"]}`},
		{&fb, `{"sha256":"` + sha("x") + `","size":5,"block_size":131072,"hashes":"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=","weak":"AAYB9g=="}`},
		{&BlocksRequest{Want: []WantBlocks{{File: "f", Indexes: []int{0, 3}}}}, `{"want":[{"file":"f","indexes":[0,3]}]}`},
		{&Error{Code: CodeNotFound, Message: "m"}, `{"code":"not_found","message":"m"}`},
	}
	for _, c := range cases {
		got := strings.TrimSuffix(plainJSON(t, mustMarshal(t, c.v)), "\n")
		if got != c.want {
			t.Errorf("%T:\n got %s\nwant %s", c.v, got, c.want)
		}
	}
	if w := fb.WeakHash(0); w != 0x000601f6 {
		t.Errorf("WeakHash reads %#x, want the big-endian 0x000601f6", w)
	}
}

func TestDecodeAcceptsForeignEncoders(t *testing.T) {
	// Another implementation may compress in one shot (content size in the
	// frame header), at any level, with whitespace around the JSON, or
	// split the message over several frames.
	raw := []byte(" \n{\"cursor\": 9, \"courses\": [], \"removed\": [\"x\"]}\n\n")
	for name, enc := range map[string][]byte{
		"oneshot":        zstdOf(t, raw),
		"best":           zstdOf(t, raw, zstd.WithEncoderLevel(zstd.SpeedBestCompression)),
		"no-crc":         zstdOf(t, raw, zstd.WithEncoderCRC(false)),
		"single-segment": zstdOf(t, raw, zstd.WithSingleSegment(true)),
		"two-frames":     append(zstdOf(t, raw[:20]), zstdOf(t, raw[20:])...),
	} {
		var c Changes
		if err := Decode(bytes.NewReader(enc), &c); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if c.Cursor != 9 || len(c.Removed) != 1 {
			t.Errorf("%s: decoded %+v", name, c)
		}
	}
}

// TestDecodeWindowLimit pins a limit the spec states: a frame whose window
// exceeds 8 MiB is refused. A single-segment frame's window is its content
// size, so a one-shot single-segment message over 8 MiB is refused too,
// although it is under MaxMessage; streamed frames (Encode) are not.
func TestDecodeWindowLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 20 MB")
	}
	msg := func(n int) []byte {
		m := make([]byte, n)
		rand.Read(m)
		b, err := json.Marshal(&CourseChange{ID: "big", Manifest: m})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	small, big := msg(5<<20), msg(7<<20) // JSON of 6.7 MB and 9.3 MB
	cases := []struct {
		name string
		enc  []byte
		ok   bool
	}{
		{"streamed 9 MB", mustMarshal(t, &CourseChange{ID: "big", Manifest: big[:7<<20]}), true},
		{"single segment 6.7 MB", zstdOf(t, small, zstd.WithSingleSegment(true)), true},
		{"single segment 9.3 MB", zstdOf(t, big, zstd.WithSingleSegment(true)), false},
		{"16 MiB window", zstdOf(t, big, zstd.WithWindowSize(16<<20), zstd.WithSingleSegment(false)), false},
	}
	for _, c := range cases {
		var cc CourseChange
		err := Decode(bytes.NewReader(c.enc), &cc)
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", c.name, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := mustMarshal(t, &Changes{Cursor: 1, Courses: []CourseChange{}, Removed: []string{}})
	cases := map[string][]byte{
		"empty":              nil,
		"plain JSON":         []byte(`{"cursor":1}`),
		"gzip":               {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"random":             []byte("\x28\xb5\x2f\xfd garbage after a zstd magic"),
		"unknown field":      zstdOf(t, []byte(`{"cursor":1,"courses":[],"removed":[],"extra":true}`)),
		"unknown nested":     zstdOf(t, []byte(`{"cursor":1,"courses":[{"id":"a","version":1,"manifest":"","sig":"x"}]}`)),
		"trailing token":     zstdOf(t, []byte(`{"cursor":1} x`)),
		"two objects":        zstdOf(t, []byte(`{"cursor":1}{"cursor":2}`)),
		"two objects frames": append(zstdOf(t, []byte(`{"cursor":1}`)), zstdOf(t, []byte(` {"cursor":2}`))...),
		"garbage after zstd": append(append([]byte{}, good...), "junk"...),
		"zeros after zstd":   append(append([]byte{}, good...), 0, 0, 0, 0),
		"wrong type":         zstdOf(t, []byte(`{"cursor":"1"}`)),
		"bad base64":         zstdOf(t, []byte(`{"courses":[{"manifest":"!!"}]}`)),
		"not JSON":           zstdOf(t, []byte(`cursor=1`)),
		"empty JSON":         zstdOf(t, nil),
		"corrupt checksum":   append(good[:len(good)-1:len(good)-1], good[len(good)-1]^1),
	}
	for name, in := range cases {
		var c Changes
		err := Decode(bytes.NewReader(in), &c)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want an error wrapping ErrMalformed", name, err)
		}
	}
}

func TestDecodeRejectsEveryTruncation(t *testing.T) {
	for _, v := range sampleMessages() {
		enc := mustMarshal(t, v)
		for cut := range len(enc) {
			got := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := Decode(bytes.NewReader(enc[:cut]), got); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%T cut at %d of %d: got %v, want ErrMalformed", v, cut, len(enc), err)
			}
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// rleBomb is a zstd frame of n zero bytes made of RLE blocks (4 bytes per
// 128 KiB), with no content size in its header: the decoder only learns the
// size by decoding.
func rleBomb(n int64) []byte {
	const blk = 128 << 10
	out := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 13 << 3} // magic; no FCS, no checksum; window 8 MiB
	for ; n > 0; n -= blk {
		size := min(n, blk)
		h := uint32(size)<<3 | 1<<1 // RLE block
		if n <= blk {
			h |= 1 // last
		}
		out = append(out, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return out
}

func TestDecodeBomb(t *testing.T) {
	var buf bytes.Buffer
	e, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(e, zeros{}, 100<<20); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	streamed := buf.Bytes()
	oneshot := zstdOf(t, make([]byte, 100<<20), zstd.WithEncoderLevel(zstd.SpeedFastest)) // content size in the header
	for name, in := range map[string]io.Reader{
		"streamed":              bytes.NewReader(streamed),
		"streamed bytes.Buffer": bytes.NewBuffer(streamed),
		"one-shot":              bytes.NewReader(oneshot),
		"rle 100 MB":            bytes.NewReader(rleBomb(100 << 20)),
	} {
		var c Changes
		if err := Decode(in, &c); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}

	// A 1 GiB bomb must cost about MaxMessage, not its size. (A bound of a
	// few MaxMessage: io.ReadAll grows its buffer by doubling.)
	bomb := rleBomb(1 << 30)
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	var c Changes
	err = Decode(io.MultiReader(bytes.NewReader(bomb)), &c)
	runtime.ReadMemStats(&m1)
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("1 GiB bomb: got %v, want ErrMalformed", err)
	}
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 4*MaxMessage {
		t.Errorf("1 GiB bomb (%d bytes on the wire) allocated %d MiB", len(bomb), alloc>>20)
	} else {
		t.Logf("1 GiB bomb (%d bytes on the wire) allocated %d MiB before it was refused", len(bomb), alloc>>20)
	}
}

func TestDecodeAtMaxMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes 64 MiB")
	}
	// The limit is inclusive: exactly MaxMessage decompressed bytes decode.
	body := []byte(`{"cursor":1}`)
	body = append(body, bytes.Repeat([]byte{' '}, MaxMessage-len(body))...)
	for name, want := range map[int]bool{MaxMessage: true, MaxMessage + 1: false} {
		in := body
		if name > MaxMessage {
			in = append(body[:len(body):len(body)], ' ')
		}
		var c Changes
		err := Decode(bytes.NewReader(zstdOf(t, in, zstd.WithEncoderLevel(zstd.SpeedFastest))), &c)
		if want && (err != nil || c.Cursor != 1) {
			t.Errorf("%d bytes: %v", name, err)
		}
		if !want && !errors.Is(err, ErrMalformed) {
			t.Errorf("%d bytes: got %v, want ErrMalformed", name, err)
		}
	}
}

// ---- errors -----------------------------------------------------------

func TestWriteErrorReadError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, http.StatusForbidden, CodeTokenUsed, "tokens work once")
	resp := rec.Result()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Encoding") != "zstd" || resp.Header.Get("Content-Type") != ContentTypeJSON {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	err := ReadError(resp)
	var we *Error
	if !errors.As(err, &we) || we.Code != CodeTokenUsed || we.Message != "tokens work once" || err.Error() != "tokens work once" {
		t.Fatalf("ReadError = %#v", err)
	}

	// A proxy's page is not a wire error: it becomes "internal" with the status.
	resp = &http.Response{Status: "502 Bad Gateway", StatusCode: 502, Header: http.Header{"Content-Type": {"text/html"}},
		Body: io.NopCloser(strings.NewReader("<html>bad gateway</html>"))}
	if err := ReadError(resp); !errors.As(err, &we) || we.Code != CodeInternal || !strings.Contains(we.Message, "502 Bad Gateway") {
		t.Fatalf("ReadError(html) = %#v", err)
	}
	// Nor is a zstd body without a code.
	resp = &http.Response{Status: "500 Internal Server Error", StatusCode: 500, Header: http.Header{"Content-Encoding": {"zstd"}},
		Body: io.NopCloser(bytes.NewReader(mustMarshal(t, &Error{Message: "no code"})))}
	if err := ReadError(resp); !errors.As(err, &we) || we.Code != CodeInternal {
		t.Fatalf("ReadError(no code) = %#v", err)
	}
}

// ---- block stream -----------------------------------------------------

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// frame builds one frame by hand.
func frame(kind byte, pos, n uint32, payload []byte) []byte {
	h := []byte{kind}
	h = binary.BigEndian.AppendUint32(h, pos)
	h = binary.BigEndian.AppendUint32(h, n)
	return append(h, payload...)
}

type streamItem struct {
	data    []byte // nil: Missing
	missing bool
}

// writeStream writes items at positions 0, 1, … and returns the stream and
// the offset at which each frame ends.
func writeStream(t testing.TB, items []streamItem) (stream []byte, ends []int, bw *BlockWriter) {
	t.Helper()
	var buf bytes.Buffer
	flushes := 0
	bw, err := NewBlockWriter(&buf, func() { flushes++ })
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range items {
		if it.missing {
			err = bw.Missing(i)
		} else {
			err = bw.Block(i, it.data)
		}
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, buf.Len())
		if flushes != i+1 {
			t.Fatalf("flush called %d times after %d frames", flushes, i+1)
		}
	}
	if err := bw.End(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), append(ends, buf.Len()), bw
}

func sizesOf(items []streamItem) []int {
	sizes := make([]int, len(items))
	for i, it := range items {
		sizes[i] = len(it.data)
	}
	return sizes
}

func TestBlockStreamRoundTrip(t *testing.T) {
	text := bytes.Repeat([]byte("the water cycle: evaporation, condensation, precipitation. "), 3000)[:128<<10]
	video := randomBytes(256 << 10)
	items := []streamItem{
		{data: text},                           // compressible: zstd frame
		{data: video},                          // incompressible: raw frame
		{data: make([]byte, 100)},              // short last block of zeros
		{data: []byte{1, 2, 3}, missing: true}, // the hub lacks it (size still known to the reader)
		{data: video[:1]},                      // one byte: raw, zstd would be larger
	}
	stream, ends, bw := writeStream(t, items)
	if string(stream[:4]) != "OPB1" {
		t.Fatalf("magic %q", stream[:4])
	}
	wantKinds := []byte{FrameZstd, FrameRaw, FrameZstd, FrameMissing, FrameRaw}
	start := 4
	for i, end := range ends[:len(items)] {
		if k := stream[start]; k != wantKinds[i] {
			t.Errorf("frame %d kind %q, want %q", i, k, wantKinds[i])
		}
		if p := binary.BigEndian.Uint32(stream[start+1:]); p != uint32(i) {
			t.Errorf("frame %d position %d", i, p)
		}
		if n := binary.BigEndian.Uint32(stream[start+5:]); int(n) != end-start-9 {
			t.Errorf("frame %d length %d, frame is %d bytes", i, n, end-start)
		}
		start = end
	}
	if got, want := stream[start:], frame(FrameEnd, uint32(len(items)), 0, nil); !bytes.Equal(got, want) {
		t.Errorf("end frame % x, want % x", got, want)
	}
	if bw.Raw != int64(len(video)+1) {
		t.Errorf("Raw = %d", bw.Raw)
	}
	if bw.Compressed <= 0 || bw.Compressed >= int64(len(text)+100) {
		t.Errorf("Compressed = %d", bw.Compressed)
	}

	br, err := NewBlockReader(iotest.OneByteReader(bytes.NewReader(stream)), sizesOf(items))
	if err != nil {
		t.Fatal(err)
	}
	start = 4
	for i, it := range items {
		b, err := br.Next()
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if b.Pos != i || b.Missing != it.missing || b.WireBytes != ends[i]-start {
			t.Errorf("block %d: pos %d missing %v wire %d", i, b.Pos, b.Missing, b.WireBytes)
		}
		if it.missing && b.Data != nil {
			t.Errorf("missing block %d has data", i)
		}
		if !it.missing && !bytes.Equal(b.Data, it.data) {
			t.Errorf("block %d: data differs", i)
		}
		start = ends[i]
	}
	for range 2 {
		if b, err := br.Next(); err != io.EOF || b != nil {
			t.Fatalf("after the end frame: %v, %v; want nil, io.EOF", b, err)
		}
	}
}

func TestBlockStreamEmpty(t *testing.T) {
	stream, _, _ := writeStream(t, nil)
	if want := append([]byte("OPB1"), frame(FrameEnd, 0, 0, nil)...); !bytes.Equal(stream, want) {
		t.Fatalf("empty stream % x", stream)
	}
	br, err := NewBlockReader(bytes.NewReader(stream), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := br.Next(); err != io.EOF {
		t.Fatalf("got %v, want io.EOF", err)
	}
}

// TestBlockStreamCutEverywhere cuts a stream at every offset: the reader
// returns exactly the frames wholly before the cut, each correct, then an
// error wrapping ErrTruncated.
func TestBlockStreamCutEverywhere(t *testing.T) {
	items := []streamItem{
		{data: bytes.Repeat([]byte("abc"), 400)},
		{data: randomBytes(300)},
		{data: bytes.Repeat([]byte{7}, 50), missing: true},
		{data: bytes.Repeat([]byte("xyz"), 70)},
	}
	stream, ends, _ := writeStream(t, items)
	sizes := sizesOf(items)
	for cut := 0; cut <= len(stream); cut++ {
		for _, wrap := range []func(io.Reader) io.Reader{
			func(r io.Reader) io.Reader { return r },
			iotest.OneByteReader,
			iotest.DataErrReader,
		} {
			r := wrap(bytes.NewReader(stream[:cut]))
			br, err := NewBlockReader(r, sizes)
			if cut < 4 {
				if !errors.Is(err, ErrTruncated) || errors.Is(err, ErrMalformed) {
					t.Fatalf("cut %d in the magic: got %v, want ErrTruncated", cut, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			got := 0
			for {
				b, err := br.Next()
				if err == io.EOF {
					if cut != len(stream) {
						t.Fatalf("cut %d of %d: clean end of a cut stream", cut, len(stream))
					}
					break
				}
				if err != nil {
					if !errors.Is(err, ErrTruncated) || errors.Is(err, ErrMalformed) || cut == len(stream) {
						t.Fatalf("cut %d: got %v, want ErrTruncated", cut, err)
					}
					break
				}
				if got >= len(items) || ends[got] > cut {
					t.Fatalf("cut %d: block %d returned though its frame ends at %d", cut, got, ends[got])
				}
				it := items[got]
				if b.Pos != got || b.Missing != it.missing || (!it.missing && !bytes.Equal(b.Data, it.data)) {
					t.Fatalf("cut %d: wrong block %d: %+v", cut, got, b)
				}
				got++
			}
			whole := 0
			for whole < len(items) && ends[whole] <= cut {
				whole++
			}
			if got != whole {
				t.Fatalf("cut %d: got %d blocks, %d were whole", cut, got, whole)
			}
		}
	}
}

func TestBlockReaderMalformed(t *testing.T) {
	good := bytes.Repeat([]byte("0123456789"), 20) // 200 bytes
	z := zstdOf(t, good)
	sizes := []int{200, 200, 10}
	ok := frame(FrameRaw, 0, 200, good) // one good frame before the bad one
	cases := map[string][]byte{
		"unknown kind":               frame('X', 1, 0, nil),
		"lower-case kind":            frame('r', 1, 200, good),
		"raw position out of range":  frame(FrameRaw, 3, 10, good[:10]),
		"raw position 2^32-1":        frame(FrameRaw, 0xffffffff, 10, good[:10]),
		"zstd position out of range": frame(FrameZstd, 3, uint32(len(z)), z),
		"missing out of range":       frame(FrameMissing, 3, 0, nil),
		"missing with payload":       frame(FrameMissing, 1, 1, []byte{0}),
		"raw too short":              frame(FrameRaw, 1, 199, good[:199]),
		"raw too long":               frame(FrameRaw, 2, 11, good[:11]),
		"raw length 2^32-1":          frame(FrameRaw, 1, 0xffffffff, nil),
		"zstd far too long":          frame(FrameZstd, 2, 10+1025, make([]byte, 10+1025)),
		"zstd garbage":               frame(FrameZstd, 1, 20, bytes.Repeat([]byte{0xee}, 20)),
		"zstd decodes short":         frame(FrameZstd, 1, uint32(len(zstdOf(t, good[:199]))), zstdOf(t, good[:199])),
		"zstd decodes long":          frame(FrameZstd, 2, uint32(len(z)), z),
		"zstd empty payload":         frame(FrameZstd, 1, 0, nil),
		"zstd bomb":                  frame(FrameZstd, 2, uint32(len(rleBomb(32<<20))), rleBomb(32<<20)), // 1030 bytes for 32 MiB
		"end counts too many":        frame(FrameEnd, 2, 0, nil),
		"end counts too few":         frame(FrameEnd, 0, 0, nil),
		"end with payload":           frame(FrameEnd, 1, 1, []byte{0}),
	}
	for name, bad := range cases {
		stream := append(append([]byte("OPB1"), ok...), bad...)
		br, err := NewBlockReader(bytes.NewReader(stream), sizes)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := br.Next(); err != nil || !bytes.Equal(b.Data, good) {
			t.Fatalf("%s: the good frame before: %v", name, err)
		}
		b, err := br.Next()
		if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrTruncated) || b != nil {
			t.Errorf("%s: got %v, %v; want ErrMalformed", name, b, err)
		}
	}
	for _, magic := range []string{"OPB0", "opb1", "\x00\x00\x00\x00", "\x28\xb5\x2f\xfd"} {
		if _, err := NewBlockReader(strings.NewReader(magic+string(ok)), sizes); !errors.Is(err, ErrMalformed) {
			t.Errorf("magic %q: got %v, want ErrMalformed", magic, err)
		}
	}
}

// TestBlockReaderLenient pins what the reader accepts although the hub
// never sends it: frames out of order or repeated (the End frame counts
// frames, not distinct positions), a zstd frame at most 1024 bytes larger
// than the block, and bytes after the end frame.
func TestBlockReaderLenient(t *testing.T) {
	a, b := bytes.Repeat([]byte("a"), 300), randomBytes(40)
	incompressible := randomBytes(100)
	zb := zstdOf(t, incompressible) // larger than the block: a hub would send it raw
	stream := []byte("OPB1")
	stream = append(stream, frame(FrameRaw, 1, 40, b)...)
	stream = append(stream, frame(FrameZstd, 0, uint32(len(zstdOf(t, a))), zstdOf(t, a))...)
	stream = append(stream, frame(FrameRaw, 1, 40, b)...)
	stream = append(stream, frame(FrameZstd, 2, uint32(len(zb)), zb)...)
	stream = append(stream, frame(FrameEnd, 4, 0, nil)...)
	stream = append(stream, "trailing bytes are never read"...)
	br, err := NewBlockReader(bytes.NewReader(stream), []int{300, 40, 100})
	if err != nil {
		t.Fatal(err)
	}
	var pos []int
	for {
		blk, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, blk.Pos)
	}
	if !reflect.DeepEqual(pos, []int{1, 0, 1, 2}) {
		t.Fatalf("positions %v", pos)
	}
}

func TestBlockWriterFailingWriter(t *testing.T) {
	bw, err := NewBlockWriter(failWriter{}, nil)
	if err != nil {
		t.Fatalf("the magic is buffered until the first frame; got %v", err)
	}
	if err := bw.Block(0, []byte("x")); err == nil {
		t.Fatal("Block on a broken connection succeeded")
	}
	if err := bw.Missing(1); err == nil {
		t.Fatal("Missing on a broken connection succeeded")
	}
	if err := bw.End(); err == nil {
		t.Fatal("End on a broken connection succeeded")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("connection reset") }

// exampleStream is the worked example of docs/SYNC_PROTOCOL.md, byte for
// byte: a request for three blocks (files of 64 and 4 bytes, and a block of
// a file the hub can no longer read) of which the hub compresses the first,
// sends the second raw and lacks the third.
const exampleStream = "4f504231" + // "OPB1"
	"5a 00000000 0000000e 28b52ffd 04 00 030200 61 e22293aa" + // Z pos 0: 64 × 'a' as a 14-byte zstd frame
	"52 00000001 00000004 deadbeef" + // R pos 1: 4 raw bytes
	"4d 00000002 00000000" + // M pos 2
	"45 00000003 00000000" // E: 3 frames

func TestSpecExample(t *testing.T) {
	stream, err := hex.DecodeString(strings.ReplaceAll(exampleStream, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	br, err := NewBlockReader(bytes.NewReader(stream), []int{64, 4, 128 << 10})
	if err != nil {
		t.Fatal(err)
	}
	want := []Block{
		{Pos: 0, Data: bytes.Repeat([]byte("a"), 64), WireBytes: 9 + 14},
		{Pos: 1, Data: []byte{0xde, 0xad, 0xbe, 0xef}, WireBytes: 9 + 4},
		{Pos: 2, Missing: true, WireBytes: 9},
	}
	for _, w := range want {
		b, err := br.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*b, w) {
			t.Fatalf("got %+v, want %+v", *b, w)
		}
	}
	if _, err := br.Next(); err != io.EOF {
		t.Fatalf("got %v, want io.EOF", err)
	}
	// BlockWriter writes the raw, missing and end frames the same way (its
	// zstd bytes may differ with the encoder's version).
	mine, _, _ := writeStream(t, []streamItem{{data: want[0].Data}, {data: want[1].Data}, {missing: true}})
	if !bytes.Equal(mine[4+23:], stream[4+23:]) || mine[4] != FrameZstd {
		t.Fatalf("BlockWriter wrote % x", mine)
	}
}

func TestNumBlocks(t *testing.T) {
	const bs = 128 << 10
	for _, c := range []struct {
		size int64
		want int
	}{{-1, 0}, {0, 0}, {1, 1}, {bs - 1, 1}, {bs, 1}, {bs + 1, 2}, {3 * bs, 3}, {1 << 42, 1 << 25}} {
		if got := NumBlocks(c.size, bs); got != c.want {
			t.Errorf("NumBlocks(%d) = %d, want %d", c.size, got, c.want)
		}
	}
}

// ---- block lists ------------------------------------------------------

func TestFileBlocksValidate(t *testing.T) {
	good := sampleFileBlocks()
	with := func(f func(*FileBlocks)) FileBlocks {
		fb := good
		fb.Hashes = bytes.Clone(good.Hashes)
		fb.Weak = bytes.Clone(good.Weak)
		f(&fb)
		return fb
	}
	cases := []struct {
		name string
		fb   FileBlocks
		ok   bool
	}{
		{"good", good, true},
		{"upper-case hex", with(func(f *FileBlocks) { f.SHA256 = strings.ToUpper(f.SHA256) }), true},
		{"empty file, no blocks", FileBlocks{SHA256: sha(""), Size: 0, BlockSize: 128 << 10}, true},
		{"empty file, empty slices", FileBlocks{SHA256: sha(""), Size: 0, BlockSize: 128 << 10, Hashes: []byte{}, Weak: []byte{}}, true},
		{"exactly one block", FileBlocks{SHA256: sha("x"), Size: 128 << 10, BlockSize: 128 << 10, Hashes: make([]byte, 32), Weak: make([]byte, 4)}, true},
		{"16 MiB blocks", FileBlocks{SHA256: sha("x"), Size: 1, BlockSize: 16 << 20, Hashes: make([]byte, 32), Weak: make([]byte, 4)}, true},
		{"largest size", FileBlocks{SHA256: sha("x"), Size: 1 << 42, BlockSize: 16 << 20, Hashes: make([]byte, 32<<18), Weak: make([]byte, 4<<18)}, true},
		{"bad hex", with(func(f *FileBlocks) { f.SHA256 = strings.Repeat("zz", 32) }), false},
		{"short hash name", with(func(f *FileBlocks) { f.SHA256 = f.SHA256[:62] }), false},
		{"long hash name", with(func(f *FileBlocks) { f.SHA256 += "00" }), false},
		{"empty hash name", with(func(f *FileBlocks) { f.SHA256 = "" }), false},
		{"negative size", with(func(f *FileBlocks) { f.Size = -1 }), false},
		{"size over 4 TiB", with(func(f *FileBlocks) { f.Size = 1<<42 + 1 }), false},
		{"block size 0", with(func(f *FileBlocks) { f.BlockSize = 0 }), false},
		{"block size negative", with(func(f *FileBlocks) { f.BlockSize = -128 << 10 }), false},
		{"block size 64 KiB", with(func(f *FileBlocks) { f.BlockSize = 64 << 10 }), false},
		{"block size not a power of two", with(func(f *FileBlocks) { f.BlockSize = 192 << 10 }), false},
		{"block size 32 MiB", with(func(f *FileBlocks) { f.BlockSize = 32 << 20 }), false},
		{"one hash byte short", with(func(f *FileBlocks) { f.Hashes = f.Hashes[:95] }), false},
		{"a hash too many", with(func(f *FileBlocks) { f.Hashes = append(f.Hashes, make([]byte, 32)...) }), false},
		{"no hashes", with(func(f *FileBlocks) { f.Hashes = nil }), false},
		{"weak short", with(func(f *FileBlocks) { f.Weak = f.Weak[:8] }), false},
		{"weak long", with(func(f *FileBlocks) { f.Weak = append(f.Weak, 0) }), false},
		{"empty file with a block", FileBlocks{SHA256: sha(""), Size: 0, BlockSize: 128 << 10, Hashes: make([]byte, 32), Weak: make([]byte, 4)}, false},
	}
	for _, c := range cases {
		err := c.fb.Validate()
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", c.name, err)
		}
	}
}

func TestFileBlocksAccessors(t *testing.T) {
	fb := sampleFileBlocks()
	spans := [][2]int64{{0, 128 << 10}, {128 << 10, 128 << 10}, {256 << 10, 1000}}
	for i, s := range spans {
		off, n := fb.BlockSpan(i)
		if off != s[0] || int64(n) != s[1] {
			t.Errorf("BlockSpan(%d) = %d, %d; want %d, %d", i, off, n, s[0], s[1])
		}
		h := sha256.Sum256([]byte{byte(i)})
		if !bytes.Equal(fb.Hash(i), h[:]) {
			t.Errorf("Hash(%d) wrong", i)
		}
		if w := fb.WeakHash(i); w != 0x01020304*uint32(i+1) {
			t.Errorf("WeakHash(%d) = %#x", i, w)
		}
	}
	// Blocks beyond 2^31 bytes: offsets are int64.
	big := FileBlocks{SHA256: sha("big"), Size: 5 << 30, BlockSize: 16 << 20}
	if off, n := big.BlockSpan(319); off != 319*(16<<20) || n != 16<<20 {
		t.Errorf("BlockSpan(319) of a 5 GiB file = %d, %d", off, n)
	}
}

// ---- tokens -----------------------------------------------------------

func TestNewTokenSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		s, err := NewTokenSecret()
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 28 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Fatalf("secret %q: want 28 characters of lower-case base32", s)
		}
		if seen[s] {
			t.Fatalf("secret %q twice", s)
		}
		seen[s] = true
		if got, hub, err := ParseToken(s); err != nil || got != s || hub != protocol.EmptyDeviceID {
			t.Fatalf("ParseToken(%q) = %q, %v, %v", s, got, hub, err)
		}
	}
}

func TestTokenRoundTrip(t *testing.T) {
	hub := protocol.NewDeviceID([]byte("the hub's certificate"))
	secret, err := NewTokenSecret()
	if err != nil {
		t.Fatal(err)
	}
	tok := FormatToken(secret, hub)
	if tok != secret+"."+hub.String() || len(hub.String()) != 63 {
		t.Fatalf("token %q", tok)
	}
	for _, variant := range []string{
		tok,
		"  " + tok + "\n",    // pasted with whitespace
		strings.ToUpper(tok), // typed in capitals
		secret + "." + strings.ToLower(hub.String()),
		secret + "." + strings.ReplaceAll(hub.String(), "-", ""), // without dashes
	} {
		s, h, err := ParseToken(variant)
		if err != nil || s != secret || h != hub {
			t.Errorf("ParseToken(%q) = %q, %v, %v", variant, s, h, err)
		}
	}
	if TokenDigest(secret) != TokenDigest(strings.ToUpper(secret)) {
		t.Error("TokenDigest depends on case")
	}
	sum := sha256.Sum256([]byte(secret))
	if TokenDigest(secret) != hex.EncodeToString(sum[:]) {
		t.Error("TokenDigest is not the hex SHA-256 of the lower-case secret")
	}
}

func TestParseToken(t *testing.T) {
	hub := protocol.NewDeviceID([]byte("hub"))
	other := protocol.NewDeviceID([]byte("other"))
	id := hub.String()
	badCheck := id[:6] + string("ABCD"[strings.IndexByte("ABCD", id[6])+1&3]) + id[7:] // wrong check digit
	const sec = "abcdefghijklmnopqrstuvwxyz"
	cases := []struct {
		tok    string
		secret string
		hub    protocol.DeviceID
		ok     bool
	}{
		{sec, sec, protocol.EmptyDeviceID, true},
		{sec + "." + id, sec, hub, true},
		{sec + "." + other.String(), sec, other, true},
		{"ABCDEFGHIJKLMNOP", "abcdefghijklmnop", protocol.EmptyDeviceID, true}, // 16: shortest
		{strings.Repeat("a", 64), strings.Repeat("a", 64), protocol.EmptyDeviceID, true},
		{"2345672345672345", "2345672345672345", protocol.EmptyDeviceID, true},
		// An empty hub part is no hub ID: the box then needs --hub-id.
		{sec + ".", sec, protocol.EmptyDeviceID, true},
		{"abcdefghijklmno", "", protocol.EmptyDeviceID, false},       // 15: too short
		{strings.Repeat("a", 65), "", protocol.EmptyDeviceID, false}, // too long
		{"", "", protocol.EmptyDeviceID, false},
		{"." + id, "", protocol.EmptyDeviceID, false},
		{"abcdefghijklmnop1", "", protocol.EmptyDeviceID, false}, // 1 is not base32
		{"abcdefghijklmnop0", "", protocol.EmptyDeviceID, false}, // nor 0, 8, 9
		{"abcdefghijklmnop8", "", protocol.EmptyDeviceID, false},
		{"abcdefgh-ijklmnopq", "", protocol.EmptyDeviceID, false},
		{"abcdefgh ijklmnopq", "", protocol.EmptyDeviceID, false},
		{"abcdefghijklmnopé", "", protocol.EmptyDeviceID, false},
		{sec + ".NOT-A-DEVICE-ID", "", protocol.EmptyDeviceID, false},
		{sec + "." + id[:len(id)-1], "", protocol.EmptyDeviceID, false},
		{sec + "." + badCheck, "", protocol.EmptyDeviceID, false},
		{sec + "." + id + ".x", "", protocol.EmptyDeviceID, false},
		{sec + "." + id + "-", sec, hub, true}, // dashes are ignored
	}
	for _, c := range cases {
		s, h, err := ParseToken(c.tok)
		if c.ok {
			if err != nil || s != c.secret || h != c.hub {
				t.Errorf("ParseToken(%q) = %q, %v, %v; want %q, %v", c.tok, s, h, err, c.secret, c.hub)
			}
			continue
		}
		if !errors.Is(err, ErrBadToken) || s != "" || h != protocol.EmptyDeviceID {
			t.Errorf("ParseToken(%q) = %q, %v, %v; want ErrBadToken", c.tok, s, h, err)
		}
	}
}

// ---- TLS --------------------------------------------------------------

// selfSigned makes a certificate like a node's (appliance/identity), valid
// from notBefore to notAfter.
func selfSigned(t testing.TB, name string, notBefore, notAfter time.Time) (tls.Certificate, protocol.DeviceID) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(mrand.Int64()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{name},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, protocol.NewDeviceID(der)
}

func validCert(t testing.TB, name string) (tls.Certificate, protocol.DeviceID) {
	return selfSigned(t, name, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// hubServer is an HTTPS server with ServerTLS whose handler reports the
// client's device ID as PeerDevice sees it.
func hubServer(t *testing.T, cert tls.Certificate) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := PeerDevice(r.TLS)
		if !ok {
			http.Error(w, "no client certificate", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "%s tls%x", id, r.TLS.Version)
	}))
	srv.TLS = ServerTLS(cert)
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, cfg *tls.Config, url string) (int, string, error) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestClientTLSPinning(t *testing.T) {
	hubCert, hubID := validCert(t, "hub")
	boxCert, boxID := validCert(t, "box")
	_, otherID := validCert(t, "other hub")
	srv := hubServer(t, hubCert)

	status, body, err := get(t, ClientTLS(boxCert, hubID), srv.URL)
	if err != nil {
		t.Fatalf("pinned to the right hub: %v", err)
	}
	if status != http.StatusOK || body != fmt.Sprintf("%s tls%x", boxID, tls.VersionTLS13) {
		t.Fatalf("hub saw %d %q; want the box's ID %s over TLS 1.3", status, body, boxID)
	}

	_, _, err = get(t, ClientTLS(boxCert, otherID), srv.URL)
	if !errors.Is(err, ErrWrongPeer) {
		t.Fatalf("pinned to another hub: got %v, want ErrWrongPeer", err)
	}
	if !strings.Contains(err.Error(), hubID.String()) || !strings.Contains(err.Error(), otherID.String()) {
		t.Errorf("the error should name both IDs: %v", err)
	}

	// The zero ID (a box given no hub ID) trusts nobody.
	if _, _, err = get(t, ClientTLS(boxCert, protocol.EmptyDeviceID), srv.URL); !errors.Is(err, ErrWrongPeer) {
		t.Fatalf("pinned to the empty ID: got %v, want ErrWrongPeer", err)
	}
}

func TestClientTLSIgnoresDatesAndNames(t *testing.T) {
	// A box whose clock is years off must still trust its hub: the pin is
	// the trust, not the validity dates, the CA or the host name.
	long := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	hubCert, hubID := selfSigned(t, "not-127.0.0.1", long, long.Add(time.Hour))
	boxCert, boxID := selfSigned(t, "box", time.Now().Add(50*365*24*time.Hour), time.Now().Add(51*365*24*time.Hour))
	srv := hubServer(t, hubCert)
	_, body, err := get(t, ClientTLS(boxCert, hubID), srv.URL)
	if err != nil {
		t.Fatalf("expired hub certificate: %v", err)
	}
	if !strings.HasPrefix(body, boxID.String()) {
		t.Fatalf("hub saw %q, want %s", body, boxID)
	}
}

func TestServerTLS(t *testing.T) {
	hubCert, hubID := validCert(t, "hub")
	srv := hubServer(t, hubCert)

	// No client certificate: the connection is made, the handler decides.
	status, _, err := get(t, &tls.Config{InsecureSkipVerify: true}, srv.URL)
	if err != nil || status != http.StatusUnauthorized {
		t.Fatalf("client without certificate: %d, %v; want 401 from the handler", status, err)
	}
	// TLS 1.2 is refused.
	boxCert, _ := validCert(t, "box")
	old := ClientTLS(boxCert, hubID)
	old.MinVersion, old.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if _, _, err := get(t, old, srv.URL); err == nil {
		t.Fatal("a TLS 1.2 client connected")
	}
	// ClientTLS itself insists on TLS 1.3.
	if cfg := ClientTLS(boxCert, hubID); cfg.MinVersion != tls.VersionTLS13 {
		t.Fatalf("ClientTLS MinVersion %x", cfg.MinVersion)
	}

	// Over a bare tls.Listen too, both sides see each other's device ID.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerTLS(hubCert))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan protocol.DeviceID, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			seen <- protocol.EmptyDeviceID
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			seen <- protocol.EmptyDeviceID
			return
		}
		cs := tc.ConnectionState()
		id, _ := PeerDevice(&cs)
		seen <- id
	}()
	boxCert2, boxID2 := validCert(t, "box2")
	conn, err := tls.Dial("tcp", ln.Addr().String(), ClientTLS(boxCert2, hubID))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := conn.ConnectionState()
	if got, ok := PeerDevice(&cs); !ok || got != hubID {
		t.Errorf("box sees the hub as %v", got)
	}
	if got := <-seen; got != boxID2 {
		t.Errorf("hub sees the box as %v, want %v", got, boxID2)
	}
}

func TestPeerDeviceWithoutCertificate(t *testing.T) {
	if id, ok := PeerDevice(nil); ok || id != protocol.EmptyDeviceID {
		t.Error("PeerDevice(nil) reported a device")
	}
	if id, ok := PeerDevice(&tls.ConnectionState{}); ok || id != protocol.EmptyDeviceID {
		t.Error("PeerDevice without certificates reported a device")
	}
}

// Decode refuses trailing data even when it is a stray ']' or '}', which
// json.Decoder.More does not report (the fuzzer found "{}}").
func TestDecodeTrailingCloser(t *testing.T) {
	for _, s := range []string{`{"cursor":1}}`, `{"cursor":1}]`, `{"cursor":1} ] ]`} {
		var c Changes
		if err := Decode(bytes.NewReader(zstdOf(t, []byte(s))), &c); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: got %v, want ErrMalformed (trailing data)", s, err)
		}
	}
}
