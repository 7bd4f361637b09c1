package main

import (
	"context"
	"testing"
	"time"

	"outpost/content/samplecourse"
	"outpost/sync/synctest"
)

// The sync verbs' tests share one setting: a real hub on 127.0.0.1 with a
// channel "science", and boxes of the site "village" enrolled to it.

// startTestHub starts a hub in a temporary directory, stopped when the test
// ends.
func startTestHub(t *testing.T, ctx context.Context) *synctest.Hub {
	t.Helper()
	h, err := synctest.StartHub(ctx, t.TempDir(), "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Stop() })
	return h
}

// publishCourse publishes a generated course to the channel "science".
func publishCourse(t *testing.T, ctx context.Context, h *synctest.Hub, id string, files []samplecourse.File) {
	t.Helper()
	pack := t.TempDir()
	if _, err := samplecourse.WriteFiles(pack, id, 1, files); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Hub.Publish(ctx, pack, "science"); err != nil {
		t.Fatal(err)
	}
}

// villageToken is a new one-hour token for the site "village" and the
// channel "science".
func villageToken(t *testing.T, ctx context.Context, h *synctest.Hub) string {
	t.Helper()
	tok, _, err := h.Hub.CreateToken(ctx, "village", []string{"science"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// enrolledBox enrols a new box at h and closes it, so a verb or a daemon
// can open its data directory, which it returns.
func enrolledBox(t *testing.T, ctx context.Context, h *synctest.Hub) string {
	t.Helper()
	box := t.TempDir()
	b, err := synctest.StartBox(ctx, box, h.URL(), villageToken(t, ctx, h), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	return box
}
