package synctest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"

	"outpost/content/samplecourse"
)

// Course is a generated course: large incompressible "videos", medium
// "PDFs" that compress a little, and many small, very compressible HTML
// pages, like a real course.
func Course(seed uint64, videos, videoSize, pdfs, pdfSize, pages int) []samplecourse.File {
	rng := rand.New(rand.NewPCG(seed, 1))
	var files []samplecourse.File
	for i := range videos {
		files = append(files, samplecourse.File{Path: fmt.Sprintf("video/lesson-%02d.webm", i+1), Data: Random(rng, videoSize)})
	}
	for i := range pdfs {
		files = append(files, samplecourse.File{Path: fmt.Sprintf("pdf/handout-%02d.pdf", i+1), Data: pdfLike(rng, pdfSize)})
	}
	for i := range pages {
		files = append(files, samplecourse.File{Path: fmt.Sprintf("html/page-%03d.html", i+1), Data: Page(rng, i)})
	}
	return files
}

// Random is n incompressible bytes.
func Random(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// pdfLike mixes compressed-looking streams with text, as a PDF does.
func pdfLike(rng *rand.Rand, n int) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n")
	for b.Len() < n {
		if rng.IntN(3) == 0 {
			fmt.Fprintf(&b, "%d 0 obj << /Type /Page /Contents %d 0 R >> endobj\n", rng.IntN(9999), rng.IntN(9999))
			continue
		}
		b.Write(Random(rng, 4096))
	}
	return b.Bytes()[:n]
}

var words = []string{"water", "cloud", "river", "rain", "evaporation", "the", "a", "of", "sun", "sea", "vapour", "cycle",
	"lesson", "students", "observe", "temperature", "condensation", "precipitation", "ground", "plants", "and", "is"}

// Page is an HTML page of a few KB.
func Page(rng *rand.Rand, i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Page %d</title></head><body>\n", i)
	for p := range 6 + rng.IntN(10) {
		fmt.Fprintf(&b, "<h2>Section %d</h2>\n<p>", p)
		for range 40 + rng.IntN(80) {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		b.WriteString("</p>\n")
	}
	b.WriteString("</body></html>\n")
	return b.Bytes()
}

// Clone deep-copies files so a new version can be edited.
func Clone(files []samplecourse.File) []samplecourse.File {
	out := make([]samplecourse.File, len(files))
	for i, f := range files {
		out[i] = samplecourse.File{Path: f.Path, Data: bytes.Clone(f.Data)}
	}
	return out
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
