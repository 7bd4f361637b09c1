package main

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"html"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"outpost/content/samplecourse"
)

// zimSource lays out, for zimwriterfs, the same HTML pages a pagespack
// holds: the pages folder hard-linked (copied if links fail), a welcome
// page listing the first 200 pages as the portal's course page does, and
// the 48x48 PNG illustration zimwriterfs requires.
func zimSource(packDir, out string, n int) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("zimsrc: %w", err)
	}
	src := filepath.Join(packDir, "pages")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(packDir, p)
		dst := filepath.Join(out, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if os.Link(p, dst) == nil {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		return fmt.Errorf("zimsrc: %w", err)
	}
	var idx strings.Builder
	idx.WriteString("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Benchmark pages</title></head><body><h1>Benchmark pages</h1><ol>\n")
	for i := range min(n, 200) {
		fmt.Fprintf(&idx, "<li><a href=\"%s\">Page %d</a></li>\n", html.EscapeString(samplecourse.PagePath(i)), i+1)
	}
	idx.WriteString("</ol></body></html>\n")
	if err := os.WriteFile(filepath.Join(out, "index.html"), []byte(idx.String()), 0o644); err != nil {
		return fmt.Errorf("zimsrc: %w", err)
	}
	return os.WriteFile(filepath.Join(out, "illustration.png"), solidPNG(48, 48), 0o644)
}

// solidPNG is a one-colour RGB PNG.
func solidPNG(w, h int) []byte {
	chunk := func(b *bytes.Buffer, typ string, data []byte) {
		binary.Write(b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		binary.Write(b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	var raw bytes.Buffer
	for range h {
		raw.WriteByte(0)
		for range w {
			raw.Write([]byte{0x30, 0x80, 0xc0})
		}
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw.Bytes())
	zw.Close()
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, 2
	chunk(&b, "IHDR", ihdr)
	chunk(&b, "IDAT", z.Bytes())
	chunk(&b, "IEND", nil)
	return b.Bytes()
}

// scaleURLs writes the page paths both servers are asked for, as six
// files in dir: the same sample of item pages (fixed seed) for outpost
// (/c/COURSE/i/ITEM) and for kiwix-serve (/BOOK/PATH, the article); course
// pages: every page of the portal's paged course listing, against
// kiwix-serve's welcome page (the ZIM's listing of the first 200 pages);
// and first views: every item page in course order, which pageload's
// clients walk from evenly spaced starts, so that in a large course each
// page they ask for is one no client asked for before (nothing either
// server kept from an earlier view helps, except what lies next to it).
func scaleURLs(dir, course, book string, n, sample int) error {
	rng := rand.New(rand.NewPCG(7, uint64(n)))
	var oi, ki, oc, kc, of, kf strings.Builder
	for i := range n {
		fmt.Fprintf(&of, "/c/%s/i/%s\n", course, samplecourse.PageItemID(i))
		fmt.Fprintf(&kf, "/%s/%s\n", book, samplecourse.PagePath(i))
	}
	for range sample {
		i := rng.IntN(n)
		fmt.Fprintf(&oi, "/c/%s/i/%s\n", course, samplecourse.PageItemID(i))
		fmt.Fprintf(&ki, "/%s/%s\n", book, samplecourse.PagePath(i))
	}
	pages := (n + 199) / 200
	for i := range sample {
		p := rng.IntN(pages) + 1
		if i == 0 {
			p = 1
		}
		fmt.Fprintf(&oc, "/c/%s?page=%d\n", course, p)
		fmt.Fprintf(&kc, "/%s/index.html\n", book)
	}
	for name, s := range map[string]string{"outpost-item": oi.String(), "kiwix-item": ki.String(), "outpost-course": oc.String(), "kiwix-course": kc.String(),
		"outpost-first": of.String(), "kiwix-first": kf.String()} {
		if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(s), 0o644); err != nil {
			return fmt.Errorf("scaleurls: %w", err)
		}
	}
	return nil
}

// pageLoad asks one server for pages as fast as it answers, from clients
// keep-alive connections, cycling through the paths in urlFile (each
// client from its own offset) for d, and prints "key value" lines. A page
// counts only if it answered 200 with its whole body; requests still in
// flight at the end are finished and counted if they began in time. With
// -gzip it asks for pages as browsers do ("Accept-Encoding: gzip, deflate,
// br", and an Accept-Language) and counts the bytes as they came,
// compressed or not; without, it asks for no compression. Bytes are the body's; header bytes are counted
// apart (each header line as HTTP/1.1 sends it), since both servers send
// different headers.
func pageLoad(args []string) error {
	fs := flag.NewFlagSet("pageload", flag.ContinueOnError)
	base := fs.String("base", "", "server base URL, e.g. http://127.0.0.1:8080")
	file := fs.String("urls", "", "file of paths, one a line")
	clients := fs.Int("clients", 8, "concurrent keep-alive clients")
	d := fs.Duration("duration", 10*time.Second, "how long to load the server")
	gz := fs.Bool("gzip", false, "accept compressed pages, as browsers do")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raw, err := os.ReadFile(*file)
	if err != nil {
		return fmt.Errorf("pageload: %w", err)
	}
	paths := strings.Fields(string(raw))
	if *base == "" || len(paths) == 0 || *clients < 1 {
		return errors.New("pageload: need -base, -urls with paths, -clients >= 1")
	}
	type tally struct {
		lat     []time.Duration
		bytes   int64
		headers int64
		gzipped int64
		errs    int64
		first   error
	}
	tallies := make([]*tally, *clients)
	start := time.Now()
	end := start.Add(*d)
	var wg sync.WaitGroup
	for c := range tallies {
		t := &tally{}
		tallies[c] = t
		hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
		wg.Go(func() {
			defer hc.CloseIdleConnections()
			for i := c * len(paths) / len(tallies); time.Now().Before(end); i++ {
				began := time.Now()
				f, err := fetchPage(hc, *base+paths[i%len(paths)], *gz)
				if err != nil {
					t.errs++
					if t.first == nil {
						t.first = err
					}
					continue
				}
				t.lat = append(t.lat, time.Since(began))
				t.bytes += f.body
				t.headers += f.headers
				if f.gzipped {
					t.gzipped++
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var lat []time.Duration
	var bytes, headers, gzipped, errs int64
	var first error
	for _, t := range tallies {
		lat = append(lat, t.lat...)
		bytes += t.bytes
		headers += t.headers
		gzipped += t.gzipped
		errs += t.errs
		if first == nil {
			first = t.first
		}
	}
	if len(lat) == 0 {
		return fmt.Errorf("pageload: no page answered; first error: %v", first)
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	fmt.Printf("pages %d\nseconds %.2f\npages_per_s %.1f\np50_ms %.2f\np95_ms %.2f\np99_ms %.2f\nerrors %d\nbytes_per_page %d\nheader_bytes_per_page %d\ngzipped_pages %d\nclients %d\n",
		len(lat), elapsed.Seconds(), float64(len(lat))/elapsed.Seconds(), q(0.5), q(0.95), q(0.99), errs, bytes/int64(len(lat)), headers/int64(len(lat)), gzipped, *clients)
	if first != nil {
		fmt.Printf("first_error %q\n", first.Error())
	}
	return nil
}

type fetched struct {
	body, headers int64
	gzipped       bool
}

// fetchPage gets one page. The transport never decompresses (it was told
// not to ask), so what is counted is what came over the connection.
func fetchPage(hc *http.Client, url string, gz bool) (fetched, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return fetched{}, err
	}
	if gz {
		req.Header.Set("Accept-Encoding", "gzip, deflate, br")
		req.Header.Set("Accept-Language", "en-US,en;q=0.9")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fetched{}, err
	}
	defer resp.Body.Close()
	f := fetched{gzipped: resp.Header.Get("Content-Encoding") == "gzip"}
	// "HTTP/1.1 200 OK\r\n", each "Key: value\r\n", the blank line.
	f.headers = int64(len(resp.Proto) + 1 + len(resp.Status) + 2 + 2)
	for k, vs := range resp.Header {
		for _, v := range vs {
			f.headers += int64(len(k) + 2 + len(v) + 2)
		}
	}
	f.body, err = io.Copy(io.Discard, resp.Body)
	if err != nil {
		return f, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return f, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return f, nil
}

// peakRSS runs a command and prints its peak resident memory (the
// kernel's ru_maxrss for it) and wall time; the command's own output goes
// to stderr so the figures are all stdout holds.
func peakRSS(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: benchtool peakrss CMD [ARGS...]")
	}
	cmd := exec.CommandContext(context.Background(), args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	t0 := time.Now()
	err := cmd.Run()
	took := time.Since(t0)
	if err != nil {
		return fmt.Errorf("peakrss: %s: %w", strings.Join(args, " "), err)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return errors.New("peakrss: no resource usage on this system")
	}
	fmt.Printf("peak_rss_kib %d\nseconds %s\n", ru.Maxrss, strconv.FormatFloat(took.Seconds(), 'f', 2, 64))
	return nil
}
