package samplecourse

import (
	"fmt"
	"html"
	"strings"

	"outpost/content/pack"
)

// pagesLessonSize is how many pages each lesson of a WritePages pack holds.
const pagesLessonSize = 20

// WritePages writes a synthetic course of nPages HTML pages for the scale
// benchmark, the shape of a wiki or a textbook turned into web pages: every
// item is a document whose file is one self-contained page (about 3 KB, with
// links to its neighbours) carrying three made-up words found nowhere else
// in the pack. The same folder of pages, without manifest.json, is what
// kiwix's zimwriterfs packs for the comparison with kiwix-serve.
func WritePages(dir, id string, nPages int) (*pack.Manifest, error) {
	if nPages < 1 {
		return nil, fmt.Errorf("write page pack %s: need at least one page, got %d", id, nPages)
	}
	b := newBuilder(&pack.Manifest{
		Format:      pack.FormatVersion,
		ID:          id,
		Version:     1,
		Title:       fmt.Sprintf("Benchmark pages %s (%d pages)", id, nPages),
		Description: "Generated HTML pages for scale tests: every page carries made-up words found nowhere else in the pack.",
		Language:    "en",
		Subjects:    []string{"benchmark"},
		Extra:       map[string]string{"synthetic": "true"},
	})
	nLessons := (nPages + pagesLessonSize - 1) / pagesLessonSize
	b.m.Lessons = make([]pack.Lesson, 0, nLessons)
	for li := range nLessons {
		lesson := pack.Lesson{ID: fmt.Sprintf("part-%05d", li+1), Title: fmt.Sprintf("Part %d", li+1)}
		for i := li * pagesLessonSize; i < min(nPages, (li+1)*pagesLessonSize); i++ {
			lesson.Items = append(lesson.Items, pageItem(b, i, nPages))
		}
		b.m.Lessons = append(b.m.Lessons, lesson)
	}
	if err := b.write(dir); err != nil {
		return nil, fmt.Errorf("write page pack %s: %w", id, err)
	}
	return b.m, nil
}

// PagePath is the pack path of page i (0-based) of a WritePages pack.
func PagePath(i int) string {
	return fmt.Sprintf("%s/page-%06d.html", PageFolder(i), i+1)
}

// PageFolder is the folder page i lives in: a hundred pages a folder, so
// no folder grows past what a FAT-formatted stick handles well.
func PageFolder(i int) string { return fmt.Sprintf("pages/%04d", i/100) }

// PageItemID is the item id of page i of a WritePages pack.
func PageItemID(i int) string { return fmt.Sprintf("page-%06d", i+1) }

// fillerSentences make a page about the size of a short encyclopaedia
// article without adding words a search could confuse with the page's own.
var fillerSentences = []string{
	"Water moves between the sea, the air and the land in a cycle that never stops.",
	"The sun warms the surface and some of the water rises as vapour.",
	"High in the air the vapour cools and gathers into clouds of tiny drops.",
	"When the drops grow heavy they fall back as rain, snow or hail.",
	"Rivers carry the water back to the sea, and the cycle begins again.",
	"Plants take water from the soil and give some of it back to the air.",
}

func pageItem(b *builder, i, n int) pack.Item {
	words := itemWords(i)
	title := fmt.Sprintf("Page %d: %s %s", i+1, capitalize(words[0]), words[1])
	var body strings.Builder
	for p := range 6 {
		body.WriteString("<p>")
		for s := range 4 {
			body.WriteString(fillerSentences[(i+p+s)%len(fillerSentences)])
			body.WriteByte(' ')
		}
		if p == 2 {
			fmt.Fprintf(&body, "This page's own words are %s.", strings.Join(words, ", "))
		}
		body.WriteString("</p>\n")
	}
	var nav strings.Builder
	rel := func(j int) string {
		if PageFolder(j) == PageFolder(i) {
			return fmt.Sprintf("page-%06d.html", j+1)
		}
		return "../../" + PagePath(j)
	}
	if i > 0 {
		fmt.Fprintf(&nav, `<a rel="prev" href="%s">Previous</a> `, rel(i-1))
	}
	if i+1 < n {
		fmt.Fprintf(&nav, `<a rel="next" href="%s">Next</a>`, rel(i+1))
	}
	t := html.EscapeString(title)
	page := fmt.Sprintf("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>%s</title></head>\n<body>\n<h1>%s</h1>\n%s<nav>%s</nav>\n</body>\n</html>\n",
		t, t, body.String(), nav.String())
	item := pack.Item{ID: PageItemID(i), Kind: pack.KindDocument, Title: title, File: PagePath(i)}
	b.add(item.File, []byte(page))
	return item
}
