package web

import (
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"outpost/content/catalog"
	"outpost/content/mediatype"
	"outpost/content/pack"
)

const (
	homePageSize = 120
	// coursePageItems bounds a course page: a 10,000-item course rendered
	// whole was 2.6 MB of HTML and most of the portal's memory peak.
	coursePageItems = 200
	searchPageSize  = 30
	// maxInlineText bounds a plain-text document shown inside the item page:
	// enough for any reading, and a page a cheap phone can still render.
	maxInlineText = 256 << 10
)

type homePage struct {
	base
	Language, Subject string
	Languages         []string
	Subjects          []string
	Groups            []courseGroup
	Filtered          bool
	Prev, Next        string // pagination links, empty when none
}

type courseGroup struct {
	Subject string // empty for courses with no subject
	Courses []catalog.Course
}

func (s *server) home(w http.ResponseWriter, r *http.Request) {
	l := s.tr.choose(r)
	q := r.URL.Query()
	f := catalog.Filter{Language: q.Get("lang"), Subject: q.Get("subject"), Limit: homePageSize}
	page := pageNumber(q.Get("page"))
	f.Offset = (page - 1) * homePageSize
	langs, subjects, err := s.courses.Facets(r.Context())
	if err != nil {
		s.lookupFailed(w, r, err, reasonServer, "")
		return
	}
	courses, err := s.courses.Courses(r.Context(), f)
	if err != nil {
		s.lookupFailed(w, r, err, reasonServer, "")
		return
	}
	d := homePage{
		base:      s.baseOf(r, l, "home", s.tr.printer(l).Sprintf("Courses")),
		Language:  f.Language,
		Subject:   f.Subject,
		Languages: langs,
		Subjects:  subjects,
		Groups:    groupBySubject(courses, f.Subject),
		Filtered:  f.Language != "" || f.Subject != "",
	}
	d.Prev, d.Next = pager(r.URL.EscapedPath(), q, page, len(courses) == homePageSize)
	s.render(w, r, l, http.StatusOK, "home", d)
}

// groupBySubject lists a course under each of its subjects, subjects in
// alphabetical order and subject-less courses last. With a subject filter
// only that subject's group is shown, or a course would reappear under its
// other subjects.
func groupBySubject(courses []catalog.Course, only string) []courseGroup {
	by := map[string][]catalog.Course{}
	for _, c := range courses {
		if len(c.Subjects) == 0 {
			by[""] = append(by[""], c)
			continue
		}
		seen := map[string]bool{}
		for _, sub := range c.Subjects {
			if !seen[sub] && (only == "" || sub == only) {
				seen[sub] = true
				by[sub] = append(by[sub], c)
			}
		}
	}
	var names []string
	for k := range by {
		if k != "" {
			names = append(names, k)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	if _, ok := by[""]; ok {
		names = append(names, "")
	}
	groups := make([]courseGroup, 0, len(names))
	for _, n := range names {
		groups = append(groups, courseGroup{Subject: n, Courses: by[n]})
	}
	return groups
}

func pageNumber(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 10000 {
		return 1
	}
	return n
}

// pager links to the neighbouring pages of a listing at path (escaped)
// whose query is q, by rewriting only the page parameter, so filters, query
// and language carry over.
func pager(path string, q url.Values, page int, more bool) (prev, next string) {
	link := func(n int) string {
		lq := make(url.Values, len(q))
		for k, v := range q {
			lq[k] = v
		}
		if n == 1 {
			lq.Del("page")
		} else {
			lq.Set("page", strconv.Itoa(n))
		}
		if len(lq) == 0 {
			return path
		}
		return path + "?" + lq.Encode()
	}
	if page > 1 {
		prev = link(page - 1)
	}
	if more {
		next = link(page + 1)
	}
	return prev, next
}

type searchPage struct {
	base
	Language, Subject string
	Languages         []string
	Subjects          []string
	Hits              []catalog.Hit
	Searched          bool
	Prev, Next        string
}

func (s *server) search(w http.ResponseWriter, r *http.Request) {
	l := s.tr.choose(r)
	q := r.URL.Query()
	text := strings.TrimSpace(q.Get("q"))
	if len(text) > 500 {
		text = truncateUTF8(text, 500)
	}
	f := catalog.Filter{Language: q.Get("lang"), Subject: q.Get("subject"), Limit: searchPageSize}
	page := pageNumber(q.Get("page"))
	f.Offset = (page - 1) * searchPageSize
	langs, subjects, err := s.courses.Facets(r.Context())
	if err != nil {
		s.lookupFailed(w, r, err, reasonServer, "")
		return
	}
	d := searchPage{
		base:      s.baseOf(r, l, "search", s.tr.printer(l).Sprintf("Search")),
		Language:  f.Language,
		Subject:   f.Subject,
		Languages: langs,
		Subjects:  subjects,
		Searched:  text != "",
	}
	d.Query = text
	if text != "" {
		d.Title = text + " – " + s.tr.printer(l).Sprintf("Search")
		d.Hits, err = s.courses.Search(r.Context(), text, f)
		if err != nil {
			s.lookupFailed(w, r, err, reasonServer, "")
			return
		}
		d.Prev, d.Next = pager(r.URL.EscapedPath(), q, page, len(d.Hits) == searchPageSize)
	}
	s.render(w, r, l, http.StatusOK, "search", d)
}

type coursePage struct {
	base
	Course *catalog.Course
	// Lessons is the window's lessons and items, written by writeLessons.
	Lessons    template.HTML
	Prev, Next string // pagination links through a long course
}

// canonical is the address and query of a course or item page as the
// portal links to it: the page number and a language chosen by a link, and
// nothing else a request may carry. A cached page is the same for every
// request with its key, so its language and pager links must not echo a
// request's other parameters.
func canonical(l locale, path string, page int) (string, url.Values) {
	q := url.Values{}
	if page > 1 {
		q.Set("page", strconv.Itoa(page))
	}
	if l.explicit {
		q.Set("hl", supported[l.idx].String())
	}
	return path, q
}

func (s *server) course(w http.ResponseWriter, r *http.Request) {
	l := s.tr.choose(r)
	id := r.PathValue("course")
	page := pageNumber(r.URL.Query().Get("page"))
	ed, err := s.courses.Edition(r.Context(), id)
	if err != nil {
		s.lookupFailed(w, r, err, reasonCourse, "")
		return
	}
	key := pageKey{course: id, page: page, variant: variant(l), edition: ed}
	if p := s.pages.get(key); p != nil {
		s.send(w, r, l, http.StatusOK, p)
		return
	}
	offset := (page - 1) * coursePageItems
	c, err := s.courses.CourseWindow(r.Context(), id, offset, coursePageItems)
	if err != nil {
		s.lookupFailed(w, r, err, reasonCourse, "")
		return
	}
	path, q := canonical(l, "/c/"+url.PathEscape(c.ID), page)
	d := coursePage{base: s.base(path, q, l, "course", c.Title), Course: c}
	d.Lessons = s.views.lessons(l, c)
	d.Prev, d.Next = pager(path, q, page, offset+coursePageItems < c.ItemCount)
	body, err := s.execute(l, "course", d)
	if err != nil {
		s.renderFailed(w, r, "course", err)
		return
	}
	p := newPage(body, levelKept, true)
	// A page past the end of the course is empty and only reached by a
	// made-up link: not worth a place in the cache.
	if offset < c.ItemCount || page == 1 {
		key.edition = c.Edition() // what was rendered, should the course have switched since
		s.pages.put(key, p.kept())
	}
	s.send(w, r, l, http.StatusOK, p)
}

// itemPage is what item.tmpl shows. Links, labels and the choice of player
// are worked out here rather than by template funcs and comparisons: each
// of those is a call through reflection, and an item page is rendered on
// every first view.
type itemPage struct {
	base
	Course     *catalog.Course
	Lesson     *catalog.Lesson
	Item       catalog.Item
	Prev, Next *catalog.Item

	CourseURL, PrevURL, NextURL string // page links, carrying ?hl= when it was given
	MediaURL, DownloadURL       string
	TrackURL                    string // captions, when the item has WebVTT ones
	ActivityURL                 string // the entry of an HTML5 activity
	Icon, KindLabel, SizeLabel  string

	// The player: Hint (the file cannot be shown), else the first true of
	// Video, Audio, PDF, ActivityURL, EPUB, Text, HTMLDoc.
	Hint, Video, Audio, PDF, EPUB bool
	Text                          string // a plain-text document, shown in the page
	TextCut                       bool   // Text is only the beginning of the document
	HTMLDoc                       bool   // an HTML document, shown in a script-less frame
}

func (s *server) item(w http.ResponseWriter, r *http.Request) {
	l := s.tr.choose(r)
	courseID, itemID := r.PathValue("course"), r.PathValue("item")
	ed, err := s.courses.Edition(r.Context(), courseID)
	if err != nil {
		s.lookupFailed(w, r, err, reasonCourse, "")
		return
	}
	key := pageKey{course: courseID, item: itemID, variant: variant(l), edition: ed}
	if p := s.pages.get(key); p != nil {
		s.send(w, r, l, http.StatusOK, p)
		return
	}
	ic, err := s.courses.ItemContext(r.Context(), courseID, itemID)
	if err != nil {
		// The course was there a moment ago: an unknown item is the
		// item's fault (or the course went since, which the learner will
		// see on the course's link).
		s.lookupFailed(w, r, err, reasonItem, courseID)
		return
	}
	c := ic.Course
	d := itemPage{Course: c, Lesson: &ic.Lesson, Item: ic.Item, Prev: ic.Prev, Next: ic.Next}
	it := &d.Item
	coursePath := "/c/" + url.PathEscape(c.ID)
	path, q := canonical(l, coursePath+"/i/"+url.PathEscape(it.ID), 1)
	d.base = s.base(path, q, l, "item", it.Title+" – "+c.Title)
	ls := s.views.listings[variant(l)]
	d.CourseURL = pageURL(coursePath, ls.hl)
	if d.Prev != nil {
		d.PrevURL = pageURL(coursePath+"/i/"+url.PathEscape(d.Prev.ID), ls.hl)
	}
	if d.Next != nil {
		d.NextURL = pageURL(coursePath+"/i/"+url.PathEscape(d.Next.ID), ls.hl)
	}
	file := url.PathEscape(c.ID) + "/" + url.PathEscape(it.ID)
	d.MediaURL, d.DownloadURL = "/m/"+file, "/d/"+file
	d.Icon, d.KindLabel, d.SizeLabel = s.views.icons[kindIcon(it.Kind)], ls.label(it.Kind), ls.size.format(it.Size)

	cacheable := true
	ctype := mediatype.ForItem(string(it.Kind), it.MIME, it.Path)
	// A file whose type is not one the box shows for its kind
	// (mediatype.ForItem gave OctetStream) is offered only for download:
	// the page embeds nothing.
	shown := ctype != mediatype.OctetStream
	switch it.Kind {
	case pack.KindVideo, pack.KindAudio:
		d.Hint = !shown
		d.Video, d.Audio = it.Kind == pack.KindVideo, it.Kind == pack.KindAudio
		if hasCaptions(it) {
			d.TrackURL = "/t/" + file
		}
	case pack.KindPDF:
		d.Hint, d.PDF = !shown, true
	case pack.KindHTML5:
		d.ActivityURL = activityPath(c.ID, it.ID, it.Entry)
	case pack.KindEPUB:
		d.EPUB = true
	case pack.KindDocument:
		switch mediaBase(ctype) {
		case "text/plain":
			d.Text, d.TextCut, err = s.readText(it.SHA256)
			if err != nil {
				// Shown without its text this time; a repair (the same
				// pack imported again, the same edition) must show it.
				cacheable = false
				s.log.Warn("cannot show document inline", "course", c.ID, "item", it.ID, "err", err)
			}
		case "text/html":
			d.HTMLDoc = true
		}
	}
	body, err := s.execute(l, "item", d)
	if err != nil {
		s.renderFailed(w, r, "item", err)
		return
	}
	p := newPage(body, levelKept, true)
	if cacheable {
		key.edition = c.Edition()
		s.pages.put(key, p.kept())
	}
	s.send(w, r, l, http.StatusOK, p)
}

// hasCaptions reports whether an item's transcript is WebVTT, which the
// browser can show as captions; other transcripts are only indexed.
func hasCaptions(it *catalog.Item) bool {
	return strings.HasSuffix(strings.ToLower(it.TextPath), ".vtt")
}

func mediaBase(mime string) string {
	t, _, _ := strings.Cut(mime, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// readText reads the start of a plain-text document for showing inline; a
// document that is not valid UTF-8 is left to the download link.
func (s *server) readText(sha string) (string, bool, error) {
	f, err := s.objects.OpenObject(sha)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxInlineText+1))
	if err != nil {
		return "", false, err
	}
	cut := len(b) > maxInlineText
	text := truncateUTF8(string(b), maxInlineText)
	if !utf8.ValidString(text) {
		return "", false, errors.New("document is not UTF-8 text")
	}
	return text, cut, nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
