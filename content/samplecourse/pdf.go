package samplecourse

import (
	"bytes"
	"fmt"
	"strings"
)

// The fact sheet is a hand-written PDF 1.4: plain text in the standard
// Helvetica fonts, which every viewer has built in, so nothing is embedded
// and no PDF library is needed. Streams are left uncompressed so the file
// does not depend on a compressor's output and text tools can read it as is.
//
// Layout is done in integer points and thousandths of an em so the bytes
// are the same on every architecture.

// A4 portrait, the common school paper size outside North America; Letter
// printers scale it with a small margin change.
const (
	pageWidth  = 595
	pageHeight = 842
	marginSide = 64
	marginTop  = 64
	marginFoot = 56
	textWidth  = pageWidth - 2*marginSide
	footerSize = 9
	footerLine = 32 // footer baseline above the page's bottom edge
	ruleGap    = 8  // space between the title's rule and the next line
)

// pdfStyle is how one kind of block is set.
type pdfStyle struct {
	font    string // resource name: F1 Helvetica, F2 Helvetica-Bold
	size    int    // points
	leading int    // baseline to baseline, points
	before  int    // extra space above the block, points
	gray    string // fill colour operand for the g operator
	rule    bool   // draw a coloured rule under the block
}

var (
	styleTitle    = pdfStyle{font: "F2", size: 24, leading: 30, gray: "0.04", rule: true}
	styleSubtitle = pdfStyle{font: "F1", size: 11, leading: 15, gray: "0.35"}
	styleHeading  = pdfStyle{font: "F2", size: 14, leading: 18, before: 12, gray: "0.04"}
	styleBody     = pdfStyle{font: "F1", size: 11, leading: 15, before: 3, gray: "0"}
)

// pdfBlock is a paragraph in one style; layout wraps it into lines.
type pdfBlock struct {
	style pdfStyle
	text  string
}

// helveticaWidths are the advance widths, in thousandths of an em, of
// Helvetica's printable ASCII glyphs (codes 32 to 126) from Adobe's font
// metrics, which every viewer uses for the base fonts.
var helveticaWidths = [95]int{
	278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // space to /
	556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // 0 to ?
	1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // @ to O
	667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // P to _
	333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // ` to o
	556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // p to ~
}

// textWidthMilli is s's width in thousandths of a point at size 1. Bold is
// measured as regular plus a fifth: its exact metrics are not worth a second
// table for headings that never come near the margin, and overestimating
// only wraps a little early.
func textWidthMilli(s, font string) int {
	w := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 32 || c > 126 {
			c = '?'
		}
		w += helveticaWidths[c-32]
	}
	if font == "F2" {
		w += w / 5
	}
	return w
}

// wrap breaks text into lines no wider than width points.
func wrap(text string, st pdfStyle, width int) []string {
	limit := width * 1000 / st.size
	var lines []string
	var line string
	for _, word := range strings.Fields(text) {
		try := word
		if line != "" {
			try = line + " " + word
		}
		if line != "" && textWidthMilli(try, st.font) > limit {
			lines = append(lines, line)
			try = word
		}
		line = try
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// pdfString escapes s for a literal string. Anything outside printable
// ASCII becomes '?': the fonts use WinAnsiEncoding, where UTF-8 bytes would
// print as accented garbage.
func pdfString(s string) string {
	var b strings.Builder
	b.WriteByte('(')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '(' || c == ')' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 32 || c > 126:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(')')
	return b.String()
}

// layout sets blocks onto as many pages as they need and returns each
// page's content stream (without the footer, which needs the page count).
func layout(blocks []pdfBlock) []*bytes.Buffer {
	var pages []*bytes.Buffer
	var page *bytes.Buffer
	y := 0
	newPage := func() {
		page = &bytes.Buffer{}
		pages = append(pages, page)
		y = pageHeight - marginTop
	}
	newPage()
	for i, bl := range blocks {
		st := bl.style
		lines := wrap(bl.text, st, textWidth)
		if i > 0 {
			y -= st.before
		}
		// Keep a heading with the first two lines of what follows it.
		if st == styleHeading && i+1 < len(blocks) {
			keep := len(lines)*st.leading + 2*blocks[i+1].style.leading
			if y-keep < marginFoot {
				newPage()
			}
		}
		for _, ln := range lines {
			if y-st.leading < marginFoot {
				newPage()
			}
			y -= st.leading
			fmt.Fprintf(page, "BT %s g /%s %d Tf 1 0 0 1 %d %d Tm %s Tj ET\n",
				st.gray, st.font, st.size, marginSide, y, pdfString(ln))
		}
		if st.rule {
			y -= ruleGap
			// A water-blue rule, the one splash of colour on the sheet.
			fmt.Fprintf(page, "0.25 0.66 0.96 RG 2 w %d %d m %d %d l S\n",
				marginSide, y, pageWidth-marginSide, y)
		}
	}
	return pages
}

// renderPDF writes a complete PDF 1.4 file. Objects are numbered in the
// order written, and the cross-reference table records each one's byte
// offset, which viewers use to find them without scanning.
func renderPDF(title, footer string, blocks []pdfBlock) []byte {
	pages := layout(blocks)
	var out bytes.Buffer
	// The binary comment marks the file as binary for transfer tools that
	// would otherwise rewrite line endings.
	out.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")

	const (
		catalogObj = 1 + iota
		pagesObj
		fontObj
		boldObj
		infoObj
		firstPageObj
	)
	pageObj := func(i int) int { return firstPageObj + 2*i }
	contentObj := func(i int) int { return firstPageObj + 2*i + 1 }
	offsets := []int{}
	obj := func(n int, body string) {
		if n != len(offsets)+1 {
			panic(fmt.Sprintf("pdf object %d written out of order", n))
		}
		offsets = append(offsets, out.Len())
		fmt.Fprintf(&out, "%d 0 obj\n%s\nendobj\n", n, body)
	}

	obj(catalogObj, fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R >>", pagesObj))
	kids := make([]string, len(pages))
	for i := range pages {
		kids[i] = fmt.Sprintf("%d 0 R", pageObj(i))
	}
	obj(pagesObj, fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(pages)))
	obj(fontObj, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	obj(boldObj, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
	// No dates: they would make every run's file different.
	obj(infoObj, fmt.Sprintf("<< /Title %s /Producer (Outpost) >>", pdfString(title)))
	for i, content := range pages {
		obj(pageObj(i), fmt.Sprintf(
			"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 %d 0 R /F2 %d 0 R >> >> /Contents %d 0 R >>",
			pagesObj, pageWidth, pageHeight, fontObj, boldObj, contentObj(i)))
		fmt.Fprintf(content, "BT 0.45 g /F1 %d Tf 1 0 0 1 %d %d Tm %s Tj ET",
			footerSize, marginSide, footerLine, pdfString(fmt.Sprintf("%s - page %d of %d", footer, i+1, len(pages))))
		// Length counts the bytes between the stream keywords' line ends;
		// the newline before endstream is not part of the data.
		obj(contentObj(i), fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", content.Len(), content.Bytes()))
	}

	xref := out.Len()
	fmt.Fprintf(&out, "xref\n0 %d\n", len(offsets)+1)
	// Each entry is exactly 20 bytes, ending in space and newline.
	out.WriteString("0000000000 65535 f \n")
	for _, off := range offsets {
		fmt.Fprintf(&out, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&out, "trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n",
		len(offsets)+1, catalogObj, infoObj, xref)
	return out.Bytes()
}

func factSheetPDF() []byte {
	return renderPDF("The Water Cycle - Fact Sheet", "Outpost sample course: The Water Cycle", factSheetBlocks)
}
