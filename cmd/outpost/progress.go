package main

import (
	"io"
	"os"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
)

// bar shows bytes, rate and ETA on stderr for long work, and stays silent
// when stderr is not a terminal (CI logs, scripts), where a bar is noise.
type bar struct {
	w     io.Writer
	label string
	pb    *progressbar.ProgressBar
}

func newBar(w io.Writer, label string) *bar { return &bar{w: w, label: label} }

func (b *bar) Total(n int64) {
	if f, ok := b.w.(*os.File); !ok || !isatty.IsTerminal(f.Fd()) {
		return
	}
	b.pb = progressbar.NewOptions64(n,
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(b.label),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100_000_000), // 100 ms: repainting is not free on a Pi's serial console
		progressbar.OptionOnCompletion(func() { io.WriteString(b.w, "\n") }),
	)
}

func (b *bar) Add(n int64) {
	if b.pb != nil {
		b.pb.Add64(n)
	}
}

func (b *bar) finish() {
	if b.pb != nil {
		b.pb.Finish()
	}
}
