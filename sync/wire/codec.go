package wire

import (
	"encoding/binary"
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/zstd"
)

// Making a zstd encoder costs about 1.2 ms of CPU and 1.8 MB of memory, a
// decoder less but still megabytes once it has decoded a large window. A hub
// that made one per answer spent more on a refused request than on TLS, so
// encoders and decoders are kept in pools. The pools are bounded by the
// host's CPUs: compressing is CPU work, so more encoders than CPUs would
// not answer faster, and a burst of requests must wait for one rather than
// make hundreds of 1.8 MB encoders.

// codecPool holds at most cap(slots) values, made on first need.
type codecPool[T any] struct {
	free  chan T        // idle values
	slots chan struct{} // one token per value made
	make  func() (T, error)
}

func newCodecPool[T any](n int, mk func() (T, error)) *codecPool[T] {
	n = max(n, 1)
	return &codecPool[T]{free: make(chan T, n), slots: make(chan struct{}, n), make: mk}
}

// get returns an idle value, makes one if the pool is not full, or waits
// for one to be put back. Every user holds a value for CPU work only (never
// while waiting on a peer), so the wait is short.
func (p *codecPool[T]) get() (T, error) {
	select {
	case v := <-p.free:
		return v, nil
	default:
	}
	select {
	case v := <-p.free:
		return v, nil
	case p.slots <- struct{}{}:
		v, err := p.make()
		if err != nil {
			<-p.slots
		}
		return v, err
	}
}

// put returns a value taken with get; it never blocks, as free has room
// for every value made.
func (p *codecPool[T]) put(v T) { p.free <- v }

// poolSize is how many encoders, and how many decoders per limit, a
// process keeps at most: one per CPU it may use.
var poolSize = runtime.GOMAXPROCS(0)

var encoders = newCodecPool(poolSize, func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
})

// decoderPools holds one pool per standard limit; a decoder's limits are
// fixed when it is made.
var decoderPools = map[int]*codecPool[*zstd.Decoder]{
	MaxRequest: newDecoderPool(MaxRequest),
	MaxMessage: newDecoderPool(MaxMessage),
}

func newDecoderPool(limit int) *codecPool[*zstd.Decoder] {
	return newCodecPool(poolSize, func() (*zstd.Decoder, error) { return newDecoder(limit) })
}

func newDecoder(limit int) (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)), zstd.WithDecoderMaxWindow(8<<20))
}

// chunkSize is how much JSON goes into one zstd frame. Frames are
// compressed one at a time with a pooled encoder (EncodeAll), so an answer
// of any size holds an encoder only while compressing a chunk, never while
// a slow peer reads, and costs a chunk of memory, not its whole size. Each
// frame is single-segment: its window is its content size, well under the
// 8 MiB a decoder accepts. Chunks cost nothing in size: the changes
// message of a 10,000-item course (a 4.1 MB manifest) came to 896,356
// bytes in 1 MiB frames against 898,255 in one streamed frame, and for
// 50,000 items 4,542,153 against 4,591,430.
const chunkSize = 1 << 20

// MessageWriter writes one message as zstd frames of at most chunkSize
// bytes of JSON each: a peer decodes the frames as one stream (§2 of
// docs/SYNC_PROTOCOL.md allows any number of frames). Write the JSON in as
// many pieces as convenient, then Close.
type MessageWriter struct {
	w   io.Writer
	buf []byte // JSON not yet compressed
	out []byte // compressed frame, reused
	err error
	n   int64
}

// NewMessageWriter starts a message on w.
func NewMessageWriter(w io.Writer) *MessageWriter { return &MessageWriter{w: w} }

// Write adds JSON bytes to the message.
func (m *MessageWriter) Write(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	n := len(p)
	for len(p) > 0 {
		room := chunkSize - len(m.buf)
		k := min(room, len(p))
		m.buf = append(m.buf, p[:k]...)
		p = p[k:]
		if len(m.buf) == chunkSize {
			if err := m.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (m *MessageWriter) flush() error {
	if len(m.buf) == 0 {
		return nil
	}
	enc, err := encoders.get()
	if err != nil {
		m.err = fmt.Errorf("encode sync message: %w", err)
		return m.err
	}
	m.out = enc.EncodeAll(m.buf, m.out[:0])
	encoders.put(enc)
	m.buf = m.buf[:0]
	n, err := m.w.Write(m.out)
	m.n += int64(n)
	if err != nil {
		m.err = fmt.Errorf("encode sync message: %w", err)
	}
	return m.err
}

// Close compresses and writes what is left; a message with no JSON at all
// writes nothing (and is not a valid message).
func (m *MessageWriter) Close() error {
	if m.err != nil {
		return m.err
	}
	return m.flush()
}

// Written is how many compressed bytes went to the writer.
func (m *MessageWriter) Written() int64 { return m.n }

// storedFrame wraps data in a zstd frame of raw (stored) blocks: valid zstd
// that any decoder reads, made without an encoder. Error answers use it: a
// refused request must cost the hub almost nothing, and every box, old or
// new, decodes it as the compressed errors it always read.
//
// Layout (RFC 8878 §3.1.1): magic; a frame header descriptor with
// Single_Segment_flag set (the window is the content size) and a 4-byte
// Frame_Content_Size; then raw blocks of at most 128 KiB (a single-segment
// frame's blocks must also not exceed its content size), the last marked.
// No checksum: it is optional, and TLS already protects the bytes.
func storedFrame(data []byte) []byte {
	const maxBlock = 128 << 10
	out := make([]byte, 0, 4+1+4+3*(len(data)/maxBlock+1)+len(data))
	out = append(out, 0x28, 0xb5, 0x2f, 0xfd)
	out = append(out, 2<<6|1<<5) // FCS_Field_Size 4 bytes, Single_Segment
	out = binary.LittleEndian.AppendUint32(out, uint32(len(data)))
	for {
		n := min(len(data), maxBlock)
		h := uint32(n) << 3 // Block_Type 0: raw
		if n == len(data) {
			h |= 1 // Last_Block
		}
		out = append(out, byte(h), byte(h>>8), byte(h>>16))
		out = append(out, data[:n]...)
		data = data[n:]
		if len(data) == 0 {
			return out
		}
	}
}
