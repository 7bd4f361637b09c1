package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// releasedDecode is how a box of the release before pooled codecs read an
// error body: a fresh streaming decoder, Content-Encoding zstd required.
// Kept here so the hub's answers are checked against what deployed boxes
// run, not only against this package's own decoder.
func releasedDecode(t *testing.T, body []byte, v any) {
	t.Helper()
	zr, err := zstd.NewReader(bytes.NewReader(body), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxMessage), zstd.WithDecoderMaxWindow(8<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("the released decoder refuses the body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("the released decoder reads %q: %v", raw, err)
	}
}

// TestErrorBodyIsStoredZstd: an error is its JSON, uncompressed, inside a
// zstd frame of stored blocks, which the reference zstd tool, the decoder
// deployed boxes run, and this package all read.
func TestErrorBodyIsStoredZstd(t *testing.T) {
	for _, n := range []int{0, 1, 200, 128<<10 - 40, 128 << 10, 300 << 10} {
		msg := strings.Repeat("é", n/2)
		body := ErrorBody(CodeRevoked, msg)
		want, _ := json.Marshal(&Error{Code: CodeRevoked, Message: msg})
		if len(want) < 128<<10 && !bytes.Contains(body, want) {
			t.Fatalf("%d: the JSON is not stored as is", n)
		}
		if len(body) > len(want)+1+9+3*(len(want)/(128<<10)+1) {
			t.Fatalf("%d: %d bytes for %d bytes of JSON", n, len(body), len(want))
		}
		var e Error
		releasedDecode(t, body, &e)
		if e.Code != CodeRevoked || e.Message != msg {
			t.Fatalf("%d: released decoder read %+v", n, e)
		}
		e = Error{}
		if err := DecodeLimit(bytes.NewReader(body), &e, MaxRequest); err != nil || e.Message != msg {
			t.Fatalf("%d: DecodeLimit: %v", n, err)
		}
		if zstdTool, err := exec.LookPath("zstd"); err == nil {
			cmd := exec.Command(zstdTool, "-d", "-c")
			cmd.Stdin = bytes.NewReader(body)
			out, err := cmd.Output()
			if err != nil || !bytes.Equal(out, append(want, '\n')) {
				t.Fatalf("%d: zstd -d: %v, %q", n, err, out)
			}
		}
	}
}

func TestReadErrorPlainJSON(t *testing.T) {
	mk := func(ct, enc, body string) *http.Response {
		h := http.Header{"Content-Type": {ct}}
		if enc != "" {
			h.Set("Content-Encoding", enc)
		}
		return &http.Response{Status: "403 Forbidden", StatusCode: 403, Header: h, Body: io.NopCloser(strings.NewReader(body))}
	}
	var we *Error
	err := ReadError(mk("application/json; charset=utf-8", "", `{"code":"revoked","message":"the hub revoked this box"}`+"\n"))
	if !errors.As(err, &we) || we.Code != CodeRevoked || we.Message != "the hub revoked this box" {
		t.Fatalf("plain JSON error: %#v", err)
	}
	for name, r := range map[string]*http.Response{
		"not JSON":         mk("text/plain", "", `{"code":"revoked","message":"x"}`),
		"unknown field":    mk(ContentTypeJSON, "", `{"code":"revoked","message":"x","more":1}`),
		"two values":       mk(ContentTypeJSON, "", `{"code":"revoked","message":"x"} {}`),
		"too big":          mk(ContentTypeJSON, "", `{"code":"revoked","message":"`+strings.Repeat("x", maxErrorBody)+`"}`),
		"gzip":             mk(ContentTypeJSON, "gzip", `{"code":"revoked","message":"x"}`),
		"zstd header, not": mk(ContentTypeJSON, "zstd", `{"code":"revoked","message":"x"}`),
	} {
		if err := ReadError(r); !errors.As(err, &we) || we.Code != CodeInternal || !strings.Contains(we.Message, "403") {
			t.Errorf("%s: %#v", name, err)
		}
	}
}

// allocPer is the bytes allocated per call of f, averaged over n calls.
func allocPer(n int, f func()) uint64 {
	f() // warm the pools
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range n {
		f()
	}
	runtime.ReadMemStats(&m1)
	return (m1.TotalAlloc - m0.TotalAlloc) / uint64(n)
}

// TestCodecsAreReused: answering an error, encoding and decoding a small
// message allocate bytes, not the megabytes of a new zstd encoder. The
// bounds are a few times what the JSON and the HTTP recorder need; a new
// encoder alone is ~1.8 MB.
func TestCodecsAreReused(t *testing.T) {
	perErr := allocPer(200, func() {
		WriteError(httptest.NewRecorder(), http.StatusUnauthorized, CodeUnauthorized, "sync requests need the box's certificate (mutual TLS)")
	})
	msg := &FilesRequest{Files: []string{sha("a"), sha("b")}}
	enc := mustMarshal(t, msg)
	perEnc := allocPer(200, func() {
		if _, err := Marshal(msg); err != nil {
			t.Fatal(err)
		}
	})
	perDec := allocPer(200, func() {
		var got FilesRequest
		if err := DecodeLimit(bytes.NewReader(enc), &got, MaxRequest); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("bytes allocated: %d per error answer, %d per encode, %d per decode", perErr, perEnc, perDec)
	if perErr > 4<<10 {
		t.Errorf("an error answer allocates %d bytes", perErr)
	}
	if perEnc > 16<<10 {
		t.Errorf("encoding a small message allocates %d bytes", perEnc)
	}
	if perDec > 16<<10 {
		t.Errorf("decoding a small message allocates %d bytes", perDec)
	}
}

// TestCodecPoolsAreBounded: a burst of concurrent messages makes at most
// poolSize encoders and decoders, however many goroutines ask at once.
func TestCodecPoolsAreBounded(t *testing.T) {
	enc := mustMarshal(t, &FilesRequest{Files: []string{sha("x")}})
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 20 {
				if _, err := Marshal(&FilesRequest{Files: []string{sha("y")}}); err != nil {
					t.Error(err)
				}
				var got FilesRequest
				if err := DecodeLimit(bytes.NewReader(enc), &got, MaxRequest); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := len(encoders.slots); n > poolSize {
		t.Errorf("%d encoders made, pool bound %d", n, poolSize)
	}
	if n := len(decoderPools[MaxRequest].slots); n > poolSize {
		t.Errorf("%d decoders made, pool bound %d", n, poolSize)
	}
}

// TestMessageWriterChunks: a large message goes out as several frames of at
// most chunkSize bytes of JSON, decodes to exactly what one frame would
// carry, and the decoder of a deployed box reads it.
func TestMessageWriterChunks(t *testing.T) {
	var files []FileBlocks
	for i := range 40 {
		fb := sampleFileBlocks()
		fb.Hashes = bytes.Repeat(fb.Hashes, 300)
		fb.Weak = bytes.Repeat(fb.Weak, 300)
		fb.SHA256 = sha(string(rune('a' + i)))
		files = append(files, fb)
	}
	resp := &FilesResponse{Files: files}
	whole, _ := json.Marshal(resp)
	var buf bytes.Buffer
	mw := NewMessageWriter(&buf)
	// Written in pieces, as the hub streams /v1/files.
	mw.Write([]byte(`{"files":[`))
	for i := range files {
		b, _ := json.Marshal(&files[i])
		if i > 0 {
			mw.Write([]byte(","))
		}
		mw.Write(b)
	}
	mw.Write([]byte("]}\n"))
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	if mw.Written() != int64(buf.Len()) {
		t.Fatalf("Written %d, wrote %d", mw.Written(), buf.Len())
	}
	if got := plainJSON(t, buf.Bytes()); got != string(whole)+"\n" {
		t.Fatal("the streamed JSON differs from json.Marshal's")
	}
	frames := 0
	d, _ := zstd.NewReader(nil)
	defer d.Close()
	for rest := buf.Bytes(); len(rest) > 0; frames++ {
		var h zstd.Header
		if err := h.Decode(rest); err != nil {
			t.Fatal(err)
		}
		if !h.SingleSegment || h.FrameContentSize > chunkSize {
			t.Fatalf("frame %d: %+v", frames, h)
		}
		// Find the frame's end by decoding it alone.
		n := frameLen(t, rest)
		rest = rest[n:]
	}
	if want := (len(whole) + 1 + chunkSize - 1) / chunkSize; frames != want || frames < 2 {
		t.Fatalf("%d frames for %d bytes of JSON, want %d", frames, len(whole), want)
	}
	var got FilesResponse
	releasedDecode(t, buf.Bytes(), &got)
	if len(got.Files) != len(files) || !bytes.Equal(got.Files[39].Hashes, files[39].Hashes) {
		t.Fatal("the released decoder read another message")
	}
}

// frameLen is the length of the zstd frame at the start of b.
func frameLen(t *testing.T, b []byte) int {
	t.Helper()
	var h zstd.Header
	if err := h.Decode(b); err != nil {
		t.Fatal(err)
	}
	off := h.HeaderSize
	for {
		bh := uint32(b[off]) | uint32(b[off+1])<<8 | uint32(b[off+2])<<16
		last, typ, size := bh&1 == 1, (bh>>1)&3, int(bh>>3)
		off += 3
		if typ == 1 { // RLE: one byte
			off++
		} else {
			off += size
		}
		if last {
			break
		}
	}
	if h.HasCheckSum {
		off += 4
	}
	return off
}

// releasedEncode is how a box of the release before pooled codecs
// encoded a request: one streaming encoder per message.
func releasedEncode(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

// TestLargeRequestsOfEveryRelease: a block-list request for 4,096 files
// (270 KB of JSON) as a released box encodes it declares an 8 MiB window,
// which DecodeLimit(MaxRequest) refuses and DecodeEnrolled accepts; as
// this release encodes it, both accept it. Either way at most MaxRequest
// bytes are decoded.
func TestLargeRequestsOfEveryRelease(t *testing.T) {
	var req FilesRequest
	for i := range MaxFilesPerQuery {
		req.Files = append(req.Files, sha(strconv.Itoa(i)))
	}
	released, current := releasedEncode(t, &req), mustMarshal(t, &req)
	var got FilesRequest
	if err := DecodeLimit(bytes.NewReader(released), &got, MaxRequest); !errors.Is(err, ErrMalformed) {
		t.Fatalf("DecodeLimit of a released box's request: %v, want the 8 MiB window refused", err)
	}
	for name, enc := range map[string][]byte{"released": released, "current": current} {
		got = FilesRequest{}
		if err := DecodeEnrolled(bytes.NewReader(enc), &got); err != nil || len(got.Files) != MaxFilesPerQuery {
			t.Fatalf("DecodeEnrolled, %s encoder: %v", name, err)
		}
		got = FilesRequest{}
		if name == "current" {
			if err := DecodeLimit(bytes.NewReader(enc), &got, MaxRequest); err != nil || len(got.Files) != MaxFilesPerQuery {
				t.Fatalf("DecodeLimit, current encoder: %v", err)
			}
		}
	}
	over := releasedEncode(t, &FilesRequest{Files: []string{strings.Repeat("a", MaxRequest)}})
	if err := DecodeEnrolled(bytes.NewReader(over), &got); !errors.Is(err, ErrMalformed) {
		t.Fatalf("DecodeEnrolled of a request over MaxRequest: %v", err)
	}
	perDec := allocPer(50, func() {
		var got FilesRequest
		if err := DecodeEnrolled(bytes.NewReader(released), &got); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("DecodeEnrolled of a released box's 4,096-file request: %d bytes allocated", perDec)
}

// TestSpecErrorExample pins the error body docs/SYNC_PROTOCOL.md §4.6
// shows byte by byte.
func TestSpecErrorExample(t *testing.T) {
	want := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0x1a, 0, 0, 0, 0xd1, 0, 0}
	want = append(want, `{"code":"x","message":""}`+"\n"...)
	if got := ErrorBody("x", ""); !bytes.Equal(got, want) {
		t.Fatalf("ErrorBody(x, \"\") =\n% x\nwant\n% x", got, want)
	}
}
