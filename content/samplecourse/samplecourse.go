// Package samplecourse writes the course pack that `outpost demo` imports: a
// small but real course with a playable video, audio, a PDF and an HTML5
// activity, so a teacher can try every player on a fresh box with no
// internet.
package samplecourse

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"outpost/content/pack"
)

// ID is the demo course's id.
const ID = "sample-water-cycle"

// Version is the demo course's version. Bump it whenever any byte Write
// produces changes: a box that already imported the course only notices new
// content through a new version, and two boxes syncing the same version must
// agree on every hash. TestGoldenDigest fails until you do.
const Version = 1

// The video is the one file we cannot make at run time (encoding VP9 needs
// ffmpeg), so it was rendered once and committed. It was made with Debian 12's
// ffmpeg 5.1 by this command (assets/README.md explains it):
//
//	F=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
//	T="fontfile=$F:fontcolor=white:borderw=2:bordercolor=0x00000080:x=(w-text_w)/2"
//	ffmpeg -y -hide_banner -loglevel error \
//	  -f lavfi -i "gradients=s=320x180:r=24:n=3:c0=0x0b3d91:c1=0x3fa9f5:c2=0x9be7ff:speed=0.03:seed=7:d=12" \
//	  -f lavfi -i "aevalsrc=0.15*sin(2*PI*(262+68*floor(t/3))*t)*(1-exp(-8*mod(t\,3))):s=48000:d=12" \
//	  -vf "drawtext=$T:text='The Water Cycle':fontsize=22:y=12:enable='gte(t,0)*lt(t,12)',\
//	drawtext=$T:text='Evaporation':fontsize=30:y=70:enable='gte(t,0)*lt(t,3)',\
//	drawtext=$T:text='The sun warms the water':fontsize=14:y=112:enable='gte(t,0)*lt(t,3)',\
//	drawtext=$T:text='Condensation':fontsize=30:y=70:enable='gte(t,3)*lt(t,6)',\
//	drawtext=$T:text='Vapour cools into clouds':fontsize=14:y=112:enable='gte(t,3)*lt(t,6)',\
//	drawtext=$T:text='Precipitation':fontsize=30:y=70:enable='gte(t,6)*lt(t,9)',\
//	drawtext=$T:text='Rain and snow fall down':fontsize=14:y=112:enable='gte(t,6)*lt(t,9)',\
//	drawtext=$T:text='Collection':fontsize=30:y=70:enable='gte(t,9)*lt(t,12)',\
//	drawtext=$T:text='Water gathers in rivers and seas':fontsize=14:y=112:enable='gte(t,9)*lt(t,12)'" \
//	  -c:v libvpx-vp9 -b:v 0 -crf 42 -deadline good -cpu-used 2 -row-mt 1 -g 48 -pix_fmt yuv420p \
//	  -c:a libopus -b:a 24k -ac 1 \
//	  -map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
//	  water-cycle.webm
//
//go:embed assets/water-cycle.webm
var videoWebM []byte

// The quiz is kept as real files rather than Go strings so it can be edited
// and tried in a browser as it is.
//
//go:embed quiz/index.html quiz/style.css quiz/app.js
var quizFS embed.FS

// quizFiles fixes the order of the zip's entries, which embed.FS would
// otherwise leave to its own sorting.
var quizFiles = []string{"index.html", "style.css", "app.js"}

// Pack paths of the demo course.
const (
	pathVideo      = "media/water-cycle.webm"
	pathTranscript = "media/water-cycle.vtt"
	pathAudio      = "media/raindrop-melody.wav"
	pathReading    = "docs/water-cycle-reading.txt"
	pathFactSheet  = "docs/water-cycle-fact-sheet.pdf"
	pathQuiz       = "activities/water-cycle-quiz.zip"
)

// Write creates a complete, valid pack folder in dir (created if missing) and
// returns its manifest. Deterministic: the same build writes byte-identical
// files. Files already in dir that the pack does not list are left alone.
func Write(dir string) (*pack.Manifest, error) {
	b := newBuilder(&pack.Manifest{
		Format:      pack.FormatVersion,
		ID:          ID,
		Version:     Version,
		Title:       "The Water Cycle",
		Description: "Where rain comes from and where it goes: a short science course with a video, a melody, a reading, a fact sheet and a quiz. Outpost includes it so you can try every player before importing your own courses.",
		Language:    "en",
		Subjects:    []string{"science"},
		Grades:      []string{"4", "5"},
		// The portal can tell the demo course apart from real ones, e.g. to
		// offer removing it once real courses arrive.
		Extra: map[string]string{"demo": "true"},
	})

	quiz, err := quizZip()
	if err != nil {
		return nil, fmt.Errorf("build sample quiz: %w", err)
	}
	b.add(pathVideo, videoWebM)
	b.add(pathTranscript, []byte(transcriptVTT))
	b.add(pathAudio, raindropMelodyWAV())
	b.add(pathReading, []byte(readingText))
	b.add(pathFactSheet, factSheetPDF())
	b.add(pathQuiz, quiz)

	b.m.Lessons = []pack.Lesson{
		{
			ID:    "what-is-the-water-cycle",
			Title: "What is the water cycle?",
			Items: []pack.Item{
				{
					ID:       "water-cycle-video",
					Kind:     pack.KindVideo,
					Title:    "The water cycle in four steps",
					File:     pathVideo,
					Type:     "video/webm",
					Text:     "A short video showing evaporation, condensation, precipitation and collection.",
					TextFile: pathTranscript,
				},
				{
					ID:    "water-cycle-reading",
					Kind:  pack.KindDocument,
					Title: "Reading: the journey of a raindrop",
					File:  pathReading,
					Type:  "text/plain; charset=utf-8",
					// No text_file: the library indexes .txt documents
					// themselves, and naming it again would count every
					// word twice.
				},
				{
					ID:    "water-cycle-fact-sheet",
					Kind:  pack.KindPDF,
					Title: "Fact sheet: the water cycle",
					File:  pathFactSheet,
					Text:  factSheetSummary,
				},
			},
		},
		{
			ID:    "listen-and-review",
			Title: "Listen and review",
			Items: []pack.Item{
				{
					ID:    "raindrop-melody",
					Kind:  pack.KindAudio,
					Title: "Raindrop melody",
					File:  pathAudio,
					Type:  "audio/wav",
					Text:  "A short melody of falling notes, like raindrops. Listen and imagine precipitation falling from a cloud.",
				},
				{
					ID:    "water-cycle-quiz",
					Kind:  pack.KindHTML5,
					Title: "Quiz: test your water cycle knowledge",
					File:  pathQuiz,
					Entry: "index.html",
					Text:  "Five questions about evaporation, condensation, precipitation, collection and transpiration.",
				},
			},
		},
	}
	if err := b.write(dir); err != nil {
		return nil, fmt.Errorf("write sample course: %w", err)
	}
	return b.m, nil
}

// builder gathers a pack in memory so the manifest can be validated before
// anything touches the disk.
type builder struct {
	m     *pack.Manifest
	paths []string
	data  map[string][]byte
}

func newBuilder(m *pack.Manifest) *builder {
	m.Files = map[string]pack.File{}
	return &builder{m: m, data: map[string][]byte{}}
}

func (b *builder) add(p string, data []byte) {
	sum := sha256.Sum256(data)
	b.m.Files[p] = pack.File{SHA256: pack.HashBytes(sum[:]), Size: int64(len(data))}
	if _, dup := b.data[p]; !dup {
		b.paths = append(b.paths, p)
	}
	b.data[p] = data
}

// write puts the manifest down last: a pack interrupted half-way then has no
// manifest, so nothing mistakes it for a complete one.
func (b *builder) write(dir string) error {
	if err := b.m.Validate(); err != nil {
		return fmt.Errorf("validate manifest: %w", err)
	}
	manifest, err := b.m.Marshal()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create pack folder: %w", err)
	}
	// A manifest left over from an earlier run would describe the old files
	// while the new ones are being written.
	if err := os.Remove(filepath.Join(dir, pack.ManifestName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove old manifest: %w", err)
	}
	made := map[string]bool{}
	for _, p := range b.paths {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if parent := filepath.Dir(full); !made[parent] {
			if err := os.MkdirAll(parent, 0o755); err != nil {
				return fmt.Errorf("create folder for %s: %w", p, err)
			}
			made[parent] = true
		}
		if err := os.WriteFile(full, b.data[p], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, pack.ManifestName), manifest, 0o644); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

// quizZip stores rather than deflates: the quiz is a few kilobytes, and
// stored entries do not depend on the compressor of the Go release that
// built the binary, so every build yields the same hash for this version.
func quizZip() ([]byte, error) {
	var entries []zipEntry
	for _, name := range quizFiles {
		data, err := quizFS.ReadFile("quiz/" + name)
		if err != nil {
			return nil, fmt.Errorf("read quiz %s: %w", name, err)
		}
		// Undo a CRLF checkout so the zip's bytes do not depend on git
		// settings.
		entries = append(entries, zipEntry{name, bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))})
	}
	return storedZip(entries)
}
