package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/syncthing/syncthing/lib/protocol"
)

// The decoders face bytes from the other side of a thin, flaky link (and,
// for the hub, from any client with a certificate). Each fuzz target checks
// that its decoder never panics, fails only with its documented error, and
// that what it accepts survives a re-encoding unchanged.
//
// The Decode targets take a flag: when set, the input is compressed by the
// target first, so the fuzzer explores the JSON layer instead of spending
// its time on zstd checksums; when clear, the input goes to Decode as is.

var fuzzEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))

// fuzzDecode decodes data into a new T and checks the properties every
// message shares; it returns the message or nil.
func fuzzDecode[T any](t *testing.T, data []byte, compress bool) *T {
	in := data
	if compress {
		in = fuzzEncoder.EncodeAll(data, nil)
	}
	v := new(T)
	if err := Decode(bytes.NewReader(in), v); err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("Decode failed with %v, which does not wrap ErrMalformed", err)
		}
		return nil
	}
	// Decode refuses trailing data; testdata/fuzz holds the "{}}" this
	// check found before that was true.
	if compress && !json.Valid(data) {
		t.Fatalf("Decode accepted %q, which is not one JSON value", data)
	}
	// What was accepted re-encodes to a message that decodes to the same
	// JSON (comparing JSON, not values, because an empty map and a nil
	// one are the same message).
	j1, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("accepted message does not marshal: %v", err)
	}
	enc, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	v2 := new(T)
	if err := Decode(bytes.NewReader(enc), v2); err != nil {
		t.Fatalf("re-encoded message does not decode: %v\n%s", err, j1)
	}
	j2, _ := json.Marshal(v2)
	if !bytes.Equal(j1, j2) {
		t.Fatalf("round trip changed the message:\n%s\n%s", j1, j2)
	}
	return v
}

func addMessageSeeds(f *testing.F, msgs ...any) {
	for _, m := range msgs {
		enc, err := Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		plain, err := json.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc, false)
		f.Add(plain, true)
	}
	f.Add([]byte{}, false)
	f.Add([]byte("null"), true)
	f.Add([]byte(`{"a":1}`), true)
}

func FuzzDecodeChanges(f *testing.F) {
	addMessageSeeds(f,
		&Changes{Cursor: 42, Courses: []CourseChange{{ID: "water-cycle", Version: 3, Manifest: []byte(`{"id":"water-cycle"}`),
			Patches: map[string][]string{sha("new"): {sha("old")}}}}, Removed: []string{"gone"}},
		&Changes{Courses: []CourseChange{}, Removed: []string{}},
		&Changes{Cursor: -1},
		&Changes{Courses: []CourseChange{{ID: "Water", Version: 1, Manifest: []byte("{}")}}, Removed: []string{"../x"}},
		&Changes{Courses: []CourseChange{{ID: "w", Version: 1, Manifest: []byte("{}"), Patches: map[string][]string{"zz": {sha("old")}}}}},
	)
	f.Fuzz(func(t *testing.T, data []byte, compress bool) {
		c := fuzzDecode[Changes](t, data, compress)
		if c == nil {
			return
		}
		err := c.Validate()
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Validate failed with %v, which does not wrap ErrMalformed", err)
			}
			return
		}
		// What the box relies on once Validate passes, restated
		// independently of Validate's code.
		if c.Cursor < 0 {
			t.Fatalf("valid changes with cursor %d", c.Cursor)
		}
		ids := map[string]bool{}
		for _, cc := range c.Courses {
			if !courseIDPattern.MatchString(cc.ID) || ids[cc.ID] {
				t.Fatalf("valid changes with course ID %q (seen before: %v)", cc.ID, ids[cc.ID])
			}
			ids[cc.ID] = true
			if cc.Version < 1 || len(cc.Manifest) == 0 || len(cc.Manifest) > MaxManifest {
				t.Fatalf("valid change %s v%d with a %d-byte manifest", cc.ID, cc.Version, len(cc.Manifest))
			}
			for to, froms := range cc.Patches {
				if !sha256Pattern.MatchString(to) || len(froms) > MaxPatchBases {
					t.Fatalf("valid patch offer %q with %d bases", to, len(froms))
				}
				for _, from := range froms {
					if !sha256Pattern.MatchString(from) {
						t.Fatalf("valid patch base %q", from)
					}
				}
			}
		}
		for _, id := range c.Removed {
			if !courseIDPattern.MatchString(id) {
				t.Fatalf("valid removal of %q", id)
			}
		}
	})
}

var (
	courseIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)
	sha256Pattern   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func FuzzDecodeFilesResponse(f *testing.F) {
	fb := sampleFileBlocks()
	addMessageSeeds(f,
		&FilesResponse{Files: []FileBlocks{fb}},
		&FilesResponse{Files: []FileBlocks{{SHA256: sha(""), BlockSize: 128 << 10}, {SHA256: sha("x"), Size: 1, BlockSize: 16 << 20, Hashes: make([]byte, 32), Weak: make([]byte, 4)}}},
		&FilesResponse{Files: []FileBlocks{{SHA256: "nope", Size: -1, BlockSize: 3}}},
	)
	f.Fuzz(func(t *testing.T, data []byte, compress bool) {
		r := fuzzDecode[FilesResponse](t, data, compress)
		if r == nil {
			return
		}
		for _, fb := range r.Files {
			if err := fb.Validate(); err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("Validate failed with %v, which does not wrap ErrMalformed", err)
				}
				continue
			}
			// A valid list can be used without further checks.
			n := NumBlocks(fb.Size, fb.BlockSize)
			var end int64
			for i := range n {
				if len(fb.Hash(i)) != 32 {
					t.Fatalf("Hash(%d) is %d bytes", i, len(fb.Hash(i)))
				}
				_ = fb.WeakHash(i)
				off, ln := fb.BlockSpan(i)
				if off != end || ln <= 0 || ln > fb.BlockSize || (i < n-1 && ln != fb.BlockSize) {
					t.Fatalf("BlockSpan(%d) = %d, %d for size %d, block size %d", i, off, ln, fb.Size, fb.BlockSize)
				}
				end = off + int64(ln)
			}
			if end != fb.Size {
				t.Fatalf("blocks cover %d bytes of %d", end, fb.Size)
			}
		}
	})
}

func FuzzDecodeBlocksRequest(f *testing.F) {
	addMessageSeeds(f,
		&BlocksRequest{Want: []WantBlocks{{File: sha("a"), Indexes: []int{0, 5, 2}}, {File: sha("b"), Indexes: []int{7}}}},
		&BlocksRequest{Want: []WantBlocks{{File: "", Indexes: []int{-1}}}},
		&FilesRequest{Files: []string{sha("a")}},
		&BlocksRequest{Want: make([]WantBlocks, MaxBlocksPerBatch+1)},
	)
	f.Fuzz(func(t *testing.T, data []byte, compress bool) {
		if r := fuzzDecode[BlocksRequest](t, data, compress); r != nil {
			n := 0
			for _, w := range r.Want {
				n += len(w.Indexes)
			}
			err := r.Validate()
			switch {
			case err != nil && !errors.Is(err, ErrMalformed):
				t.Fatalf("Validate failed with %v, which does not wrap ErrMalformed", err)
			case err == nil && (n > MaxBlocksPerBatch || len(r.Want) > MaxBlocksPerBatch):
				// The hub does one lookup per file and one read per
				// block of a valid request: both must be bounded.
				t.Fatalf("valid request for %d blocks of %d files", n, len(r.Want))
			case err != nil && n <= MaxBlocksPerBatch && len(r.Want) <= MaxBlocksPerBatch:
				t.Fatalf("refused a request within the limits: %v", err)
			}
		}
		fuzzDecode[FilesRequest](t, data, compress)
	})
}

func FuzzDecodeEnrol(f *testing.F) {
	addMessageSeeds(f,
		&EnrolRequest{Token: "abcdefghijklmnopqrstuvwxyz23." + protocol.NewDeviceID([]byte("hub")).String(), Hostname: "school-7"},
		&EnrolResponse{DeviceID: protocol.NewDeviceID([]byte("box")).String(), Site: "Kisumu", Channels: []string{"primary"}},
		&Error{Code: CodeTokenUsed, Message: "used"},
	)
	f.Fuzz(func(t *testing.T, data []byte, compress bool) {
		if req := fuzzDecode[EnrolRequest](t, data, compress); req != nil {
			// The hub parses the token next.
			if _, _, err := ParseToken(req.Token); err != nil && !errors.Is(err, ErrBadToken) {
				t.Fatalf("ParseToken: %v", err)
			}
		}
		fuzzDecode[EnrolResponse](t, data, compress)
		fuzzDecode[Error](t, data, compress)
	})
}

// fuzzSizes turns fuzz bytes into at most 32 block sizes of 0–65535 bytes.
func fuzzSizes(spec []byte) []int {
	var sizes []int
	for i := 0; i+1 < len(spec) && len(sizes) < 32; i += 2 {
		sizes = append(sizes, int(spec[i])<<8|int(spec[i+1]))
	}
	return sizes
}

func sizeSpec(sizes ...int) []byte {
	var b []byte
	for _, s := range sizes {
		b = append(b, byte(s>>8), byte(s))
	}
	return b
}

func FuzzBlockReader(f *testing.F) {
	seed := func(items []streamItem) {
		var buf bytes.Buffer
		bw, _ := NewBlockWriter(&buf, nil)
		for i, it := range items {
			if it.missing {
				bw.Missing(i)
			} else {
				bw.Block(i, it.data)
			}
		}
		bw.End()
		f.Add(buf.Bytes(), sizeSpec(sizesOf(items)...))
	}
	seed(nil)
	seed([]streamItem{{data: bytes.Repeat([]byte("abc"), 400)}, {data: []byte("0123456789")}, {data: make([]byte, 7), missing: true}})
	seed([]streamItem{{data: []byte(strings.Repeat("outpost ", 50))}, {data: []byte{}}})
	f.Add([]byte("OPB1E\x00\x00\x00\x00\x00\x00\x00\x00"), []byte{})
	f.Add([]byte("OPB1R\x00\x00\x00\x00\x00\x00\x00\x03abcE\x00\x00\x00\x01\x00\x00\x00\x00"), sizeSpec(3))
	f.Add([]byte("OPB1"), sizeSpec(1, 2))

	f.Fuzz(func(t *testing.T, stream, spec []byte) {
		sizes := fuzzSizes(spec)
		br, err := NewBlockReader(bytes.NewReader(stream), sizes)
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("NewBlockReader: %v", err)
			}
			return
		}
		var got []streamItem
		var pos []int
		wire := 4
		for {
			b, err := br.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if errors.Is(err, ErrTruncated) == errors.Is(err, ErrMalformed) {
					t.Fatalf("Next: %v wraps neither or both of ErrTruncated and ErrMalformed", err)
				}
				if b != nil {
					t.Fatal("Next returned a block with its error")
				}
				return
			}
			if b.Pos < 0 || b.Pos >= len(sizes) {
				t.Fatalf("position %d outside the %d requested", b.Pos, len(sizes))
			}
			if b.Missing {
				if b.Data != nil || b.WireBytes != 9 {
					t.Fatalf("missing block with %d bytes of data, %d on the wire", len(b.Data), b.WireBytes)
				}
			} else if len(b.Data) != sizes[b.Pos] {
				t.Fatalf("block %d has %d bytes, the request says %d", b.Pos, len(b.Data), sizes[b.Pos])
			}
			wire += b.WireBytes
			if b.WireBytes < 9 || wire > len(stream) {
				t.Fatalf("frames claim %d bytes of a %d-byte stream", wire, len(stream))
			}
			got = append(got, streamItem{data: bytes.Clone(b.Data), missing: b.Missing})
			pos = append(pos, b.Pos)
		}
		if _, err := br.Next(); err != io.EOF {
			t.Fatalf("Next after the end: %v", err)
		}
		// A stream the reader accepted whole, written again by BlockWriter,
		// reads back the same.
		var buf bytes.Buffer
		bw, _ := NewBlockWriter(&buf, nil)
		for k, it := range got {
			if it.missing {
				bw.Missing(pos[k])
			} else {
				bw.Block(pos[k], it.data)
			}
		}
		bw.End()
		br, err = NewBlockReader(&buf, sizes)
		if err != nil {
			t.Fatal(err)
		}
		for k, it := range got {
			b, err := br.Next()
			if err != nil {
				t.Fatalf("rewritten frame %d: %v", k, err)
			}
			if b.Pos != pos[k] || b.Missing != it.missing || !bytes.Equal(b.Data, it.data) {
				t.Fatalf("rewritten frame %d differs", k)
			}
		}
		if _, err := br.Next(); err != io.EOF {
			t.Fatalf("rewritten stream: %v", err)
		}
	})
}

// FuzzBlockStreamRoundTrip checks the writer against the reader: any blocks
// at any positions come back as written.
func FuzzBlockStreamRoundTrip(f *testing.F) {
	f.Add([]byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), []byte{10, 0, 3, 40, 0, 255})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, data []byte, plan []byte) {
		// plan: pairs of (position, length); length 255 means Missing.
		var sizes []int
		var items []streamItem
		pos := []int{}
		for i := 0; i+1 < len(plan) && len(items) < 32; i += 2 {
			p, n := int(plan[i])%32, int(plan[i+1])
			for len(sizes) <= p {
				sizes = append(sizes, 0)
			}
			it := streamItem{missing: n == 255}
			if !it.missing {
				n = min(n, len(data))
				it.data = data[:n]
				sizes[p] = n
			}
			items = append(items, it)
			pos = append(pos, p)
		}
		// A position written twice must keep one size.
		for k, it := range items {
			if !it.missing {
				items[k].data = it.data[:min(len(it.data), sizes[pos[k]])]
				if len(items[k].data) != sizes[pos[k]] {
					items[k].missing = true
				}
			}
		}
		var buf bytes.Buffer
		bw, err := NewBlockWriter(&buf, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, it := range items {
			if it.missing {
				err = bw.Missing(pos[k])
			} else {
				err = bw.Block(pos[k], it.data)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := bw.End(); err != nil {
			t.Fatal(err)
		}
		br, err := NewBlockReader(bytes.NewReader(buf.Bytes()), sizes)
		if err != nil {
			t.Fatal(err)
		}
		for k, it := range items {
			b, err := br.Next()
			if err != nil {
				t.Fatalf("frame %d: %v", k, err)
			}
			if b.Pos != pos[k] || b.Missing != it.missing || (!it.missing && !bytes.Equal(b.Data, it.data)) {
				t.Fatalf("frame %d: got %+v, wrote pos %d %+v", k, b, pos[k], it)
			}
		}
		if _, err := br.Next(); err != io.EOF {
			t.Fatalf("after the last frame: %v", err)
		}
	})
}

func FuzzParseToken(f *testing.F) {
	hub := protocol.NewDeviceID([]byte("hub"))
	for _, s := range []string{
		"abcdefghijklmnopqrstuvwxyz23",
		FormatToken("abcdefghijklmnopqrstuvwxyz23", hub),
		"ABCDEFGHIJKLMNOP." + strings.ReplaceAll(hub.String(), "-", ""),
		"abcdefghijklmnop.",
		"abcdefghijklmnop.x.y",
		"  abcdefghijklmnop\n",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		secret, id, err := ParseToken(tok)
		if err != nil {
			if !errors.Is(err, ErrBadToken) || secret != "" || id != protocol.EmptyDeviceID {
				t.Fatalf("ParseToken(%q) = %q, %v, %v", tok, secret, id, err)
			}
			return
		}
		if len(secret) < 16 || len(secret) > 64 || strings.Trim(secret, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Fatalf("ParseToken(%q) accepted secret %q", tok, secret)
		}
		if TokenDigest(secret) != TokenDigest(strings.ToUpper(secret)) {
			t.Fatal("TokenDigest depends on case")
		}
		// The canonical form parses back to the same thing.
		s2, id2, err := ParseToken(FormatToken(secret, id))
		if err != nil || s2 != secret || id2 != id {
			t.Fatalf("FormatToken(%q, %v) parses as %q, %v, %v", secret, id, s2, id2, err)
		}
		if id == protocol.EmptyDeviceID {
			return
		}
		// A hub ID that parsed is one a box can pin and print.
		if back, err := protocol.DeviceIDFromString(id.String()); err != nil || !reflect.DeepEqual(back, id) {
			t.Fatalf("device ID %v does not survive String: %v", id, err)
		}
	})
}
