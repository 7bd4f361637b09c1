package library

import (
	"archive/zip"
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/net/html"

	"outpost/content/catalog"
	"outpost/content/pack"
)

// maxTextBytes bounds how much of one file is indexed: enough for a long
// transcript, small enough that a hostile pack cannot bloat the index.
const maxTextBytes = 1 << 20

// gatherTexts extracts the searchable text of items: transcripts named by
// text_file, the entry page of html5 activities, and html/txt documents.
// A file that cannot be read as text is skipped, not an error: search is a
// convenience, and the file itself was verified.
//
// The texts of a 50,000-page course are some 100 MB: held in a map until
// the commit they were most of an import's memory. They are written, in
// lesson order, to a spool file in the store's tmp folder (which gc sweeps
// if the process dies), and the returned source hands them back one at a
// time as the commit asks for them. The caller must call done.
func (l *Library) gatherTexts(ctx context.Context, m *pack.Manifest) (src catalog.TextSource, done func(), err error) {
	f, err := os.CreateTemp(filepath.Join(l.Store.Dir(), "tmp"), "texts-*")
	if err != nil {
		return nil, nil, fmt.Errorf("index texts: %w", err)
	}
	done = func() { f.Close(); os.Remove(f.Name()) }
	defer func() {
		if err != nil {
			done()
		}
	}()
	w := bufio.NewWriterSize(f, 64<<10)
	var n [binary.MaxVarintLen64]byte
	for _, l2 := range m.Lessons {
		for _, it := range l2.Items {
			if err := ctx.Err(); err != nil {
				return nil, nil, fmt.Errorf("index texts: %w", err)
			}
			t, err := l.itemText(m, it)
			if err != nil {
				return nil, nil, err
			}
			w.Write(n[:binary.PutUvarint(n[:], uint64(len(t)))])
			if _, err := w.WriteString(t); err != nil {
				return nil, nil, fmt.Errorf("index texts: %w", err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return nil, nil, fmt.Errorf("index texts: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("index texts: %w", err)
	}
	r := bufio.NewReaderSize(f, 64<<10)
	var buf []byte
	src = func(pack.Item) (string, error) {
		size, err := binary.ReadUvarint(r)
		if err == nil && size > maxItemText {
			err = fmt.Errorf("entry of %d bytes", size)
		}
		if err == nil {
			buf = slices.Grow(buf[:0], int(size))[:size]
			_, err = io.ReadFull(r, buf)
		}
		if err != nil {
			return "", fmt.Errorf("read back indexed text: %w", err)
		}
		return string(buf), nil
	}
	return src, done, nil
}

// maxItemText bounds one item's gathered text: its transcript and its own
// file, each at most maxTextBytes (plus the separator).
const maxItemText = 2*maxTextBytes + 1

// itemText is one item's searchable text from its files, or "".
func (l *Library) itemText(m *pack.Manifest, it pack.Item) (string, error) {
	var parts []string
	if it.TextFile != "" {
		t, err := l.readText(m.Files[it.TextFile].SHA256, it.TextFile)
		if err != nil {
			return "", err
		}
		parts = append(parts, t)
	}
	switch {
	case it.Kind == pack.KindHTML5:
		entry := it.Entry
		if entry == "" {
			entry = "index.html"
		}
		t, err := l.zipText(m.Files[it.File], entry)
		if err != nil {
			return "", err
		}
		parts = append(parts, t)
	case it.Kind == pack.KindDocument && (strings.HasSuffix(it.File, ".html") || strings.HasSuffix(it.File, ".htm") || strings.HasSuffix(it.File, ".txt")):
		t, err := l.readText(m.Files[it.File].SHA256, it.File)
		if err != nil {
			return "", err
		}
		parts = append(parts, t)
	}
	return strings.Join(parts, "\n"), nil
}

func (l *Library) readText(sha, name string) (string, error) {
	f, err := l.Store.OpenObject(sha)
	if err != nil {
		return "", fmt.Errorf("index text of %s: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTextBytes))
	if err != nil {
		return "", fmt.Errorf("index text of %s: %w", name, err)
	}
	s := string(b)
	switch {
	case strings.HasSuffix(name, ".vtt"):
		return vttText(s), nil
	case strings.HasSuffix(name, ".html"), strings.HasSuffix(name, ".htm"):
		return htmlText(strings.NewReader(s)), nil
	}
	return s, nil
}

func (l *Library) zipText(f pack.File, entry string) (string, error) {
	obj, err := l.Store.OpenObject(f.SHA256)
	if err != nil {
		return "", fmt.Errorf("index html5 activity: %w", err)
	}
	defer obj.Close()
	zr, err := zip.NewReader(obj, f.Size)
	if err != nil {
		return "", nil // not a readable zip: served as is, just not indexed
	}
	m, err := zr.Open(entry)
	if err != nil {
		return "", nil // the portal reports a missing entry page when opened
	}
	defer m.Close()
	return htmlText(io.LimitReader(m, maxTextBytes)), nil
}

// vttText drops WebVTT headers, cue ids and timings, keeping spoken words.
func vttText(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line == "WEBVTT" || strings.Contains(line, "-->") || strings.HasPrefix(line, "NOTE") {
			continue
		}
		if strings.Trim(line, "0123456789") == "" {
			continue // a numeric cue id
		}
		out = append(out, line)
	}
	return strings.Join(out, " ")
}

// htmlText returns the visible text of an HTML document.
func htmlText(r io.Reader) string {
	z := html.NewTokenizer(r)
	var b strings.Builder
	skip := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return strings.Join(strings.Fields(b.String()), " ")
		case html.StartTagToken:
			if n, _ := z.TagName(); string(n) == "script" || string(n) == "style" {
				skip++
			}
		case html.EndTagToken:
			if n, _ := z.TagName(); (string(n) == "script" || string(n) == "style") && skip > 0 {
				skip--
			}
		case html.TextToken:
			if skip == 0 {
				b.Write(z.Text())
				b.WriteByte(' ')
			}
		}
	}
}
