package samplecourse

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// zipTime is every entry's modification time. A fixed time keeps zips
// byte-identical between runs; a real date (not the zero time) keeps unzip
// tools from showing 1979 or refusing the entry.
var zipTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type zipEntry struct {
	name string
	data []byte
}

// storedZip builds a zip whose entries are stored, not compressed: pack
// files are small, and stored bytes do not change when a new Go release
// changes its deflate output, so the hashes stay the same across builds.
func storedZip(entries []zipEntry) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Store, Modified: zipTime})
		if err != nil {
			return nil, fmt.Errorf("add %s to zip: %w", e.name, err)
		}
		if _, err := w.Write(e.data); err != nil {
			return nil, fmt.Errorf("add %s to zip: %w", e.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("finish zip: %w", err)
	}
	return buf.Bytes(), nil
}

// WAV parameters. 22050 Hz is plenty for notes below 1 kHz with a couple of
// overtones, and keeps the five-second file around 230 KB.
const (
	wavRate     = 22050
	wavBits     = 16
	wavChannels = 1
)

// note is one tone of the melody, in millihertz so that equal-tempered
// pitches need no floating point.
type note struct {
	milliHz int64
	beats   int64
}

// raindropMelody is a falling pentatonic line, like drops from a cloud,
// ending on a held low C.
var raindropMelody = []note{
	{783991, 1}, {659255, 1}, {587330, 1}, {523251, 1},
	{880000, 1}, {783991, 1}, {659255, 2},
	{587330, 1}, {659255, 1}, {523251, 1}, {440000, 1},
	{659255, 1}, {587330, 1}, {523251, 2},
	{261626, 4},
}

// beatSamples is one beat at 240 beats per minute.
const beatSamples = wavRate * 60 / 240

// raindropMelodyWAV renders the melody as 16-bit mono PCM. It uses only
// integer arithmetic: floating point may be fused differently on arm64 and
// amd64, and two boxes must produce the same bytes for the same course
// version.
func raindropMelodyWAV() []byte {
	var total int64
	for _, n := range raindropMelody {
		total += n.beats * beatSamples
	}
	// A short tail lets the last note ring out instead of being cut.
	total += beatSamples
	pcm := make([]int16, total)

	var start int64
	for _, n := range raindropMelody {
		length := n.beats * beatSamples
		// Notes ring past their beat and overlap the next one, like a
		// marimba; the envelope has decayed to near silence by then.
		ring := min(length+beatSamples, total-start)
		// Phase is a 32-bit fraction of a turn, so wrap-around is free.
		step := uint32(n.milliHz << 32 / (wavRate * 1000))
		var phase uint32
		for i := range ring {
			// The octave overtone at a third of the level gives a soft bell
			// rather than a bare sine.
			v := isin(phase)*3 + isin(phase*2)
			v = v * envelope(i, ring) >> 16 // envelope is 16.16 fixed point
			mixed := int64(pcm[start+i]) + v*5/16
			pcm[start+i] = int16(max(-32767, min(32767, mixed)))
			phase += step
		}
		start += length
	}
	return wavFile(pcm)
}

// envelope is a 5 ms linear attack then a quadratic decay to zero at n, in
// 16.16 fixed point: no clicks at either end.
func envelope(i, n int64) int64 {
	const attack = wavRate / 200
	if i < attack {
		return i << 16 / attack
	}
	rest := n - i
	span := n - attack
	return (rest << 16 / span) * rest / span
}

// isin approximates sin(2π·phase/2³²) with Bhaskara I's rational formula,
// scaled to ±8192; its 0.2% error is far below what a listener can hear.
func isin(phase uint32) int64 {
	half := int64(phase >> 31) // which half-turn
	u := int64(phase&0x7fffffff) >> 15
	const n = 1 << 16 // u runs over [0, n) within the half-turn
	p := u * (n - u)
	v := 16 * p * 8192 / (5*n*n - 4*p)
	if half == 1 {
		return -v
	}
	return v
}

// wavFile wraps PCM samples in a canonical 44-byte RIFF/WAVE header.
func wavFile(pcm []int16) []byte {
	const blockAlign = wavChannels * wavBits / 8
	dataSize := uint32(len(pcm) * blockAlign)
	var buf bytes.Buffer
	buf.Grow(44 + int(dataSize))
	le := binary.LittleEndian
	buf.WriteString("RIFF")
	buf.Write(le.AppendUint32(nil, 36+dataSize))
	buf.WriteString("WAVE")
	buf.WriteString("fmt ")
	buf.Write(le.AppendUint32(nil, 16))
	buf.Write(le.AppendUint16(nil, 1)) // PCM
	buf.Write(le.AppendUint16(nil, wavChannels))
	buf.Write(le.AppendUint32(nil, wavRate))
	buf.Write(le.AppendUint32(nil, wavRate*blockAlign))
	buf.Write(le.AppendUint16(nil, blockAlign))
	buf.Write(le.AppendUint16(nil, wavBits))
	buf.WriteString("data")
	buf.Write(le.AppendUint32(nil, dataSize))
	b := buf.Bytes()
	for _, s := range pcm {
		b = le.AppendUint16(b, uint16(s))
	}
	return b
}
