package main

import "testing"

func TestTerminalSafe(t *testing.T) {
	for in, want := range map[string]string{
		"Kisumu Primary": "Kisumu Primary",
		"École Saint-Éloi — 北京 مدرسة": "École Saint-Éloi — 北京 مدرسة",
		"evil\x1b]2;owned\x07":        `evil\x1b]2;owned\a`,
		"two\nlines\r":                `two\nlines\r`,
		"col\tumn":                    `col\tumn`,
		"abc\u202egnp.exe":            `abc\u202egnp.exe`,
		"\u2066isolate\u2069 \u200f":  `\u2066isolate\u2069 \u200f`,
		"line\u2028sep":               `line\u2028sep`,
		"c1 \u009b31m":                `c1 \u009b31m`,
		"bad utf8 \xff\xfe":           `bad utf8 \xff\xfe`,
		"nul\x00":                     `nul\x00`,
	} {
		if got := terminalSafe(in); got != want {
			t.Errorf("terminalSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
