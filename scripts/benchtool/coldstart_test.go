package main

import (
	"os"
	"strings"
	"testing"

	"outpost/content/samplecourse"
)

func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	rss, err := procStatusKiB(pid, "VmRSS")
	if err != nil || rss <= 0 {
		t.Fatalf("VmRSS of this test: %d, %v", rss, err)
	}
	if _, err := procStatusKiB(pid, "NoSuchLine"); err == nil {
		t.Error("a missing status line was not reported")
	}
	if ticks, err := cpuTicks(pid); err != nil || ticks < 0 {
		t.Fatalf("CPU ticks of this test: %d, %v", ticks, err)
	}
}

func TestPageURLsCycleThroughTheMix(t *testing.T) {
	dir := t.TempDir()
	if _, err := samplecourse.WriteLarge(dir, "bench-small", 30); err != nil {
		t.Fatal(err)
	}
	c := coldStart{pack: dir, total: 8, mix: []string{"home", "search", "course", "item"}}
	urls, err := c.pageURLs()
	if err != nil {
		t.Fatal(err)
	}
	if len(urls) != 8 {
		t.Fatalf("%d URLs, want 8", len(urls))
	}
	for i, want := range []string{"/", "/search?q=", "/c/bench-small", "/c/bench-small/i/item-"} {
		if !strings.HasPrefix(urls[i], want) || !strings.HasPrefix(urls[i+4], want) {
			t.Errorf("URLs %d and %d are %q and %q; want both to start with %q", i, i+4, urls[i], urls[i+4], want)
		}
	}
	if urls[1] == "/search?q=" {
		t.Error("the search has no words")
	}
	c.mix = []string{"nope"}
	if _, err := c.pageURLs(); err == nil {
		t.Error("an unknown page kind was accepted")
	}
}
