package upstream

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"outpost/content/pack"
	"outpost/sync/wire"
)

// FuzzPlanCourse feeds the box's first step on a synced course — the
// manifest parser and the checks against the change that carried it — what
// a hostile or broken upstream could send. It must refuse with an error a
// caller can classify, or give a plan for exactly the course and version
// named, whose files are all named by SHA-256 and whose patch offers are
// for those files only.
func FuzzPlanCourse(f *testing.F) {
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	good := func(id string, version int64) []byte {
		return fmt.Appendf(nil, `{"format":1,"id":%q,"version":%d,"title":"T","language":"en",
"lessons":[{"id":"l1","title":"L","items":[{"id":"i1","kind":"video","title":"V","file":"v.webm"}]}],
"files":{"v.webm":{"sha256":%q,"size":5}}}`, id, version, sum("video"))
	}
	f.Add("water", int64(2), good("water", 2), sum("video"), sum("old"))
	f.Add("water", int64(3), good("water", 2), "", "")
	f.Add("other", int64(2), good("water", 2), sum("video"), sum("old"))
	f.Add("water", int64(2), good("water", 2), sum("not-a-file"), sum("old"))
	f.Add("water", int64(2), []byte(`{"format":1}`), "", "")
	f.Add("", int64(0), []byte{}, "", "")
	f.Fuzz(func(t *testing.T, id string, version int64, manifest []byte, patchTo, patchFrom string) {
		cc := wire.CourseChange{ID: id, Version: version, Manifest: manifest}
		if patchTo != "" {
			cc.Patches = map[string][]string{patchTo: {patchFrom}}
		}
		p, err := planCourse(cc)
		if err != nil {
			if !errors.Is(err, pack.ErrInvalid) && !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("planCourse failed with %v, which wraps neither pack.ErrInvalid nor wire.ErrMalformed", err)
			}
			return
		}
		m := p.manifest
		if m.ID != id || m.Version != version {
			t.Fatalf("plan for %s v%d from a change naming %s v%d", m.ID, m.Version, id, version)
		}
		// What the box installs and later exports parses again the same
		// way (the lenient parse: the portal re-checks types per request).
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("planned manifest does not marshal: %v", err)
		}
		if _, err := pack.ParseStoredManifest(b); err != nil {
			t.Fatalf("planned manifest does not parse again: %v", err)
		}
		files := map[string]bool{}
		for p, f := range m.Files {
			if err := pack.CheckPath(p); err != nil {
				t.Fatalf("planned file path: %v", err)
			}
			if len(f.SHA256) != 64 || f.Size < 0 {
				t.Fatalf("planned file %s: sha256 %q, size %d", p, f.SHA256, f.Size)
			}
			files[f.SHA256] = true
		}
		for to := range p.change.Patches {
			if !files[to] {
				t.Fatalf("planned a patch for %q, not a file of the course", to)
			}
		}
	})
}
