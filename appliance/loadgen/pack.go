package loadgen

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"outpost/content/pack"
)

// MediaFile is one file of a pack written by WriteMediaPack.
type MediaFile struct {
	Path   string // the pack path, also the URL path when the pack folder is a web root
	ItemID string // the item that plays it: the portal serves it at /m/{course}/{ItemID}
}

// WriteMediaPack writes a course pack folder with n video items, each a
// file of size random bytes, and returns the files. Random bytes are what
// compressed video looks like to a server or a hash, and they defeat any
// cache or compression that a repetitive file would flatter. The same seed
// gives the same bytes.
func WriteMediaPack(dir, id string, n int, size int64, seed uint64) ([]MediaFile, error) {
	if n < 1 || size < 1 {
		return nil, fmt.Errorf("write media pack %s: need at least one file of at least one byte, got %d of %d", id, n, size)
	}
	m := &pack.Manifest{
		Format:      pack.FormatVersion,
		ID:          id,
		Version:     1,
		Title:       fmt.Sprintf("Benchmark media %s (%d files)", id, n),
		Description: "Generated random bytes for load tests; not playable.",
		Language:    "en",
		Subjects:    []string{"benchmark"},
		Files:       map[string]pack.File{},
		Extra:       map[string]string{"synthetic": "true"},
	}
	lesson := pack.Lesson{ID: "media", Title: "Media"}
	var files []MediaFile
	// A manifest left from an earlier run would describe other bytes while
	// these are written; the manifest goes down last.
	if err := os.Remove(filepath.Join(dir, pack.ManifestName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("write media pack %s: %w", id, err)
	}
	for i := range n {
		f := MediaFile{Path: fmt.Sprintf("media/clip-%02d.webm", i+1), ItemID: fmt.Sprintf("clip-%02d", i+1)}
		var s [32]byte
		s[0], s[1] = byte(i), byte(i>>8)
		for j := range 8 {
			s[8+j] = byte(seed >> (8 * j))
		}
		sum, err := writeRandom(filepath.Join(dir, filepath.FromSlash(f.Path)), size, rand.NewChaCha8(s))
		if err != nil {
			return nil, fmt.Errorf("write media pack %s: %w", id, err)
		}
		m.Files[f.Path] = pack.File{SHA256: sum, Size: size}
		lesson.Items = append(lesson.Items, pack.Item{ID: f.ItemID, Kind: pack.KindVideo, Title: fmt.Sprintf("Clip %d", i+1), File: f.Path})
		files = append(files, f)
	}
	m.Lessons = []pack.Lesson{lesson}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("write media pack %s: %w", id, err)
	}
	raw, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("write media pack %s: %w", id, err)
	}
	if err := os.WriteFile(filepath.Join(dir, pack.ManifestName), raw, 0o644); err != nil {
		return nil, fmt.Errorf("write media pack %s: %w", id, err)
	}
	return files, nil
}

// writeRandom writes size bytes from src to path and returns their SHA-256
// in the manifest's form, hashing as it writes so the file is read once.
func writeRandom(path string, size int64, src io.Reader) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("create folder for %s: %w", path, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	if _, err := io.CopyN(w, src, size); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return pack.HashBytes(h.Sum(nil)), nil
}
