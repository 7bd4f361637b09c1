package web

import (
	"strconv"
	"strings"

	"golang.org/x/text/message"
)

// formatSize uses decimal units, the ones phones show for storage. It is
// the reference for sizeFormat, which pages use.
func formatSize(p *message.Printer, n int64) string {
	switch {
	case n < 1000:
		return p.Sprintf("%d B", n)
	case n < 1000*1000:
		return p.Sprintf("%.1f kB", float64(n)/1e3)
	case n < 1000*1000*1000:
		return p.Sprintf("%.1f MB", float64(n)/1e6)
	default:
		return p.Sprintf("%.1f GB", float64(n)/1e9)
	}
}

// sizeFormat writes what formatSize writes for one printer without going
// through x/text's formatter on each call (about 1.5 µs each, 200 a course
// page): the translated unit patterns and the decimal separator are read
// from the printer once. Numbers that need more than that (a thousands
// separator, after rounding up to 1000.0) go to formatSize.
// TestSizeFormat compares the two.
type sizeFormat struct {
	p     *message.Printer
	sep   string   // decimal separator
	units [4]affix // B, kB, MB, GB
	ok    bool     // the patterns were understood; else always formatSize
}

type affix struct{ pre, post string }

func newSizeFormat(p *message.Printer) *sizeFormat {
	f := &sizeFormat{p: p}
	num := p.Sprintf("%.1f", 1.5)
	if !strings.HasPrefix(num, "1") || !strings.HasSuffix(num, "5") || len(num) < 3 {
		return f
	}
	f.sep = num[1 : len(num)-1]
	split := func(out, n string) (affix, bool) {
		pre, post, found := strings.Cut(out, n)
		return affix{pre, post}, found && !strings.Contains(post, n)
	}
	var ok [4]bool
	f.units[0], ok[0] = split(p.Sprintf("%d B", 7), "7")
	f.units[1], ok[1] = split(p.Sprintf("%.1f kB", 1.5), num)
	f.units[2], ok[2] = split(p.Sprintf("%.1f MB", 1.5), num)
	f.units[3], ok[3] = split(p.Sprintf("%.1f GB", 1.5), num)
	f.ok = ok[0] && ok[1] && ok[2] && ok[3]
	return f
}

func (f *sizeFormat) format(n int64) string {
	if !f.ok || n < 0 {
		return formatSize(f.p, n)
	}
	u, x := 0, 0.0
	switch {
	case n < 1000:
		return f.units[0].pre + strconv.FormatInt(n, 10) + f.units[0].post
	case n < 1000*1000:
		u, x = 1, float64(n)/1e3
	case n < 1000*1000*1000:
		u, x = 2, float64(n)/1e6
	default:
		u, x = 3, float64(n)/1e9
	}
	s := strconv.FormatFloat(x, 'f', 1, 64)
	if len(s) > len("999.9") {
		return formatSize(f.p, n) // 1000.0 and up: the printer groups digits
	}
	return f.units[u].pre + strings.Replace(s, ".", f.sep, 1) + f.units[u].post
}
