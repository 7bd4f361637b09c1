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
	"mime"
	"net/http"
	"strconv"
	"strings"

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
	// HeaderFeatures lists, comma-separated, what a box understands beyond
	// version 1 as first released, so a hub answers older boxes in ways
	// they already handle.
	HeaderFeatures = "Outpost-Features"
)

// Features a box may list in HeaderFeatures.
const (
	// FeatureBusy: the box understands CodeBusy from /v1/patch.
	FeatureBusy = "busy"
)

// HasFeature reports whether a request's HeaderFeatures lists f.
func HasFeature(h http.Header, f string) bool {
	for _, v := range h.Values(HeaderFeatures) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(part) == f {
				return true
			}
		}
	}
	return false
}

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
	// CodeRateLimited (429, with Retry-After) answers a source that failed
	// too many attempts (no certificate, unknown device, bad token).
	CodeRateLimited = "rate_limited"
	// CodeBusy (503, with Retry-After) answers a patch request when the
	// hub's patch builders stayed busy while the request waited: fetch
	// the blocks instead, or ask again later. Sent only to boxes that list
	// FeatureBusy; others get CodeNotFound, which they already treat so.
	CodeBusy = "busy"
)

func (e *Error) Error() string { return e.Message }

// Encode writes v as zstd-compressed JSON (see MessageWriter).
func Encode(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode sync message: %w", err)
	}
	mw := NewMessageWriter(w)
	if _, err := mw.Write(append(b, '\n')); err != nil {
		return err
	}
	return mw.Close()
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

// DecodeLimit is Decode with a smaller bound, for requests: frames whose
// window exceeds the bound (or 8 MiB) are refused too. The standard limits
// (MaxRequest, MaxMessage) use pooled decoders.
func DecodeLimit(r io.Reader, v any, limit int) error {
	return decodeWith(decoderPools[limit], limit, r, v, limit)
}

// DecodeEnrolled decodes a request from an enrolled box: at most
// MaxRequest bytes, in frames whose window may be up to 8 MiB. Boxes
// released before the hub pooled its codecs stream requests through an
// encoder that declares its 8 MiB window once a request passes 128 KiB
// (a block-list request for ~2,000 files); a hub refusing those windows
// refused the box's block lists. The window costs the hub memory only in
// its pooled decoders, and only after the box proved who it is.
func DecodeEnrolled(r io.Reader, v any) error {
	return decodeWith(decoderPools[MaxMessage], MaxMessage, r, v, MaxRequest)
}

// decodeWith decodes with a decoder from pool (nil: a new one made for
// window) and accepts at most limit decompressed bytes.
func decodeWith(pool *codecPool[*zstd.Decoder], window int, r io.Reader, v any, limit int) error {
	var zr *zstd.Decoder
	var err error
	if pool != nil {
		zr, err = pool.get()
	} else {
		zr, err = newDecoder(window)
	}
	if err != nil {
		return fmt.Errorf("decode sync message: %w", err)
	}
	defer func() {
		if pool == nil {
			zr.Close()
			return
		}
		zr.Reset(nil) // drop the reader before the decoder is reused
		pool.put(zr)
	}()
	// Hidden behind a plain io.Reader: given a *bytes.Buffer the decoder
	// decodes in one go and keeps the output buffer for reuse, which a
	// pooled decoder would then hold for good.
	if err := zr.Reset(struct{ io.Reader }{r}); err != nil {
		return fmt.Errorf("decode sync message: %w: %w", ErrMalformed, err)
	}
	body, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	if err != nil {
		return fmt.Errorf("decode sync message: %w: %w", ErrMalformed, err)
	}
	if len(body) > limit {
		return fmt.Errorf("decode sync message: %w: larger than %d bytes", ErrMalformed, limit)
	}
	return parseJSON(body, v)
}

// parseJSON reads exactly one JSON value with no unknown fields.
func parseJSON(body []byte, v any) error {
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

// ErrorBody is an Error as the bytes of an answer's body: its JSON in a
// zstd frame of stored (uncompressed) blocks. It takes no encoder, so a
// refused request costs the hub a few hundred bytes, and it is still zstd,
// so a box of any version decodes it.
func ErrorBody(code, msg string) []byte {
	b, err := json.Marshal(&Error{Code: code, Message: msg})
	if err != nil { // strings always marshal
		b = []byte(`{"code":"internal","message":"unencodable error"}`)
	}
	return storedFrame(append(b, '\n'))
}

// WriteError answers with a wire Error (see ErrorBody).
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	b := ErrorBody(code, msg)
	w.Header().Set("Content-Type", ContentTypeJSON)
	w.Header().Set("Content-Encoding", "zstd")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// maxErrorBody bounds an error body, compressed or not.
const maxErrorBody = 1 << 20

// ReadError turns a non-2xx response into an *Error. The body may be zstd
// (Content-Encoding: zstd, what every hub sends) or plain JSON (no
// Content-Encoding, Content-Type application/json), so a hub may one day
// send errors without a zstd frame around them; a body that is neither (a
// proxy's HTML page, say) becomes a generic error with the status.
func ReadError(resp *http.Response) error {
	var e Error
	switch enc := resp.Header.Get("Content-Encoding"); {
	case enc == "zstd":
		if err := DecodeLimit(io.LimitReader(resp.Body, maxErrorBody), &e, MaxRequest); err == nil && e.Code != "" {
			return &e
		}
	case (enc == "" || enc == "identity") && isJSON(resp.Header.Get("Content-Type")):
		if err := decodePlain(resp.Body, &e); err == nil && e.Code != "" {
			return &e
		}
	}
	return &Error{Code: CodeInternal, Message: fmt.Sprintf("upstream answered %s", resp.Status)}
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == ContentTypeJSON
}

// decodePlain reads one uncompressed JSON value of at most maxErrorBody
// bytes.
func decodePlain(r io.Reader, v any) error {
	body, err := io.ReadAll(io.LimitReader(r, maxErrorBody+1))
	if err != nil {
		return fmt.Errorf("decode sync message: %w: %w", ErrMalformed, err)
	}
	if len(body) > maxErrorBody {
		return fmt.Errorf("decode sync message: %w: larger than %d bytes", ErrMalformed, maxErrorBody)
	}
	return parseJSON(body, v)
}

// Content types.
const (
	ContentTypeJSON   = "application/json"
	ContentTypeBlocks = "application/x-outpost-blocks"
	ContentTypePatch  = "application/x-outpost-patch"
)
