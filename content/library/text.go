package library

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"strings"

	"golang.org/x/net/html"

	"outpost/content/pack"
)

// maxTextBytes bounds how much of one file is indexed: enough for a long
// transcript, small enough that a hostile pack cannot bloat the index.
const maxTextBytes = 1 << 20

// gatherTexts extracts the searchable text of items: transcripts named by
// text_file, the entry page of html5 activities, and html/txt documents.
// A file that cannot be read as text is skipped, not an error: search is a
// convenience, and the file itself was verified.
func (l *Library) gatherTexts(ctx context.Context, m *pack.Manifest) (map[string]string, error) {
	texts := map[string]string{}
	for _, it := range m.Items() {
		var parts []string
		if it.TextFile != "" {
			t, err := l.readText(m.Files[it.TextFile].SHA256, it.TextFile)
			if err != nil {
				return nil, err
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
				return nil, err
			}
			parts = append(parts, t)
		case it.Kind == pack.KindDocument && (strings.HasSuffix(it.File, ".html") || strings.HasSuffix(it.File, ".htm") || strings.HasSuffix(it.File, ".txt")):
			t, err := l.readText(m.Files[it.File].SHA256, it.File)
			if err != nil {
				return nil, err
			}
			parts = append(parts, t)
		}
		if len(parts) > 0 {
			texts[it.ID] = strings.Join(parts, "\n")
		}
	}
	return texts, nil
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
