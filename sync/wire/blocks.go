package wire

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A blocks response is a stream of frames after a 4-byte magic:
//
//	kind (1 byte) | position (uint32 BE) | length (uint32 BE) | payload
//
// kind is FrameRaw or FrameZstd for a block (position = its ordinal in the
// request, flattened), FrameMissing for a block the hub cannot serve, and
// FrameEnd (position = frames sent) last. A stream that stops before
// FrameEnd was cut: every whole frame before the cut still counts.
const blocksMagic = "OPB1"

// Frame kinds.
const (
	FrameRaw     byte = 'R'
	FrameZstd    byte = 'Z'
	FrameMissing byte = 'M'
	FrameEnd     byte = 'E'
)

// MaxBlockSize is the largest block syncthing's protocol.BlockSize gives.
const MaxBlockSize = 16 << 20

// ErrTruncated is wrapped when a stream ends before its end frame.
var ErrTruncated = errors.New("stream ended early (connection cut?)")

var (
	encOnce sync.Once
	encoder *zstd.Encoder
	decOnce sync.Once
	decoder *zstd.Decoder
)

func blockEncoder() *zstd.Encoder {
	encOnce.Do(func() {
		encoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(2))
	})
	return encoder
}

func blockDecoder() *zstd.Decoder {
	decOnce.Do(func() {
		decoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(2), zstd.WithDecoderMaxMemory(MaxBlockSize), zstd.WithDecoderMaxWindow(MaxBlockSize))
	})
	return decoder
}

// BlockWriter writes a blocks response.
type BlockWriter struct {
	w       *bufio.Writer
	flush   func()
	n       uint32
	scratch []byte
	// Compressed and Raw count payload bytes by kind, for metrics.
	Compressed, Raw int64
	// Mangle, if set, may alter a compressed payload before it is sent;
	// fault-injection tests use it to corrupt a zstd frame in flight.
	Mangle func(payload []byte)
}

// NewBlockWriter starts a stream on w; flush, if not nil, is called after
// every frame so a block leaves the hub as soon as it is read (an
// http.Flusher's Flush).
func NewBlockWriter(w io.Writer, flush func()) (*BlockWriter, error) {
	bw := &BlockWriter{w: bufio.NewWriterSize(w, 64<<10), flush: flush}
	if _, err := bw.w.WriteString(blocksMagic); err != nil {
		return nil, fmt.Errorf("write blocks: %w", err)
	}
	return bw, nil
}

// Block writes one block, compressed only if that makes it smaller.
func (bw *BlockWriter) Block(pos int, data []byte) error {
	bw.scratch = blockEncoder().EncodeAll(data, bw.scratch[:0])
	if len(bw.scratch) < len(data) {
		bw.Compressed += int64(len(bw.scratch))
		if bw.Mangle != nil {
			bw.Mangle(bw.scratch)
		}
		return bw.frame(FrameZstd, uint32(pos), bw.scratch)
	}
	bw.Raw += int64(len(data))
	return bw.frame(FrameRaw, uint32(pos), data)
}

// Missing says the block at pos cannot be served.
func (bw *BlockWriter) Missing(pos int) error { return bw.frame(FrameMissing, uint32(pos), nil) }

// End finishes the stream.
func (bw *BlockWriter) End() error {
	if err := bw.frame(FrameEnd, bw.n, nil); err != nil {
		return err
	}
	return nil
}

func (bw *BlockWriter) frame(kind byte, pos uint32, payload []byte) error {
	var h [9]byte
	h[0] = kind
	binary.BigEndian.PutUint32(h[1:], pos)
	binary.BigEndian.PutUint32(h[5:], uint32(len(payload)))
	if _, err := bw.w.Write(h[:]); err != nil {
		return fmt.Errorf("write blocks: %w", err)
	}
	if _, err := bw.w.Write(payload); err != nil {
		return fmt.Errorf("write blocks: %w", err)
	}
	if kind != FrameEnd {
		bw.n++
	}
	if err := bw.w.Flush(); err != nil {
		return fmt.Errorf("write blocks: %w", err)
	}
	if bw.flush != nil {
		bw.flush()
	}
	return nil
}

// Block is one decoded frame.
type Block struct {
	Pos     int
	Data    []byte // decompressed; nil when Missing
	Missing bool
	// WireBytes is what the frame took on the wire, header included.
	WireBytes int
}

// BlockReader reads a blocks response.
type BlockReader struct {
	r      *bufio.Reader
	sizes  []int
	done   bool
	frames int
	buf    []byte
}

// NewBlockReader reads a stream answering a request whose flattened blocks
// have the given sizes: a frame must name a position in range and decode
// to exactly that many bytes.
func NewBlockReader(r io.Reader, sizes []int) (*BlockReader, error) {
	br := &BlockReader{r: bufio.NewReaderSize(r, 64<<10), sizes: sizes}
	var m [4]byte
	if _, err := io.ReadFull(br.r, m[:]); err != nil {
		return nil, fmt.Errorf("read blocks: %w: %w", ErrTruncated, err)
	}
	if string(m[:]) != blocksMagic {
		return nil, fmt.Errorf("read blocks: %w: bad magic %q", ErrMalformed, m[:])
	}
	return br, nil
}

// Next returns the next block, or io.EOF after the end frame. An error
// wrapping ErrTruncated means the connection was cut; ErrMalformed means the
// stream is corrupt. Either way blocks already returned stay good. The
// returned Data is only valid until the next call.
func (br *BlockReader) Next() (*Block, error) {
	if br.done {
		return nil, io.EOF
	}
	var h [9]byte
	if _, err := io.ReadFull(br.r, h[:]); err != nil {
		return nil, fmt.Errorf("read blocks: %w: %w", ErrTruncated, err)
	}
	kind, pos, n := h[0], binary.BigEndian.Uint32(h[1:]), binary.BigEndian.Uint32(h[5:])
	switch kind {
	case FrameEnd:
		if n != 0 || int(pos) != br.frames {
			return nil, fmt.Errorf("read blocks: %w: end frame counts %d frames, %d arrived", ErrMalformed, pos, br.frames)
		}
		br.done = true
		return nil, io.EOF
	case FrameMissing:
		if n != 0 || int(pos) >= len(br.sizes) {
			return nil, fmt.Errorf("read blocks: %w: bad missing frame", ErrMalformed)
		}
		br.frames++
		return &Block{Pos: int(pos), Missing: true, WireBytes: 9}, nil
	case FrameRaw, FrameZstd:
	default:
		return nil, fmt.Errorf("read blocks: %w: unknown frame kind %#x", ErrMalformed, kind)
	}
	if int64(pos) >= int64(len(br.sizes)) {
		return nil, fmt.Errorf("read blocks: %w: position %d outside the request", ErrMalformed, pos)
	}
	want := br.sizes[pos]
	if n > uint32(want)+1024 || (kind == FrameRaw && int(n) != want) {
		return nil, fmt.Errorf("read blocks: %w: frame of %d bytes for a %d-byte block", ErrMalformed, n, want)
	}
	if cap(br.buf) < int(n) {
		br.buf = make([]byte, n)
	}
	payload := br.buf[:n]
	if _, err := io.ReadFull(br.r, payload); err != nil {
		return nil, fmt.Errorf("read blocks: %w: %w", ErrTruncated, err)
	}
	br.frames++
	b := &Block{Pos: int(pos), WireBytes: 9 + int(n)}
	if kind == FrameRaw {
		b.Data = payload
		return b, nil
	}
	out, err := blockDecoder().DecodeAll(payload, make([]byte, 0, want))
	if err != nil {
		return nil, fmt.Errorf("read blocks: %w: block %d: %w", ErrMalformed, pos, err)
	}
	if len(out) != want {
		return nil, fmt.Errorf("read blocks: %w: block %d decodes to %d bytes, want %d", ErrMalformed, pos, len(out), want)
	}
	b.Data = out
	return b, nil
}

// NumBlocks is how many blocks a file of size bytes has at blockSize.
func NumBlocks(size int64, blockSize int) int {
	if size <= 0 {
		return 0
	}
	return int((size + int64(blockSize) - 1) / int64(blockSize))
}

// Validate checks a block list is self-consistent before anything trusts it.
func (f *FileBlocks) Validate() error {
	if len(f.SHA256) != 64 {
		return fmt.Errorf("file %q: %w: not a SHA-256", f.SHA256, ErrMalformed)
	}
	if _, err := hex.DecodeString(f.SHA256); err != nil {
		return fmt.Errorf("file %q: %w: not a SHA-256", f.SHA256, ErrMalformed)
	}
	if f.Size < 0 || f.Size > 1<<42 {
		return fmt.Errorf("file %s: %w: size %d", f.SHA256, ErrMalformed, f.Size)
	}
	bs := f.BlockSize
	if bs < 128<<10 || bs > MaxBlockSize || bs&(bs-1) != 0 {
		return fmt.Errorf("file %s: %w: block size %d", f.SHA256, ErrMalformed, bs)
	}
	n := NumBlocks(f.Size, bs)
	if len(f.Hashes) != 32*n || len(f.Weak) != 4*n {
		return fmt.Errorf("file %s: %w: %d blocks but %d hash bytes and %d weak-hash bytes", f.SHA256, ErrMalformed, n, len(f.Hashes), len(f.Weak))
	}
	return nil
}

// Hash is block i's SHA-256.
func (f *FileBlocks) Hash(i int) []byte { return f.Hashes[32*i : 32*i+32] }

// WeakHash is block i's weak hash.
func (f *FileBlocks) WeakHash(i int) uint32 { return binary.BigEndian.Uint32(f.Weak[4*i:]) }

// BlockSpan is block i's offset and length.
func (f *FileBlocks) BlockSpan(i int) (off int64, n int) {
	off = int64(i) * int64(f.BlockSize)
	return off, int(min(int64(f.BlockSize), f.Size-off))
}
