package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html"
	"html/template"
	"io/fs"
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/text/message"

	"outpost/content/pack"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageNames are the templates under templates/, each rendered inside
// layout.tmpl.
var pageNames = []string{"home", "search", "course", "item", "error"}

// views holds every page parsed once per language and per "was the language
// chosen by a link": the translation and link funcs are bound at start-up,
// so a request only picks a ready template and never clones or parses one.
type views struct {
	sets     []map[string]*template.Template // by variant(locale), then page
	listings []*listing                      // by variant(locale)
	icons    map[string]string               // kindIcon → the icon's address
}

func variant(l locale) int {
	v := l.idx * 2
	if l.explicit {
		v++
	}
	return v
}

func (v *views) page(l locale, name string) *template.Template {
	return v.sets[variant(l)][name]
}

func newViews(tr *translator, a *assets) (*views, error) {
	v := &views{sets: make([]map[string]*template.Template, 2*len(supported)), listings: make([]*listing, 2*len(supported)), icons: map[string]string{}}
	for _, k := range append([]pack.Kind{""}, pack.Kinds...) {
		u, err := a.url("kinds/" + kindIcon(k) + ".svg")
		if err != nil {
			return nil, fmt.Errorf("kind icons: %w", err)
		}
		v.icons[kindIcon(k)] = u
	}
	for idx := range supported {
		for _, explicit := range []bool{false, true} {
			l := locale{idx: idx, explicit: explicit}
			fm := funcs(tr.printer(l), l, a)
			parts, err := chrome(fm)
			if err != nil {
				return nil, err
			}
			fm["chrome"] = func(name string) (template.HTML, error) {
				if h, ok := parts[name]; ok {
					return h, nil
				}
				return "", fmt.Errorf("no chrome part %q", name)
			}
			set := map[string]*template.Template{}
			for _, name := range pageNames {
				t, err := template.New(name).Funcs(fm).ParseFS(templateFS, "templates/layout.tmpl", "templates/"+name+".tmpl")
				if err != nil {
					return nil, fmt.Errorf("parse template %s: %w", name, err)
				}
				set[name] = t
			}
			v.sets[variant(l)] = set
			v.listings[variant(l)] = newListing(tr.printer(l), l)
		}
	}
	return v, nil
}

// chromeParts are the templates of chrome.tmpl.
var chromeParts = []string{"head", "links", "top", "top-end", "footer"}

// chrome renders the parts of the layout that depend only on the language
// variant whose funcs fm holds, once.
func chrome(fm template.FuncMap) (map[string]template.HTML, error) {
	fm["chrome"] = func(string) template.HTML { return "" } // parts do not nest
	t, err := template.New("chrome").Funcs(fm).ParseFS(templateFS, "templates/chrome.tmpl")
	if err != nil {
		return nil, fmt.Errorf("parse template chrome: %w", err)
	}
	parts := map[string]template.HTML{}
	for _, name := range chromeParts {
		var b strings.Builder
		if err := t.ExecuteTemplate(&b, name, nil); err != nil {
			return nil, fmt.Errorf("render chrome %s: %w", name, err)
		}
		parts[name] = template.HTML(b.String())
	}
	return parts, nil
}

// funcs are the template functions for one locale. Page links carry ?hl=
// when the language came from a link, so a shared or followed link keeps
// the language without a cookie; media links never do, so every language
// shares one cached copy of a video.
func funcs(p *message.Printer, l locale, a *assets) template.FuncMap {
	lang := supported[l.idx].String()
	hl := ""
	if l.explicit {
		hl = lang
	}
	return template.FuncMap{
		"t":    func(key string, args ...any) string { return p.Sprintf(key, args...) },
		"lang": func() string { return lang },
		"hl":   func() string { return hl },
		"page": func(path string, kv ...string) string { return pageURL(path, hl, kv...) },
		"courseURL": func(course string) string {
			return pageURL("/c/"+url.PathEscape(course), hl)
		},
		"itemURL": func(course, item string) string {
			return pageURL("/c/"+url.PathEscape(course)+"/i/"+url.PathEscape(item), hl)
		},
		"size":     newSizeFormat(p).format,
		"kind":     func(k pack.Kind) string { return p.Sprintf(kindLabel(k)) },
		"icon":     func(k pack.Kind) (string, error) { return a.url("kinds/" + kindIcon(k) + ".svg") },
		"asset":    a.url,
		"langName": languageName,
		"snippet":  highlight,
	}
}

// pageURL builds a portal link; empty values are left out so filter links
// stay short.
func pageURL(path, hl string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if hl != "" {
		q.Set("hl", hl)
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// highlight turns a catalog snippet, whose matches sit between \x02 and
// \x03, into HTML: everything else is escaped, and unbalanced markers (a
// snippet cut in the middle of a match) still yield well-formed markup.
func highlight(s string) template.HTML {
	var b strings.Builder
	open := false
	for {
		i := strings.IndexAny(s, "\x02\x03")
		if i < 0 {
			b.WriteString(html.EscapeString(s))
			break
		}
		b.WriteString(html.EscapeString(s[:i]))
		switch {
		case s[i] == '\x02' && !open:
			b.WriteString("<mark>")
			open = true
		case s[i] == '\x03' && open:
			b.WriteString("</mark>")
			open = false
		}
		s = s[i+1:]
	}
	if open {
		b.WriteString("</mark>")
	}
	return template.HTML(b.String())
}

func kindLabel(k pack.Kind) string {
	switch k {
	case pack.KindVideo:
		return "Video"
	case pack.KindAudio:
		return "Audio"
	case pack.KindPDF:
		return "PDF"
	case pack.KindEPUB:
		return "E-book"
	case pack.KindHTML5:
		return "Activity"
	case pack.KindDocument:
		return "Document"
	}
	return "File"
}

func kindIcon(k pack.Kind) string {
	if k.Valid() {
		return string(k)
	}
	return "file"
}

// assets are the embedded static files. Each link carries a hash of the
// file's content, so a browser may keep it forever and still never use a
// stale copy after an upgrade.
type assets struct {
	files map[string]asset
}

type asset struct {
	data []byte
	hash string
}

func loadAssets() (*assets, error) {
	a := &assets{files: map[string]asset{}}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		a.add(strings.TrimPrefix(p, "static/"), data)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load embedded assets: %w", err)
	}
	// The stylesheet names icons by their paths under static/; it gets
	// their hashed addresses, and then its own hash covers theirs.
	css := a.files["style.css"].data
	var bad error
	css = cssURL.ReplaceAllFunc(css, func(m []byte) []byte {
		u, err := a.url(string(cssURL.FindSubmatch(m)[1]))
		if err != nil {
			bad = err
			return m
		}
		return []byte("url(" + u + ")")
	})
	if bad != nil {
		return nil, fmt.Errorf("load embedded assets: style.css: %w", bad)
	}
	a.add("style.css", css)
	return a, nil
}

// cssURL matches the stylesheet's references to other embedded files.
var cssURL = regexp.MustCompile(`url\(([a-z0-9/._-]+)\)`)

func (a *assets) add(name string, data []byte) {
	sum := sha256.Sum256(data)
	a.files[name] = asset{data: data, hash: hex.EncodeToString(sum[:8])}
}

// url fails the page on an unknown name: the names come from our own
// templates, and a typo should fail the tests, not ship a broken link.
func (a *assets) url(name string) (string, error) {
	f, ok := a.files[name]
	if !ok {
		return "", fmt.Errorf("no embedded asset %s", name)
	}
	return "/s/" + name + "?v=" + f.hash, nil
}
