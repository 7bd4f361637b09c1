// Package wire is the sync protocol between a box and its upstream, as bytes:
// the messages, their encodings and the limits a decoder enforces. Both the
// hub and the box import it and nothing else of each other, so another
// implementation can be written from this package and docs/SYNC_PROTOCOL.md
// alone.
//
// Every request is made by the box (it sits behind NAT). JSON bodies travel
// zstd-compressed; block payloads are compressed one by one, only when that
// shrinks them, because most course bytes (video) do not compress.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/klauspost/compress/zstd"
)

// Version is the protocol version; it is part of every path so a hub can
// serve two generations of boxes side by side.
const Version = "v1"

// Paths of the sync API, all under mutual TLS except Enrol, which is the
// request that makes the box's certificate known.
const (
	PathEnrol   = "/v1/enrol"
	PathChanges = "/v1/changes"
	PathFiles   = "/v1/files"
	PathBlocks  = "/v1/blocks"
	PathPatch   = "/v1/patch"
)

// Headers.
const (
	// HeaderSoftware carries the box's software version on every request;
	// the hub shows it in `outpost hub boxes`.
	HeaderSoftware = "Outpost-Software"
	// HeaderPatchWindow is "offset,length": the window of the old file the
	// patch was encoded against, which the box reads as the dictionary.
	HeaderPatchWindow = "Outpost-Patch-Window"
)

// Limits a decoder enforces so a hostile or broken peer cannot make the
// other side allocate without bound.
const (
	MaxMessage        = 64 << 20 // decompressed JSON message
	MaxBlocksPerBatch = 256
	MaxFilesPerQuery  = 4096
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed sync message")

// EnrolRequest is what a box sends, over TLS with its own certificate, to
// join the hub with a one-time token.
type EnrolRequest struct {
	Token    string `json:"token"`
	Hostname string `json:"hostname"`
}

// EnrolResponse tells the box where it belongs.
type EnrolResponse struct {
	DeviceID string   `json:"device_id"` // as the hub saw the box's certificate
	Site     string   `json:"site"`
	Channels []string `json:"channels"`
}

// Changes answers GET /v1/changes?since=CURSOR: the latest state of every
// course of the box's channels that changed after the cursor.
type Changes struct {
	// Cursor is what the box sends as since= once it has applied all of
	// this message.
	Cursor  int64          `json:"cursor"`
	Courses []CourseChange `json:"courses"`
	// Removed lists course IDs the box should no longer hold.
	Removed []string `json:"removed"`
}

// CourseChange is one course version to hold.
type CourseChange struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
	// Manifest is the manifest.json exactly as published (base64 in JSON,
	// so its bytes, and so its hash, survive the trip).
	Manifest []byte `json:"manifest"`
	// Patches offers, per new file SHA-256, the old files the hub can patch
	// from (the same path in the versions it still keeps).
	Patches map[string][]string `json:"patches,omitempty"`
}

// FilesRequest asks POST /v1/files for the block lists of files.
type FilesRequest struct {
	Files []string `json:"files"`
}

// FilesResponse carries block lists. Offsets are implied: block i starts at
// i*BlockSize and all but the last are BlockSize long.
type FilesResponse struct {
	Files []FileBlocks `json:"files"`
}

// FileBlocks is one file's block list.
type FileBlocks struct {
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	BlockSize int    `json:"block_size"`
	// Hashes is the SHA-256 of every block, concatenated (32 bytes each).
	Hashes []byte `json:"hashes"`
	// Weak is every block's syncthing weak (adler32) hash, big-endian, 4
	// bytes each: how a box finds a block that moved within an old file.
	Weak []byte `json:"weak"`
}

// BlocksRequest asks POST /v1/blocks for blocks by file and index.
type BlocksRequest struct {
	Want []WantBlocks `json:"want"`
}

// WantBlocks names blocks of one file.
type WantBlocks struct {
	File    string `json:"file"`
	Indexes []int  `json:"indexes"`
}

// Error is the body of every non-2xx answer: a stable code a program can
// act on, and a message for people that says what to do next.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes.
const (
	CodeUnknownDevice = "unknown_device"
	CodeRevoked       = "revoked"
	CodeTokenUnknown  = "token_unknown"
	CodeTokenUsed     = "token_used"
	CodeTokenExpired  = "token_expired"
	CodeBadRequest    = "bad_request"
	CodeNotFound      = "not_found"
	CodeUnauthorized  = "unauthorized"
	CodeInternal      = "internal"
)

func (e *Error) Error() string { return e.Message }

// Encode writes v as zstd-compressed JSON.
func Encode(w io.Writer, v any) error {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return fmt.Errorf("encode sync message: %w", err)
	}
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		zw.Close()
		return fmt.Errorf("encode sync message: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("encode sync message: %w", err)
	}
	return nil
}

// Marshal is Encode into a byte slice.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := Encode(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// MaxRequest bounds a decompressed request body: requests are small, and a
// hub decodes them before it knows who is asking.
const MaxRequest = 1 << 20

// Decode reads zstd-compressed JSON into v, refusing more than MaxMessage
// decompressed bytes and any trailing garbage.
func Decode(r io.Reader, v any) error { return DecodeLimit(r, v, MaxMessage) }

// DecodeLimit is Decode with a smaller bound, for requests.
func DecodeLimit(r io.Reader, v any, limit int) error {
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)), zstd.WithDecoderMaxWindow(8<<20))
	if err != nil {
		return fmt.Errorf("decode sync message: %w", err)
	}
	defer zr.Close()
	body, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	if err != nil {
		return fmt.Errorf("decode sync message: %w: %w", ErrMalformed, err)
	}
	if len(body) > limit {
		return fmt.Errorf("decode sync message: %w: larger than %d bytes", ErrMalformed, limit)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode sync message: %w: %w", ErrMalformed, err)
	}
	// dec.More is false before a stray '}' or ']', so look at the bytes.
	if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
		return fmt.Errorf("decode sync message: %w: trailing data", ErrMalformed)
	}
	return nil
}

// WriteError answers with a wire Error.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	b, err := Marshal(&Error{Code: code, Message: msg})
	if err != nil {
		http.Error(w, msg, status)
		return
	}
	w.Header().Set("Content-Type", ContentTypeJSON)
	w.Header().Set("Content-Encoding", "zstd")
	w.WriteHeader(status)
	w.Write(b)
}

// ReadError turns a non-2xx response into an *Error; a body that is not one
// (a proxy's HTML page, say) becomes a generic error with the status.
func ReadError(resp *http.Response) error {
	var e Error
	if resp.Header.Get("Content-Encoding") == "zstd" {
		if err := Decode(io.LimitReader(resp.Body, 1<<20), &e); err == nil && e.Code != "" {
			return &e
		}
	}
	return &Error{Code: CodeInternal, Message: fmt.Sprintf("upstream answered %s", resp.Status)}
}

// Content types.
const (
	ContentTypeJSON   = "application/json"
	ContentTypeBlocks = "application/x-outpost-blocks"
	ContentTypePatch  = "application/x-outpost-patch"
)
