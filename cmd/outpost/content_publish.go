package main

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/klauspost/compress/zstd"
	"github.com/spf13/cobra"

	"outpost/content/pack"
	"outpost/sync/hub"
	"outpost/sync/wire"
)

// Upload tuning. Variables so tests can use small parts.
var (
	publishPartSize     int64 = 8 << 20
	publishRetries            = 10
	publishFirstBackoff       = 250 * time.Millisecond
	publishMaxBackoff         = 10 * time.Second
)

func newContentPublishCmd(g *globals) *cobra.Command {
	var hf hubFlags
	var channel string
	var compress, asJSON bool
	cmd := &cobra.Command{
		Use:   "publish PACK --channel NAME",
		Short: "Upload a course pack to the hub and offer it to a channel's boxes",
		Long: `Upload a course pack (a folder, .zip, .tar or .tar.zst) to the hub and
publish it on a channel: every box enrolled for that channel gets it on its
next sync.

A folder is first archived to a temporary .tar.zst (or .tar with
--compress=false) in $TMPDIR. The upload is named by the pack's SHA-256 and
sent in parts, each retried after a cut; run the same command again after
an interruption and it resumes where the hub's copy ends.`,
		Example: `  outpost content publish --data /var/lib/outpost-hub --channel science ./water-cycle
  outpost content publish --hub https://hub.example.org:8443 --admin-token T --hub-id ID --channel health malaria.tar.zst`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(channel) == "" {
				return errors.New("publish needs a channel: pass --channel NAME (boxes enrolled for it receive the course)")
			}
			c, err := g.hubClient(&hf)
			if err != nil {
				return err
			}
			p := &publisher{g: g, c: c}
			res, err := p.publish(cmd.Context(), args[0], strings.TrimSpace(channel), compress)
			if err != nil {
				return err
			}
			if asJSON {
				return g.printJSON(res)
			}
			sizes := fmt.Sprintf("%s, %s", nounCount(res.Files, "file"), humanize.IBytes(uint64(res.Bytes)))
			if res.AlreadyImported {
				fmt.Fprintf(g.stdout, "%s version %d %q was already published; channel %s offers it: %s, nothing new stored\n",
					terminalSafe(res.Course), res.Version, res.Title, terminalSafe(res.Channel), sizes)
				return nil
			}
			fmt.Fprintf(g.stdout, "published %s version %d %q to channel %s: %s, %s new stored on the hub\n",
				terminalSafe(res.Course), res.Version, res.Title, terminalSafe(res.Channel), sizes, humanize.IBytes(uint64(res.NewBytes)))
			return nil
		},
	}
	addHubFlags(cmd, &hf)
	cmd.Flags().StringVar(&channel, "channel", "", "the channel to publish on (boxes enrolled for it receive the course)")
	cmd.Flags().BoolVar(&compress, "compress", true, "archive a folder as .tar.zst (false: plain .tar)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the hub's publish result as JSON")
	return cmd
}

func nounCount(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

type publisher struct {
	g   *globals
	c   *hubClient
	bar *bar // the bar on screen, if any
}

func (p *publisher) note(format string, args ...any) {
	if p.bar != nil && p.bar.pb != nil {
		fmt.Fprintln(p.g.stderr)
	}
	fmt.Fprintf(p.g.stderr, format+"\n", args...)
}

func (p *publisher) publish(ctx context.Context, path, channel string, compress bool) (*hub.PublishResult, error) {
	// Refuse a broken manifest here rather than after uploading gigabytes.
	if err := checkPackManifest(ctx, path); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	archive := path
	if fi.IsDir() {
		ext := ".tar"
		if compress {
			ext = ".tar.zst"
		}
		tmp, err := os.CreateTemp("", "outpost-publish-*"+ext)
		if err != nil {
			return nil, fmt.Errorf("publish: archive the folder: %w", err)
		}
		defer os.Remove(tmp.Name())
		p.bar = newBar(p.g.stderr, "archiving")
		err = archivePackDir(ctx, path, tmp, compress, p.bar)
		p.bar.finish()
		p.bar = nil
		if cerr := tmp.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("publish: archive the folder: %w", cerr)
		}
		if err != nil {
			return nil, err
		}
		archive = tmp.Name()
	}
	f, err := os.Open(archive)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	defer f.Close()
	p.bar = newBar(p.g.stderr, "hashing")
	sum, size, err := hashReader(ctx, f, p.bar)
	p.bar.finish()
	p.bar = nil
	if err != nil {
		return nil, fmt.Errorf("publish: read %s: %w", archive, err)
	}
	if size > hub.MaxPackBytes {
		return nil, fmt.Errorf("publish: the pack is %s; the hub takes at most %s per pack: split the course", humanize.IBytes(uint64(size)), humanize.IBytes(hub.MaxPackBytes))
	}
	for attempt := 0; ; attempt++ {
		if err := p.upload(ctx, f, sum, size); err != nil {
			return nil, err
		}
		var res hub.PublishResult
		err := p.c.postJSON(ctx, "/admin/v1/uploads/"+sum+"/publish?channel="+url.QueryEscape(channel), nil, &res)
		var ae *hubAPIError
		// 409: the hub's copy did not hash to the name and it dropped it;
		// 404: it has no copy (another publish of the same pack took it).
		// Either way, one more upload from scratch may do.
		if attempt == 0 && errors.As(err, &ae) && (ae.Status == http.StatusConflict || ae.Status == http.StatusNotFound) {
			p.note("%s; uploading again", ae.Msg)
			continue
		}
		if err != nil && !errors.As(err, &ae) && ctx.Err() == nil {
			return nil, fmt.Errorf("publish: %w (the hub may still be importing the pack: run the same command again, and it says \"already published\" once it has)", err)
		}
		if err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
		return &res, nil
	}
}

// upload sends the bytes of f the hub does not hold yet, in parts, and
// retries failed parts from wherever the hub's copy ends.
func (p *publisher) upload(ctx context.Context, f *os.File, sum string, size int64) error {
	path := "/admin/v1/uploads/" + sum
	var st hub.UploadStatus
	if err := p.c.getJSON(ctx, path, &st); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	off := st.Offset
	switch {
	case off >= size:
		p.note("the hub already holds all %d bytes of this pack", size)
		return nil
	case off > 0:
		p.note("resuming at %d bytes of %d: the hub already holds the start of this pack", off, size)
	}
	p.bar = newBar(p.g.stderr, "uploading")
	defer p.bar.finish()
	p.bar.Total(size)
	p.bar.Add(off)
	known := true // off is what the hub last said it holds
	failures := 0
	delay := publishFirstBackoff
	for {
		var err error
		if !known {
			var st hub.UploadStatus
			if err = p.c.getJSON(ctx, path, &st); err == nil {
				off, known = st.Offset, true
			}
		}
		if known {
			if off >= size {
				return nil
			}
			n := min(publishPartSize, size-off)
			body := &progressReader{r: io.NewSectionReader(f, off, n), b: p.bar}
			hdr := http.Header{}
			hdr.Set("Upload-Offset", strconv.FormatInt(off, 10))
			hdr.Set("Content-Type", "application/octet-stream")
			hdr.Set("Expect", "100-continue") // a refused part is not sent
			var st hub.UploadStatus
			if err = p.c.do(ctx, http.MethodPut, path, body, n, hdr, &st); err == nil {
				off = st.Offset
				failures, delay = 0, publishFirstBackoff
				continue
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("publish: upload stopped at %d of %d bytes; run the same command again to resume: %w", off, size, context.Cause(ctx))
		}
		if !retryableUpload(err) {
			return fmt.Errorf("publish: upload: %w", err)
		}
		var ae *hubAPIError
		if errors.As(err, &ae) && ae.Offset != nil {
			off = *ae.Offset
		} else {
			known = false // ask the hub where its copy ends before going on
		}
		failures++
		if failures > publishRetries {
			return fmt.Errorf("publish: upload: giving up after %d retries; run the command again to resume: %w", publishRetries, err)
		}
		if p.bar.pb != nil && known {
			p.bar.pb.Set64(off)
		}
		p.note("upload: %v; retrying in %s (%d of %d)", err, delay, failures, publishRetries)
		if err := sleepUnlessDone(ctx, delay); err != nil {
			return fmt.Errorf("publish: upload: %w", err)
		}
		delay = min(2*delay, publishMaxBackoff)
	}
}

// retryableUpload says whether a failed upload request is worth repeating:
// cuts, timeouts, the hub's 5xx and offset conflicts are; a refused token
// or the wrong hub are not.
func retryableUpload(err error) bool {
	var ae *hubAPIError
	if errors.As(err, &ae) {
		return ae.retryable()
	}
	return !errors.Is(err, wire.ErrWrongPeer) && !errors.Is(err, context.Canceled)
}

func sleepUnlessDone(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// checkPackManifest reads and validates the pack's manifest, as the hub
// will, so a broken pack is refused before the upload.
func checkPackManifest(ctx context.Context, path string) error {
	r, err := pack.Open(path)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer r.Close()
	raw, err := r.Manifest(ctx)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if _, err := pack.ParseManifest(raw); err != nil {
		return fmt.Errorf("publish %s: %w", path, err)
	}
	return nil
}

// hashReader returns the SHA-256 (hex) and length of r's bytes.
func hashReader(ctx context.Context, r io.ReadSeeker, b *bar) (string, int64, error) {
	end, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return "", 0, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return "", 0, err
	}
	b.Total(end)
	d := sha256.New()
	n, err := io.Copy(d, &progressReader{r: &cancelableReader{ctx: ctx, r: r}, b: b})
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(d.Sum(nil)), n, nil
}

// archivePackDir writes the pack folder dir to w as a tar (zstd-compressed
// if compress) that depends only on the files' names and bytes: entries
// sorted (manifest.json first, so readers find it at once), times, owners
// and modes zeroed. The same folder always gives the same archive, hence
// the same upload name, which is what lets a second run resume the first.
// Only regular files are archived; symlinks and special files are refused.
func archivePackDir(ctx context.Context, dir string, w io.Writer, compress bool, b *bar) error {
	root, err := filepath.EvalSymlinks(dir) // the folder itself may be a link
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	type entry struct {
		name, path string
		size       int64
	}
	var files []entry
	var total int64
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			return fmt.Errorf("publish: %s in the pack is a symbolic link (to %s); packs must contain the files themselves: replace the link with a copy of its target", name, target)
		case !t.IsRegular():
			return fmt.Errorf("publish: %s in the pack is not a regular file (%v); remove it", name, t)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, entry{name: name, path: p, size: fi.Size()})
		total += fi.Size()
		return nil
	})
	if err != nil {
		return fmt.Errorf("publish: archive %s: %w", dir, err)
	}
	sort.Slice(files, func(i, j int) bool {
		if mi, mj := files[i].name == pack.ManifestName, files[j].name == pack.ManifestName; mi != mj {
			return mi
		}
		return files[i].name < files[j].name
	})
	b.Total(total)

	bw := bufio.NewWriterSize(w, 1<<20)
	var out io.Writer = bw
	var zw *zstd.Encoder
	if compress {
		// One goroutine: the output then depends on the input alone.
		if zw, err = zstd.NewWriter(bw, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault)); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		out = zw
	}
	tw := tar.NewWriter(out)
	for _, e := range files {
		if err := addTarFile(ctx, tw, e.name, e.path, b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("publish: archive %s: %w", dir, err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return fmt.Errorf("publish: archive %s: %w", dir, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("publish: archive %s: %w", dir, err)
	}
	return nil
}

func addTarFile(ctx context.Context, tw *tar.Writer, name, path string, b *bar) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("publish: %s changed while it was being archived; try again", name)
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     fi.Size(),
		Mode:     0o644,
		ModTime:  time.Unix(0, 0),
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("publish: archive %s: %w", name, err)
	}
	n, err := io.CopyN(tw, &progressReader{r: &cancelableReader{ctx: ctx, r: f}, b: b}, fi.Size())
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("publish: %s shrank from %d to %d bytes while it was being archived; try again", name, fi.Size(), n)
	}
	if err != nil {
		return fmt.Errorf("publish: archive %s: %w", name, err)
	}
	return nil
}

// progressReader advances a progress bar as it is read.
type progressReader struct {
	r io.Reader
	b *bar
}

func (c *progressReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.b.Add(int64(n))
	return n, err
}

// cancelableReader stops a long copy when the command is interrupted.
type cancelableReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *cancelableReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
