package samplecourse

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"outpost/content/pack"
)

// goldenManifestSHA256 pins the demo course's bytes for Version. When it
// fails because you changed content on purpose, bump Version and paste the
// new digest: importers only look at the version to notice new content.
const goldenManifestSHA256 = "c9c02f99095606260197c3251ca6a09337d8856285d45247b71c03ac64a65bed"

// writeSample writes the demo course and returns its folder and manifest as
// read back from disk.
func writeSample(t *testing.T) (string, *pack.Manifest) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pack")
	m, err := Write(dir)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, pack.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := pack.ParseManifest(data)
	if err != nil {
		t.Fatalf("ParseManifest of written manifest: %v", err)
	}
	if !reflect.DeepEqual(m, parsed) {
		t.Errorf("Write returned a manifest that differs from the one on disk")
	}
	return dir, parsed
}

// checkFiles asserts that the folder holds exactly the manifest plus the
// files it lists, each with the promised size and hash, and returns their
// contents so callers need not read them again.
func checkFiles(t *testing.T, dir string, m *pack.Manifest) map[string][]byte {
	t.Helper()
	contents := make(map[string][]byte, len(m.Files))
	for p, f := range m.Files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			t.Errorf("listed file %s: %v", p, err)
			continue
		}
		contents[p] = data
		if int64(len(data)) != f.Size {
			t.Errorf("%s: size %d, manifest says %d", p, len(data), f.Size)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != f.SHA256 {
			t.Errorf("%s: sha256 %s, manifest says %s", p, got, f.SHA256)
		}
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if _, ok := m.Files[rel]; !ok && rel != pack.ManifestName {
			t.Errorf("%s is in the folder but not in the manifest", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return contents
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	tree := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		tree[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func readPackFile(t *testing.T, dir, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func itemsByKind(m *pack.Manifest) map[pack.Kind][]pack.Item {
	out := map[pack.Kind][]pack.Item{}
	for _, it := range m.Items() {
		out[it.Kind] = append(out[it.Kind], it)
	}
	return out
}

func TestWriteMakesValidPack(t *testing.T) {
	dir, m := writeSample(t)
	checkFiles(t, dir, m)
	if m.ID != ID || m.Version != Version || m.Language != "en" || len(m.Lessons) != 2 {
		t.Errorf("unexpected course header: id %q version %d language %q, %d lessons", m.ID, m.Version, m.Language, len(m.Lessons))
	}
	kinds := itemsByKind(m)
	for _, k := range []pack.Kind{pack.KindVideo, pack.KindAudio, pack.KindPDF, pack.KindHTML5, pack.KindDocument} {
		if len(kinds[k]) == 0 {
			t.Errorf("no %s item: the demo must exercise every player", k)
		}
	}
	if v := kinds[pack.KindVideo]; len(v) > 0 && !strings.HasSuffix(v[0].TextFile, ".vtt") {
		t.Errorf("video text_file = %q, want the .vtt transcript", v[0].TextFile)
	}
	if h := kinds[pack.KindHTML5]; len(h) > 0 && h[0].Entry != "index.html" {
		t.Errorf("html5 entry = %q, want index.html", h[0].Entry)
	}
}

func TestWriteIsDeterministic(t *testing.T) {
	a, _ := writeSample(t)
	b, _ := writeSample(t)
	ta, tb := readTree(t, a), readTree(t, b)
	if len(ta) != len(tb) {
		t.Fatalf("first run wrote %d files, second %d", len(ta), len(tb))
	}
	for p, data := range ta {
		if !bytes.Equal(data, tb[p]) {
			t.Errorf("%s differs between runs", p)
		}
	}
}

func TestWriteOverExistingPack(t *testing.T) {
	dir, _ := writeSample(t)
	m, err := Write(dir)
	if err != nil {
		t.Fatalf("second Write into the same folder: %v", err)
	}
	checkFiles(t, dir, m)
}

func TestGoldenDigest(t *testing.T) {
	dir, _ := writeSample(t)
	sum := sha256.Sum256(readPackFile(t, dir, pack.ManifestName))
	if got := hex.EncodeToString(sum[:]); got != goldenManifestSHA256 {
		t.Errorf("demo course content changed (manifest sha256 %s, golden %s) but Version is still %d: bump Version and update goldenManifestSHA256",
			got, goldenManifestSHA256, Version)
	}
}

func TestTranscript(t *testing.T) {
	dir, _ := writeSample(t)
	vtt := string(readPackFile(t, dir, pathTranscript))
	if !strings.HasPrefix(vtt, "WEBVTT\n") {
		t.Errorf("transcript does not start with the WEBVTT signature")
	}
	for _, w := range []string{"evaporation", "condensation", "precipitation", "collection"} {
		if !strings.Contains(strings.ToLower(vtt), w) {
			t.Errorf("transcript never says %q, which the video shows", w)
		}
	}
	cue := regexp.MustCompile(`(?m)^\d\d:\d\d\.\d{3} --> \d\d:\d\d\.\d{3}$`)
	if n := len(cue.FindAllString(vtt, -1)); n != 4 {
		t.Errorf("transcript has %d cues, want 4 (one per stage)", n)
	}
}

func TestFactSheetPDF(t *testing.T) {
	dir, _ := writeSample(t)
	pdf := readPackFile(t, dir, pathFactSheet)
	checkPDF(t, pdf)
	for _, w := range []string{"(The Water Cycle)", "/BaseFont /Helvetica ", "Evaporation", "Precipitation", "page 1 of 1"} {
		if !bytes.Contains(pdf, []byte(w)) {
			t.Errorf("PDF lacks %q", w)
		}
	}
}

func TestPDFBreaksPages(t *testing.T) {
	var blocks []pdfBlock
	for range 3 {
		blocks = append(blocks, factSheetBlocks...)
	}
	pdf := renderPDF("Long", "Footer", blocks)
	checkPDF(t, pdf)
	n := regexp.MustCompile(`/Count (\d+)`).FindSubmatch(pdf)
	if n == nil {
		t.Fatal("no page count")
	}
	pages, _ := strconv.Atoi(string(n[1]))
	if pages < 2 {
		t.Fatalf("three fact sheets fit on %d page", pages)
	}
	for i := 1; i <= pages; i++ {
		if footer := "(Footer - page " + strconv.Itoa(i) + " of " + strconv.Itoa(pages) + ")"; !bytes.Contains(pdf, []byte(footer)) {
			t.Errorf("PDF lacks footer %s", footer)
		}
	}
	// No text may be set below the footer margin.
	for _, m := range regexp.MustCompile(`1 0 0 1 \d+ (\d+) Tm`).FindAllSubmatch(pdf, -1) {
		if y, _ := strconv.Atoi(string(m[1])); y < marginFoot && y != footerLine {
			t.Errorf("a line sits at y=%d, inside the bottom margin", y)
		}
	}
}

// checkPDF checks the structure viewers rely on: the header, an xref table
// whose every offset points at its object, and stream lengths.
func checkPDF(t *testing.T, pdf []byte) {
	t.Helper()
	if !bytes.HasPrefix(pdf, []byte("%PDF-1.4\n")) {
		t.Fatalf("PDF starts with %q", pdf[:min(len(pdf), 9)])
	}
	if !bytes.HasSuffix(pdf, []byte("%%EOF\n")) {
		t.Errorf("PDF does not end with %%%%EOF")
	}

	m := regexp.MustCompile(`startxref\n(\d+)\n%%EOF\n$`).FindSubmatch(pdf)
	if m == nil {
		t.Fatal("no startxref at the end of the PDF")
	}
	xref, _ := strconv.Atoi(string(m[1]))
	if xref >= len(pdf) || !bytes.HasPrefix(pdf[xref:], []byte("xref\n")) {
		t.Fatalf("startxref %d does not point at the xref table", xref)
	}
	rest := pdf[xref+len("xref\n"):]
	head, _, _ := bytes.Cut(rest, []byte("\n"))
	parts := strings.Fields(string(head))
	if len(parts) != 2 {
		t.Fatalf("xref subsection header %q", head)
	}
	first, _ := strconv.Atoi(parts[0])
	count, _ := strconv.Atoi(parts[1])
	if first != 0 || count < 2 {
		t.Fatalf("xref subsection %d %d, want 0 and at least one object", first, count)
	}
	entries := rest[len(head)+1:]
	if len(entries) < 20*count {
		t.Fatalf("xref table truncated")
	}
	for n := range count {
		e := string(entries[20*n : 20*n+20])
		if n == 0 {
			if e != "0000000000 65535 f \n" {
				t.Errorf("xref entry 0 = %q, want the free-list head", e)
			}
			continue
		}
		if len(e) != 20 || e[10] != ' ' || e[16] != ' ' || e[17] != 'n' || e[18:] != " \n" {
			t.Errorf("xref entry %d = %q is not a 20-byte in-use entry", n, e)
			continue
		}
		off, err := strconv.Atoi(e[:10])
		if err != nil {
			t.Errorf("xref entry %d: %v", n, err)
			continue
		}
		want := strconv.Itoa(n) + " 0 obj\n"
		if off >= len(pdf) || !bytes.HasPrefix(pdf[off:], []byte(want)) {
			t.Errorf("xref entry %d points at offset %d, which holds %q, not %q", n, off, pdf[off:min(len(pdf), off+len(want))], want)
		}
	}
	if !bytes.HasPrefix(entries[20*count:], []byte("trailer\n<< /Size "+strconv.Itoa(count)+" ")) {
		t.Errorf("trailer /Size does not match the %d xref entries", count)
	}

	// Each content stream's /Length must match its data, or viewers fall
	// back to repairing the file.
	streams := regexp.MustCompile(`<< /Length (\d+) >>\nstream\n`).FindAllSubmatchIndex(pdf, -1)
	if len(streams) == 0 {
		t.Fatal("no content streams")
	}
	for _, s := range streams {
		n, _ := strconv.Atoi(string(pdf[s[2]:s[3]]))
		if end := s[1] + n; end+len("\nendstream") > len(pdf) || !bytes.HasPrefix(pdf[end:], []byte("\nendstream")) {
			t.Errorf("stream at %d: /Length %d does not end at endstream", s[0], n)
		}
	}
}

func TestWrapKeepsLinesInsideMargins(t *testing.T) {
	for _, bl := range factSheetBlocks {
		for _, ln := range wrap(bl.text, bl.style, textWidth) {
			if w := textWidthMilli(ln, bl.style.font) * bl.style.size / 1000; w > textWidth && strings.Contains(ln, " ") {
				t.Errorf("line %q is %d pt wide, more than %d", ln, w, textWidth)
			}
		}
	}
	if got := pdfString(`a(b)c\d é`); got != `(a\(b\)c\\d ??)` {
		t.Errorf("pdfString = %s", got)
	}
}

func TestRaindropWAV(t *testing.T) {
	dir, _ := writeSample(t)
	wav := readPackFile(t, dir, pathAudio)
	if len(wav) < 44 {
		t.Fatalf("WAV is %d bytes, shorter than its header", len(wav))
	}
	le := binary.LittleEndian
	u16 := func(off int) int { return int(le.Uint16(wav[off:])) }
	u32 := func(off int) int { return int(le.Uint32(wav[off:])) }
	checks := []struct {
		name      string
		got, want any
	}{
		{"RIFF tag", string(wav[0:4]), "RIFF"},
		{"RIFF size", u32(4), len(wav) - 8},
		{"WAVE tag", string(wav[8:12]), "WAVE"},
		{"fmt tag", string(wav[12:16]), "fmt "},
		{"fmt size", u32(16), 16},
		{"format (PCM)", u16(20), 1},
		{"channels", u16(22), 1},
		{"sample rate", u32(24), wavRate},
		{"byte rate", u32(28), wavRate * 2},
		{"block align", u16(32), 2},
		{"bits per sample", u16(34), 16},
		{"data tag", string(wav[36:40]), "data"},
		{"data size", u32(40), len(wav) - 44},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("WAV %s = %v, want %v", c.name, c.got, c.want)
		}
	}
	seconds := float64(len(wav)-44) / (wavRate * 2)
	if seconds < 2 || seconds > 10 {
		t.Errorf("WAV lasts %.1f s, want a few seconds", seconds)
	}
	// The tone must be audible and must not clip.
	peak := 0
	for off := 44; off+1 < len(wav); off += 2 {
		s := int(int16(le.Uint16(wav[off:])))
		peak = max(peak, s, -s)
	}
	if peak < 3000 || peak >= 32767 {
		t.Errorf("WAV peak amplitude %d, want audible and unclipped", peak)
	}
}

func TestQuizZip(t *testing.T) {
	dir, m := writeSample(t)
	data := readPackFile(t, dir, pathQuiz)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("open quiz zip: %v", err)
	}
	files := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("open %s in quiz zip: %v", f.Name, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s in quiz zip: %v", f.Name, err)
		}
		files[f.Name] = string(b)
	}
	for _, name := range quizFiles {
		if _, ok := files[name]; !ok {
			t.Errorf("quiz zip lacks %s", name)
		}
	}
	for name, body := range files {
		// The box is offline: any absolute URL is a request that fails.
		for _, scheme := range []string{"http://", "https://", "//cdn", "@import url("} {
			if strings.Contains(strings.ToLower(body), scheme) {
				t.Errorf("%s references %q; the quiz must make no external requests", name, scheme)
			}
		}
		if strings.Contains(body, "\r") {
			t.Errorf("%s has CR line endings", name)
		}
	}
	index := files["index.html"]
	for _, ref := range []string{`href="style.css"`, `src="app.js"`} {
		if !strings.Contains(index, ref) {
			t.Errorf("index.html lacks %s", ref)
		}
	}
	for _, it := range m.Items() {
		if it.Kind == pack.KindHTML5 {
			if _, ok := files[it.Entry]; !ok {
				t.Errorf("item %s entry %q is not in its zip", it.ID, it.Entry)
			}
		}
	}
}

func TestVideoAsset(t *testing.T) {
	if len(videoWebM) >= 1<<20 {
		t.Errorf("embedded video is %d bytes; keep it under 1 MB", len(videoWebM))
	}
	if !bytes.HasPrefix(videoWebM, []byte{0x1a, 0x45, 0xdf, 0xa3}) {
		t.Fatalf("embedded video does not start with the EBML magic")
	}
	if !bytes.Contains(videoWebM[:min(len(videoWebM), 64)], []byte("webm")) {
		t.Errorf("EBML DocType is not webm")
	}

	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Log("ffprobe not on PATH; skipping the stream and duration check")
		return
	}
	dir, _ := writeSample(t)
	out, err := exec.Command(ffprobe, "-v", "error",
		"-show_entries", "stream=codec_type,codec_name:format=duration",
		"-of", "default=noprint_wrappers=1",
		filepath.Join(dir, filepath.FromSlash(pathVideo))).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("ffprobe: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("ffprobe: %v", err)
	}
	probe := string(out)
	if !strings.Contains(probe, "codec_type=video") {
		t.Errorf("ffprobe finds no video stream:\n%s", probe)
	}
	for _, want := range []string{"codec_type=audio", "codec_name=vp9", "codec_name=opus"} {
		if !strings.Contains(probe, want) {
			t.Errorf("ffprobe output lacks %s:\n%s", want, probe)
		}
	}
	d := regexp.MustCompile(`(?m)^duration=([0-9.]+)$`).FindStringSubmatch(probe)
	if d == nil {
		t.Fatalf("ffprobe reports no duration:\n%s", probe)
	}
	if secs, _ := strconv.ParseFloat(d[1], 64); secs <= 5 {
		t.Errorf("video lasts %.2f s, want more than 5", secs)
	}
}

func TestWriteLarge(t *testing.T) {
	const n = 10000
	dir := filepath.Join(t.TempDir(), "large")
	m, err := WriteLarge(dir, "bench-10k", n)
	if err != nil {
		t.Fatalf("WriteLarge: %v", err)
	}
	data := readPackFile(t, dir, pack.ManifestName)
	parsed, err := pack.ParseManifest(data)
	if err != nil {
		t.Fatalf("ParseManifest: %v", err)
	}
	if !reflect.DeepEqual(m, parsed) {
		t.Errorf("WriteLarge returned a manifest that differs from the one on disk")
	}
	items := parsed.Items()
	if len(items) != n {
		t.Fatalf("%d items, want %d", len(items), n)
	}
	if len(parsed.Lessons) != n/largeLessonSize {
		t.Errorf("%d lessons, want %d", len(parsed.Lessons), n/largeLessonSize)
	}
	for _, l := range parsed.Lessons {
		if len(l.Items) != largeLessonSize {
			t.Errorf("lesson %s has %d items, want %d", l.ID, len(l.Items), largeLessonSize)
		}
	}
	contents := checkFiles(t, dir, parsed)

	kinds := itemsByKind(parsed)
	if len(kinds[pack.KindDocument]) == 0 || len(kinds[pack.KindHTML5]) == 0 {
		t.Errorf("kinds are not mixed: %d documents, %d html5", len(kinds[pack.KindDocument]), len(kinds[pack.KindHTML5]))
	}
	// Every made-up word must belong to one item only, or a benchmark's
	// search for it returns more than the item it expects.
	owner := map[string]string{}
	for _, it := range items {
		for _, w := range strings.Fields(it.Text) {
			if prev, ok := owner[w]; ok {
				t.Fatalf("word %q is in both %s and %s", w, prev, it.ID)
			}
			owner[w] = it.ID
		}
		body := contents[it.File]
		if it.Kind == pack.KindHTML5 {
			zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
			if err != nil {
				t.Fatalf("%s: %v", it.File, err)
			}
			if len(zr.File) != 1 || zr.File[0].Name != it.Entry {
				t.Fatalf("%s does not hold just its entry %s", it.File, it.Entry)
			}
			continue
		}
		if w := strings.Fields(it.Text)[0]; !bytes.Contains(body, []byte(w)) {
			t.Fatalf("%s does not contain its word %q", it.File, w)
		}
	}
}

func TestWriteLargeRejectsBadInput(t *testing.T) {
	if _, err := WriteLarge(t.TempDir(), "bench", 0); err == nil {
		t.Error("WriteLarge with 0 items succeeded")
	}
	dir := filepath.Join(t.TempDir(), "bad")
	_, err := WriteLarge(dir, "Not A Valid ID", 3)
	if !errors.Is(err, pack.ErrInvalid) {
		t.Errorf("WriteLarge with a bad id: err = %v, want pack.ErrInvalid", err)
	}
	if _, statErr := os.Stat(dir); !errors.Is(statErr, fs.ErrNotExist) {
		t.Errorf("WriteLarge wrote %s despite an invalid manifest", dir)
	}
}

func TestFakeWordsAreDistinct(t *testing.T) {
	seen := map[string]uint64{}
	for _, n := range append(rangeN(40000), 1<<20, 1<<40, 1<<63) {
		w := fakeWord(n)
		if prev, ok := seen[w]; ok {
			t.Fatalf("fakeWord(%d) = fakeWord(%d) = %q", n, prev, w)
		}
		seen[w] = n
	}
}

func rangeN(n uint64) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i)
	}
	return out
}

func TestWritePages(t *testing.T) {
	const n = 250
	dir := filepath.Join(t.TempDir(), "pages")
	m, err := WritePages(dir, "bench-pages", n)
	if err != nil {
		t.Fatalf("WritePages: %v", err)
	}
	parsed, err := pack.ParseManifest(readPackFile(t, dir, pack.ManifestName))
	if err != nil {
		t.Fatalf("ParseManifest: %v", err)
	}
	if !reflect.DeepEqual(m, parsed) {
		t.Errorf("WritePages returned a manifest that differs from the one on disk")
	}
	items := parsed.Items()
	if len(items) != n {
		t.Fatalf("%d items, want %d", len(items), n)
	}
	contents := checkFiles(t, dir, parsed)
	for i, it := range items {
		if it.ID != PageItemID(i) || it.File != PagePath(i) || it.Kind != pack.KindDocument {
			t.Fatalf("item %d = %+v, want id %s file %s", i, it, PageItemID(i), PagePath(i))
		}
		body := contents[it.File]
		for _, w := range itemWords(i) {
			if !bytes.Contains(body, []byte(w)) {
				t.Fatalf("%s lacks its word %q", it.File, w)
			}
		}
		// Links between neighbours resolve to the neighbours' files, so a
		// reader of the bare folder (or of a ZIM made from it) can browse.
		if i+1 < n {
			next := regexp.MustCompile(`rel="next" href="([^"]+)"`).FindSubmatch(body)
			if next == nil || path.Join(path.Dir(it.File), string(next[1])) != PagePath(i+1) {
				t.Fatalf("%s: next link %q does not lead to %s", it.File, next, PagePath(i+1))
			}
		}
	}
}
