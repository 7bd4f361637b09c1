package samplecourse

import (
	"fmt"
	"html"
	"strings"

	"outpost/content/pack"
)

// largeLessonSize is how many items each lesson of a WriteLarge pack holds.
const largeLessonSize = 20

// WriteLarge writes a synthetic catalog-sized pack for benchmarks: nItems
// items (kind document/html5 mixed, each a small generated text/HTML file
// with distinct searchable words) spread over lessons of 20 items, with the
// given id. Used to make a 10,000-item catalog.
func WriteLarge(dir, id string, nItems int) (*pack.Manifest, error) {
	if nItems < 1 {
		return nil, fmt.Errorf("write large pack %s: need at least one item, got %d", id, nItems)
	}
	b := newBuilder(&pack.Manifest{
		Format:      pack.FormatVersion,
		ID:          id,
		Version:     1,
		Title:       fmt.Sprintf("Benchmark catalog %s (%d items)", id, nItems),
		Description: "Generated filler for load tests: every item carries made-up words found nowhere else in the pack, so a search for one has exactly one hit.",
		Language:    "en",
		Subjects:    []string{"benchmark"},
		Extra:       map[string]string{"synthetic": "true"},
	})
	nLessons := (nItems + largeLessonSize - 1) / largeLessonSize
	b.m.Lessons = make([]pack.Lesson, 0, nLessons)
	for li := range nLessons {
		lesson := pack.Lesson{
			ID: fmt.Sprintf("lesson-%05d", li+1),
			// No made-up words here: they would break the one-hit-per-word rule.
			Title: fmt.Sprintf("Lesson %d", li+1),
		}
		for i := li * largeLessonSize; i < min(nItems, (li+1)*largeLessonSize); i++ {
			item, err := largeItem(b, lesson.ID, i)
			if err != nil {
				return nil, fmt.Errorf("write large pack %s: %w", id, err)
			}
			lesson.Items = append(lesson.Items, item)
		}
		b.m.Lessons = append(b.m.Lessons, lesson)
	}
	if err := b.write(dir); err != nil {
		return nil, fmt.Errorf("write large pack %s: %w", id, err)
	}
	return b.m, nil
}

// largeItem makes item i: even items are text documents, odd ones one-page
// HTML5 activities. Each lives in its lesson's folder so no folder grows
// past a few dozen entries.
func largeItem(b *builder, lessonID string, i int) (pack.Item, error) {
	words := itemWords(i)
	title := fmt.Sprintf("Item %d: %s %s", i+1, capitalize(words[0]), words[1])
	body := fmt.Sprintf("This is generated item %d. Its own words are %s. They appear in no other item of this pack.", i+1, strings.Join(words, ", "))
	item := pack.Item{
		ID:    fmt.Sprintf("item-%06d", i+1),
		Title: title,
		Text:  strings.Join(words, " "),
	}
	base := fmt.Sprintf("%s/item-%06d", lessonID, i+1)
	if i%2 == 0 {
		item.Kind = pack.KindDocument
		item.File = base + ".txt"
		item.Type = "text/plain; charset=utf-8"
		b.add(item.File, []byte(title+"\n\n"+body+"\n"))
		return item, nil
	}
	page := fmt.Sprintf("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>%s</title></head>\n<body><h1>%s</h1><p>%s</p></body>\n</html>\n",
		html.EscapeString(title), html.EscapeString(title), html.EscapeString(body))
	z, err := storedZip([]zipEntry{{"index.html", []byte(page)}})
	if err != nil {
		return pack.Item{}, fmt.Errorf("build item %d: %w", i+1, err)
	}
	item.Kind = pack.KindHTML5
	item.File = base + ".zip"
	item.Entry = "index.html"
	b.add(item.File, z)
	return item, nil
}

// itemWords are three made-up words owned by item i alone: a benchmark can
// search for one and expect exactly that item back.
func itemWords(i int) []string {
	n := uint64(i) * 3
	return []string{fakeWord(n), fakeWord(n + 1), fakeWord(n + 2)}
}

// syllables are all two letters, consonant then vowel, so a word splits back
// into its syllables one way only and distinct numbers give distinct words.
var syllables = []string{
	"ba", "be", "bo", "da", "de", "do", "fa", "fi", "ga", "go", "ka", "ki",
	"ko", "la", "le", "lu", "ma", "mi", "mo", "na", "ne", "nu", "pa", "pi",
	"ra", "re", "ro", "sa", "si", "ta", "to", "vu",
}

// fakeWord spells n in base 32 with syllables for digits, at least three of
// them so even small numbers make word-like, tokenizer-friendly words
// (no digits, which some search tokenizers split on).
func fakeWord(n uint64) string {
	base := uint64(len(syllables))
	var digits []string
	for n > 0 || len(digits) < 3 {
		digits = append(digits, syllables[n%base])
		n /= base
	}
	var b strings.Builder
	for i := len(digits) - 1; i >= 0; i-- {
		b.WriteString(digits[i])
	}
	return b.String()
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
