package pack

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime/metrics"
	"strings"
	"testing"
)

func FuzzParseManifest(f *testing.F) {
	valid, err := testManifest(map[string]string{"lessons/a.txt": "hello", "lessons/a.vtt": "WEBVTT"}).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	for _, s := range []string{
		``, `{`, `null`, `[]`, `{"format":1}`, `{"lesons":[]}`, `{"format":1.5}`,
		`{"format":1,"id":"a","version":1,"title":"t","language":"en","lessons":[{"id":"l","title":"t","items":[]}],"files":{}} {}`,
		`{"format":1,"id":"a","version":1,"title":"t","language":"en","subjects":[],"extra":{},"lessons":[{"id":"l","title":"t","items":null}],"files":{}}`,
		`{"format":1,"id":"a","version":1,"title":"t","language":"en","lessons":[{"id":"l","title":"t","items":[{"id":"i","kind":"html5","title":"t","file":"x.zip","entry":"../index.html"}]}],"files":{"x.zip":{"sha256":"00","size":-1}}}`,
		"{\"title\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		checkManifestInvariants(t, m)
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed manifest: %v", err)
		}
		m2, err := ParseManifest(b)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		if !reflect.DeepEqual(normalize(m), normalize(m2)) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, m2)
		}
	})
}

// checkManifestInvariants restates, independently of Validate's code, what
// the importer, the catalog, the portal and the box rely on once a
// manifest parses: identifiers the catalog and URLs accept, unique ids,
// clean relative paths, files named by their SHA-256, and every item's file
// (and transcript) listed.
func checkManifestInvariants(t *testing.T, m *Manifest) {
	t.Helper()
	id := regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)
	hash := regexp.MustCompile(`^[0-9a-f]{64}$`)
	if m.Format != FormatVersion || !id.MatchString(m.ID) || m.Version < 1 || strings.TrimSpace(m.Title) == "" {
		t.Fatalf("accepted manifest with format %d, id %q, version %d, title %q", m.Format, m.ID, m.Version, m.Title)
	}
	if len(m.Lessons) == 0 {
		t.Fatal("accepted a manifest with no lesson")
	}
	for p, f := range m.Files {
		if p == "" || p == ManifestName || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || path.Clean(p) != p ||
			p == ".." || strings.HasPrefix(p, "../") || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("accepted file path %q", p)
		}
		if !hash.MatchString(f.SHA256) || f.Size < 0 {
			t.Fatalf("accepted file %q with sha256 %q, size %d", p, f.SHA256, f.Size)
		}
	}
	ids := map[string]bool{}
	for _, l := range m.Lessons {
		if !id.MatchString(l.ID) || ids["lesson "+l.ID] {
			t.Fatalf("accepted lesson id %q", l.ID)
		}
		ids["lesson "+l.ID] = true
		for _, it := range l.Items {
			if !id.MatchString(it.ID) || ids[it.ID] || !it.Kind.Valid() {
				t.Fatalf("accepted item id %q, kind %q", it.ID, it.Kind)
			}
			ids[it.ID] = true
			if _, ok := m.Files[it.File]; !ok {
				t.Fatalf("accepted item %s whose file %q is not listed", it.ID, it.File)
			}
			if _, ok := m.Files[it.TextFile]; it.TextFile != "" && !ok {
				t.Fatalf("accepted item %s whose text file %q is not listed", it.ID, it.TextFile)
			}
			if it.Entry != "" && (it.Kind != KindHTML5 || CheckPath(it.Entry) != nil) {
				t.Fatalf("accepted entry %q on a %s item", it.Entry, it.Kind)
			}
		}
	}
}

// normalize treats empty and nil slices and maps as equal: omitempty drops
// them on Marshal, and they mean the same to every reader of the manifest.
func normalize(m *Manifest) *Manifest {
	c := *m
	if len(c.Subjects) == 0 {
		c.Subjects = nil
	}
	if len(c.Grades) == 0 {
		c.Grades = nil
	}
	if len(c.Extra) == 0 {
		c.Extra = nil
	}
	c.Lessons = append([]Lesson(nil), c.Lessons...)
	for i := range c.Lessons {
		if len(c.Lessons[i].Items) == 0 {
			c.Lessons[i].Items = nil
		}
	}
	return &c
}

func FuzzOpenArchive(f *testing.F) {
	// The readers do not parse the manifest, so small seeds keep the
	// fuzzer's minimization quick.
	man := ent{name: ManifestName, data: "{}"}
	tarball := tarBytes(f, man, ent{name: "lessons/", typ: tar.TypeDir}, ent{name: "lessons/a.txt", data: "hello"}, ent{name: "b"})
	f.Add(tarball)
	f.Add(zstdBytes(f, tarball))
	f.Add(zipBytes(f, man, ent{name: "lessons/a.txt", data: "hello"}, ent{name: "b"}))
	f.Add(zipRaw(f, storedRaw(f, ManifestName, []byte("{}"), 2), storedRaw(f, "a.txt", []byte("0123456789"), 5)))
	// Inputs run one at a time per process, so one file is reused, and it
	// is never truncated to zero: creating or emptying a file (ext4 then
	// flushes on close) costs more than the rest of an exec.
	p := filepath.Join(f.TempDir(), "pack")
	file, err := os.Create(p)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { file.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := file.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		if err := file.Truncate(int64(len(data))); err != nil {
			t.Fatal(err)
		}
		// Total allocation, not just live memory, stands in for "bounded":
		// inputs are small, so anything big was sized by a header's claim.
		allocs := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
		metrics.Read(allocs)
		before := allocs[0].Value.Uint64()
		defer func() {
			metrics.Read(allocs)
			if n := allocs[0].Value.Uint64() - before; n > 256<<20 {
				t.Fatalf("reading a %d-byte pack allocated %d MiB", len(data), n>>20)
			}
		}()
		// The input is a whole file on a working disk, so every failure is
		// the pack's fault and must say so.
		check := func(what string, err error) {
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s: error does not wrap ErrInvalid: %v", what, err)
			}
		}
		r, err := Open(p)
		check("Open", err)
		if err != nil {
			return
		}
		defer r.Close()
		m, err := r.Manifest(context.Background())
		check("Manifest", err)
		if len(m) > MaxManifestSize {
			t.Fatalf("Manifest returned %d bytes", len(m))
		}
		err = r.Walk(context.Background(), func(name string, size int64, rd io.Reader) error {
			if err := CheckPath(name); err != nil {
				t.Fatalf("Walk passed a bad name: %v", err)
			}
			if name == ManifestName {
				t.Fatalf("Walk passed the manifest")
			}
			n, err := io.Copy(io.Discard, rd)
			if err == nil && n != size {
				t.Fatalf("%s: read %d bytes without error, declared %d", name, n, size)
			}
			return err
		})
		check("Walk", err)
	})
}
