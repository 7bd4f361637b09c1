// Package pack holds the course pack format: the manifest that describes a
// course version and the readers that take a pack from a folder, a zip, a
// tar or a zstd-compressed tar without trusting anything it says.
package pack

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"outpost/content/mediatype"
)

// ManifestName is the manifest's path at the root of every pack.
const ManifestName = "manifest.json"

// MaxManifestSize bounds how much of a manifest is read: a 10,000-item course
// stays far below it, and a hostile pack cannot make us buffer gigabytes.
const MaxManifestSize = 16 << 20

// FormatVersion is the manifest format this build writes and reads.
const FormatVersion = 1

// Kind is what an item is, which decides how the portal presents it.
type Kind string

// The item kinds a pack may use.
const (
	KindVideo    Kind = "video"
	KindAudio    Kind = "audio"
	KindPDF      Kind = "pdf"
	KindEPUB     Kind = "epub"
	KindHTML5    Kind = "html5"
	KindDocument Kind = "document"
)

// Kinds lists every valid kind, in the order the docs present them.
var Kinds = []Kind{KindVideo, KindAudio, KindPDF, KindEPUB, KindHTML5, KindDocument}

// Manifest describes one version of a course.
type Manifest struct {
	Format      int               `json:"format"`
	ID          string            `json:"id"`
	Version     int64             `json:"version"`
	Title       string            `json:"title"`
	Description string            `json:"description,omitempty"`
	Language    string            `json:"language"`
	Subjects    []string          `json:"subjects,omitempty"`
	Grades      []string          `json:"grades,omitempty"`
	Lessons     []Lesson          `json:"lessons"`
	Files       map[string]File   `json:"files"`
	Extra       map[string]string `json:"extra,omitempty"`
}

// Lesson is an ordered group of items.
type Lesson struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Items []Item `json:"items"`
}

// Item is one thing a learner opens: a video, a PDF, an HTML5 activity.
type Item struct {
	ID    string `json:"id"`
	Kind  Kind   `json:"kind"`
	Title string `json:"title"`
	// File is the pack path of the item's content (for html5, a zip).
	File string `json:"file"`
	// Type picks the media type File is served as, among those its kind
	// allows (mediatype.Allowed); empty means the one File's extension
	// implies for the kind.
	Type string `json:"type,omitempty"`
	// Entry is, for html5 items, the page inside the zip to open.
	Entry string `json:"entry,omitempty"`
	// Text is searchable text (a summary, a transcript) given inline.
	Text string `json:"text,omitempty"`
	// TextFile is a pack path of a UTF-8 text or WebVTT transcript to index.
	TextFile string `json:"text_file,omitempty"`
}

// File is what the manifest promises about one file of the pack.
type File struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// FieldError says which field of which file is wrong and why, so a pack
// author can fix it without reading our code.
type FieldError struct {
	File  string // the pack file, usually manifest.json
	Field string // a JSON path such as lessons[2].items[0].kind
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Msg)
}

// ErrInvalid is wrapped by every manifest and pack validation error.
var ErrInvalid = errors.New("invalid course pack")

// ValidationError collects every problem found, so one run of import tells
// the author everything to fix instead of one problem per attempt.
type ValidationError struct {
	Problems []*FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid course pack (%d problem", len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for i, p := range e.Problems {
		if i == 20 {
			fmt.Fprintf(&b, "\n  … and %d more", len(e.Problems)-i)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

func (e *ValidationError) Unwrap() error { return ErrInvalid }

var (
	idPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)
	hexPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
	langPatt   = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)
)

// ParseManifest decodes and validates a manifest entering the system (an
// import, a publish). Unknown fields are errors: a typo such as "lesons"
// must not silently produce an empty course.
func ParseManifest(data []byte) (*Manifest, error) {
	return parseManifest(data, true)
}

// ParseStoredManifest decodes a manifest that was accepted before — kept in
// the catalog, kept by a hub, sent by the hub — possibly by an older build.
// It checks everything ParseManifest does except the serving rules older
// builds did not have (an item's type and its entry's form): the portal
// applies those again to every request (package mediatype; activity
// redirects are absolute paths), so such a course keeps syncing, exporting
// and serving, with a refused type as a download only, instead of failing
// the whole sync pass or the hub's changes for every box.
func ParseStoredManifest(data []byte) (*Manifest, error) {
	return parseManifest(data, false)
}

func parseManifest(data []byte, strict bool) (*Manifest, error) {
	m, err := DecodeManifest(data)
	if err != nil {
		return nil, err
	}
	if err := m.validate(strict); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeManifest decodes a manifest without validating it, so an importer
// can check a pack's files against a manifest that has other problems and
// report them all at once. Malformed JSON and unknown fields are errors.
func DecodeManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, &ValidationError{Problems: []*FieldError{{File: ManifestName, Msg: fmt.Sprintf("is %d bytes; the limit is %d", len(data), MaxManifestSize)}}}
	}
	// Fields and syntax first, token by token; then the decoding proper
	// straight from data, so the document is held once (see checkFields).
	if fe := checkFields(data); fe != nil {
		return nil, &ValidationError{Problems: []*FieldError{fe}}
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, &ValidationError{Problems: []*FieldError{{File: ManifestName, Msg: "malformed JSON: " + describeJSONError(data, err)}}}
	}
	return &m, nil
}

func describeJSONError(data []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(data, se.Offset)
		return fmt.Sprintf("%v at line %d, column %d", se, line, col)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		line, col := lineCol(data, te.Offset)
		return fmt.Sprintf("field %q must be %s, not %s (line %d, column %d)", te.Field, te.Type, te.Value, line, col)
	}
	return err.Error()
}

func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// Validate checks everything that can be checked without the files, as
// ParseManifest does.
func (m *Manifest) Validate() error { return m.validate(true) }

// validate checks the manifest; strict adds the serving rules that
// ParseStoredManifest leaves to the portal.
func (m *Manifest) validate(strict bool) error {
	var probs []*FieldError
	bad := func(field, format string, args ...any) {
		probs = append(probs, &FieldError{File: ManifestName, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if m.Format != FormatVersion {
		bad("format", "must be %d (this build reads pack format %d), got %d", FormatVersion, FormatVersion, m.Format)
	}
	if !idPattern.MatchString(m.ID) {
		bad("id", "must be 1-128 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit; got %q", m.ID)
	}
	if m.Version < 1 {
		bad("version", "must be a positive integer, got %d", m.Version)
	}
	if strings.TrimSpace(m.Title) == "" {
		bad("title", "is required")
	}
	if !langPatt.MatchString(m.Language) {
		bad("language", "must be a language tag such as \"en\" or \"fr-CA\", got %q", m.Language)
	}
	for i, s := range m.Subjects {
		if strings.TrimSpace(s) == "" {
			bad(fmt.Sprintf("subjects[%d]", i), "is empty")
		}
	}
	for p, f := range m.Files {
		field := fmt.Sprintf("files[%q]", p)
		if err := CheckPath(p); err != nil {
			bad(field, "%v", err)
		}
		if p == ManifestName {
			bad(field, "the manifest cannot list itself")
		}
		if !hexPattern.MatchString(f.SHA256) {
			bad(field+".sha256", "must be 64 lowercase hex digits, got %q", f.SHA256)
		}
		if f.Size < 0 {
			bad(field+".size", "must not be negative, got %d", f.Size)
		}
	}
	if len(m.Lessons) == 0 {
		bad("lessons", "a course needs at least one lesson")
	}
	lessonIDs := map[string]bool{}
	itemIDs := map[string]bool{}
	for li, l := range m.Lessons {
		lf := fmt.Sprintf("lessons[%d]", li)
		if !idPattern.MatchString(l.ID) {
			bad(lf+".id", "must be 1-128 lowercase letters, digits, '.', '_' or '-'; got %q", l.ID)
		} else if lessonIDs[l.ID] {
			bad(lf+".id", "%q is used by another lesson", l.ID)
		}
		lessonIDs[l.ID] = true
		if strings.TrimSpace(l.Title) == "" {
			bad(lf+".title", "is required")
		}
		for ii, it := range l.Items {
			f := fmt.Sprintf("%s.items[%d]", lf, ii)
			if !idPattern.MatchString(it.ID) {
				bad(f+".id", "must be 1-128 lowercase letters, digits, '.', '_' or '-'; got %q", it.ID)
			} else if itemIDs[it.ID] {
				bad(f+".id", "%q is used by another item; item ids are unique within a course", it.ID)
			}
			itemIDs[it.ID] = true
			if !it.Kind.Valid() {
				bad(f+".kind", "unknown kind %q; use one of %s", it.Kind, kindList())
			}
			if strings.TrimSpace(it.Title) == "" {
				bad(f+".title", "is required")
			}
			if it.File == "" {
				bad(f+".file", "is required")
			} else if _, ok := m.Files[it.File]; !ok {
				bad(f+".file", "%q is not listed in files", it.File)
			}
			if it.TextFile != "" {
				if _, ok := m.Files[it.TextFile]; !ok {
					bad(f+".text_file", "%q is not listed in files", it.TextFile)
				}
			}
			if strict && it.Type != "" && it.Kind.Valid() {
				if err := mediatype.Check(string(it.Kind), it.Type); err != nil {
					bad(f+".type", "%v", err)
				}
			}
			if it.Entry != "" {
				if it.Kind != KindHTML5 {
					bad(f+".entry", "only html5 items have an entry page")
				} else if err := CheckPath(it.Entry); err != nil {
					bad(f+".entry", "%v", err)
				} else if err := CheckEntry(it.Entry); strict && err != nil {
					bad(f+".entry", "%v", err)
				}
			}
		}
	}
	if len(probs) > 0 {
		sortProblems(probs)
		return &ValidationError{Problems: probs}
	}
	return nil
}

// Valid reports whether k is a kind this build knows.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

func kindList() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// CheckPath rejects pack paths that could escape the pack or mean different
// files on different systems: absolute paths, "..", backslashes, empty or
// "." segments, NUL and control characters.
func CheckPath(p string) error {
	switch {
	case p == "":
		return errors.New("path is empty")
	case len(p) > 1024:
		return errors.New("path is longer than 1024 bytes")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q is absolute; pack paths are relative to the pack root", p)
	case strings.Contains(p, `\`):
		return fmt.Errorf("path %q contains a backslash; use '/'", p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("path %q contains a control character", p)
		}
	}
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "..":
			return fmt.Errorf("path %q contains '..'; pack paths may not leave the pack", p)
		case "", ".":
			return fmt.Errorf("path %q has an empty or '.' segment", p)
		}
	}
	if path.Clean(p) != p {
		return fmt.Errorf("path %q is not in clean form", p)
	}
	return nil
}

// schemeLike matches a path whose first segment a browser would read as a
// URL scheme ("https:", "javascript:") if the path were used as a relative
// reference.
var schemeLike = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)

// CheckEntry checks an html5 item's entry page: a pack path (CheckPath)
// whose first segment cannot be read as a URL scheme. The portal builds its
// redirect to the entry as an absolute path on the box, so no entry could
// leave the box anyway; refusing such names keeps every link that embeds an
// entry unambiguous too.
func CheckEntry(p string) error {
	if err := CheckPath(p); err != nil {
		return err
	}
	if m := schemeLike.FindString(p); m != "" {
		return fmt.Errorf("entry %q starts with %q, which a browser reads as a URL scheme; name a page inside the zip, such as index.html", p, m)
	}
	return nil
}

// HashBytes is the hex SHA-256 form the manifest uses.
func HashBytes(sum []byte) string { return hex.EncodeToString(sum) }

// Marshal renders the manifest the way packs store it: indented, stable.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest %s: %w", m.ID, err)
	}
	return append(b, '\n'), nil
}

// Items returns every item in lesson order.
func (m *Manifest) Items() []Item {
	var out []Item
	for _, l := range m.Lessons {
		out = append(out, l.Items...)
	}
	return out
}

// sortProblems orders problems by field so the same pack always produces the
// same message (map iteration over files is random).
func sortProblems(p []*FieldError) {
	sort.SliceStable(p, func(i, j int) bool { return p[i].Field < p[j].Field })
}
