package web

import (
	"context"
	"testing"

	"outpost/content/pack"
)

// TestMediaAfterVersionSwitchAndGC: the media path caches item lookups, so
// a player that fetched v1 and keeps requesting ranges after v2 is imported
// and v1's file is collected must get v2's bytes, not an error.
func TestMediaAfterVersionSwitchAndGC(t *testing.T) {
	e := newEnv(t)
	course := func(v int64) *pack.Manifest {
		return &pack.Manifest{Format: 1, ID: "switch", Version: v, Title: "Switch", Language: "en",
			Lessons: []pack.Lesson{{ID: "l", Title: "L", Items: []pack.Item{{ID: "v", Kind: pack.KindVideo, Title: "V", File: "v.webm"}}}}}
	}
	v1, v2 := []byte("version one bytes"), []byte("version two, longer bytes")
	e.commit(course(1), map[string][]byte{"v.webm": v1})
	if _, body := e.get("/m/switch/v"); body != string(v1) {
		t.Fatalf("v1: got %q", body)
	}
	e.commit(course(2), map[string][]byte{"v.webm": v2})
	if _, err := e.store.Remove(context.Background(), sha(v1)); err != nil {
		t.Fatal(err)
	}
	resp, body := e.get("/m/switch/v")
	if resp.StatusCode != 200 || body != string(v2) {
		t.Fatalf("after switch and gc: %d %q, want v2", resp.StatusCode, body)
	}
}
