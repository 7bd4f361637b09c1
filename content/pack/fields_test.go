package pack

import (
	"reflect"
	"strings"
	"testing"
)

// TestManifestShape: the field names checkFields accepts are exactly the
// json names of Manifest, Lesson, Item and File.
func TestManifestShape(t *testing.T) {
	tags := func(v any) []string {
		var out []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			out = append(out, name)
		}
		return out
	}
	for _, c := range []struct {
		of any
		s  *shape
	}{{Manifest{}, manifestShape}, {Lesson{}, lessonShape}, {Item{}, itemShape}, {File{}, manifestShape.fields["files"].values}} {
		want := tags(c.of)
		if len(want) != len(c.s.fields) {
			t.Errorf("%T has fields %v; the shape knows %d", c.of, want, len(c.s.fields))
		}
		for _, n := range want {
			if _, ok := c.s.fields[n]; !ok {
				t.Errorf("%T field %q is missing from its shape", c.of, n)
			}
		}
	}
}

func TestDecodeRefusesUnknownFields(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`{"lesons":[]}`, `unknown field "lesons" (line 1`},
		{`{"lessons":[{"id":"a","items":[{"id":"x","colour":"red"}]}]}`, `unknown field "colour"`},
		{`{"files":{"a.txt":{"sha256":"x","mtime":1}}}`, `unknown field "mtime"`},
		{"{\n\"format\":1,,}", "line 2"},
		{`{"format":1} {}`, "unexpected data after the manifest object"},
		{`{"format":1`, "unexpected end"},
		{`{"format":"one"}`, `field "format" must be int`},
	} {
		_, err := DecodeManifest([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.doc, err, tc.want)
		}
	}
	// Keys match fields as encoding/json matches them, whatever their case;
	// extra and files take any keys.
	m, err := DecodeManifest([]byte(`{"Title":"T","extra":{"anything":"x"},"files":{"any/path":{"SHA256":"s","size":1}}}`))
	if err != nil || m.Title != "T" || m.Files["any/path"].SHA256 != "s" || m.Extra["anything"] != "x" {
		t.Fatalf("decode: %+v %v", m, err)
	}
}
