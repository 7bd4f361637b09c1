package samplecourse

import (
	"fmt"
	"path"
	"strings"

	"outpost/content/pack"
)

// File is one file of a pack made by WriteFiles.
type File struct {
	Path string
	Data []byte
}

// WriteFiles writes a one-lesson pack with one item per file, its kind
// taken from the extension. Sync tests and benchmarks use it to publish
// generated courses and their successive versions.
func WriteFiles(dir, id string, version int64, files []File) (*pack.Manifest, error) {
	b := newBuilder(&pack.Manifest{
		Format:   pack.FormatVersion,
		ID:       id,
		Version:  version,
		Title:    fmt.Sprintf("Generated course %s", id),
		Language: "en",
		Extra:    map[string]string{"synthetic": "true"},
	})
	lesson := pack.Lesson{ID: "lesson-1", Title: "Everything"}
	for i, f := range files {
		item := pack.Item{ID: fmt.Sprintf("item-%05d", i+1), Title: path.Base(f.Path), File: f.Path}
		switch strings.ToLower(path.Ext(f.Path)) {
		case ".webm":
			item.Kind, item.Type = pack.KindVideo, "video/webm"
		case ".mp4":
			item.Kind, item.Type = pack.KindVideo, "video/mp4"
		case ".pdf":
			item.Kind, item.Type = pack.KindPDF, "application/pdf"
		case ".html", ".htm":
			item.Kind, item.Type = pack.KindDocument, "text/html; charset=utf-8"
		default:
			item.Kind, item.Type = pack.KindDocument, "application/octet-stream"
		}
		b.add(f.Path, f.Data)
		lesson.Items = append(lesson.Items, item)
	}
	b.m.Lessons = []pack.Lesson{lesson}
	if err := b.write(dir); err != nil {
		return nil, fmt.Errorf("write pack %s: %w", id, err)
	}
	return b.m, nil
}
