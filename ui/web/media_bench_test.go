package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"outpost/appliance/database/databasetest"
	"outpost/content/blockstore"
	"outpost/content/catalog"
	"outpost/content/pack"
)

// discardWriter is the cheapest possible ResponseWriter, so the benchmark
// measures the portal's own per-request cost (lookup, open, headers,
// ServeContent), not a recorder's copying.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkMediaRange serves 256 KiB ranges of a course video through the
// full portal handler: what each of 50 LAN clients costs the box per request.
func BenchmarkMediaRange(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	db := databasetest.Open(b)
	store, err := blockstore.Open(filepath.Join(dir, "store"), db)
	if err != nil {
		b.Fatal(err)
	}
	video := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16)
	sum := sha256.Sum256(video)
	h := hex.EncodeToString(sum[:])
	if _, err := store.Put(ctx, bytes.NewReader(video), blockstore.Expect{SHA256: h, Size: int64(len(video))}, nil); err != nil {
		b.Fatal(err)
	}
	m := &pack.Manifest{Format: 1, ID: "c", Version: 1, Title: "C", Language: "en",
		Lessons: []pack.Lesson{{ID: "l", Title: "L", Items: []pack.Item{{ID: "v", Kind: pack.KindVideo, Title: "V", File: "v.webm"}}}},
		Files:   map[string]pack.File{"v.webm": {SHA256: h, Size: int64(len(video))}}}
	raw, _ := m.Marshal()
	cat := catalog.New(db)
	if _, err := cat.Commit(ctx, m, raw, nil); err != nil {
		b.Fatal(err)
	}
	handler, err := New(Options{Courses: cat, Objects: store, DefaultLanguage: "en"})
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]*http.Request, 16)
	for i := range reqs {
		off := i * (256 << 10)
		reqs[i] = httptest.NewRequest("GET", "/m/c/v", nil)
		reqs[i].Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+256<<10-1))
	}
	b.SetBytes(256 << 10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		w := &discardWriter{h: http.Header{}}
		handler.ServeHTTP(w, reqs[i%len(reqs)])
	}
}
