package pack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// shape is what the manifest's JSON may hold at one place: an object with
// the named fields, a map of any keys to one shape, a list of one shape, or
// (nil) anything the decoder's own type checks judge.
type shape struct {
	fields map[string]*shape // lower-case names, as encoding/json matches them
	values *shape            // for a map: every value
	elem   *shape            // for a list: every element
	isMap  bool
}

var (
	itemShape   = &shape{fields: names(nil, "id", "kind", "title", "file", "type", "entry", "text", "text_file")}
	lessonShape = &shape{fields: names(map[string]*shape{"items": {elem: itemShape}}, "id", "title")}
	// manifestShape mirrors Manifest and its json tags; TestManifestShape
	// keeps the two in step.
	manifestShape = &shape{fields: names(map[string]*shape{
		"lessons": {elem: lessonShape},
		"files":   {isMap: true, values: &shape{fields: names(nil, "sha256", "size")}},
	}, "format", "id", "version", "title", "description", "language", "subjects", "grades", "extra")}
)

func names(nested map[string]*shape, plain ...string) map[string]*shape {
	m := map[string]*shape{}
	for _, n := range plain {
		m[n] = nil
	}
	for n, s := range nested {
		m[n] = s
	}
	return m
}

// checkFields reports the first object key in data that names no field of
// a manifest, the way json.Decoder.DisallowUnknownFields would, without
// holding the document twice: the decoder reads tokens through a small
// buffer, where decoding with DisallowUnknownFields buffers the whole
// value (16 MB for a 50,000-item course) beside the caller's copy. It also
// reports malformed JSON and data after the manifest object.
func checkFields(data []byte) *FieldError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	fail := func(err error) *FieldError {
		if se, ok := err.(*json.SyntaxError); ok {
			return &FieldError{File: ManifestName, Msg: "malformed JSON: " + describeJSONError(data, se)}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return &FieldError{File: ManifestName, Msg: "malformed JSON: unexpected end of JSON input"}
		}
		return &FieldError{File: ManifestName, Msg: "malformed JSON: " + err.Error()}
	}
	var walk func(s *shape) *FieldError
	walk = func(s *shape) *FieldError {
		tok, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					return fail(err)
				}
				var next *shape
				if s != nil && s.isMap {
					next = s.values
				} else if s != nil && s.fields != nil {
					k, _ := key.(string)
					var known bool
					next, known = s.fields[strings.ToLower(k)]
					if !known {
						line, col := lineCol(data, dec.InputOffset())
						return &FieldError{File: ManifestName, Msg: fmt.Sprintf("malformed JSON: json: unknown field %q (line %d, column %d)", k, line, col)}
					}
				}
				if fe := walk(next); fe != nil {
					return fe
				}
			}
		case json.Delim('['):
			var elem *shape
			if s != nil {
				elem = s.elem
			}
			for dec.More() {
				if fe := walk(elem); fe != nil {
					return fe
				}
			}
		default:
			return nil // a scalar: its type is the decoder's to judge
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return fail(err)
		}
		return nil
	}
	if fe := walk(manifestShape); fe != nil {
		return fe
	}
	if _, err := dec.Token(); err != io.EOF {
		return &FieldError{File: ManifestName, Msg: "malformed JSON: unexpected data after the manifest object"}
	}
	return nil
}
