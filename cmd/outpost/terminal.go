package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// terminalSafe is every string the CLI prints in text mode that it did not
// write itself: what a hub, a box or a pack author chose (host names,
// sites, course titles, error messages from a peer). A terminal obeys what
// it is sent, so such a string could move the cursor, rewrite earlier
// lines, set the window title (ESC sequences), fake a table row (a
// newline), or reorder what follows it (bidi overrides). Every rune that
// is not graphic is escaped as a Go string literal would show it: control
// characters (\x1b, \n, \t, \a), format characters including the bidi
// controls (\u202e), line and paragraph separators, and invalid UTF-8
// (\xff). Letters of every script, marks, punctuation and ordinary spaces
// print as they are. --json output is not passed through it: JSON escapes
// control characters itself and must stay exact.
func terminalSafe(s string) string {
	if isTerminalSafe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case safeRune(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

func isTerminalSafe(s string) bool {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return false
			}
		}
		if !safeRune(r) {
			return false
		}
	}
	return true
}

// safeRune: graphic runes (letters, marks, numbers, punctuation, symbols,
// and the space separators) print as themselves; everything else, in
// particular the Cc and Cf categories, is escaped.
func safeRune(r rune) bool { return unicode.IsGraphic(r) }

// terminalSafeAll is terminalSafe over a list.
func terminalSafeAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = terminalSafe(s)
	}
	return out
}
