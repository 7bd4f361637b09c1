// Command benchtool is scripts/bench.sh's helper: it writes the benchmark
// course packs and times the portal's cold start and memory, things a shell
// script cannot do precisely. It is not part of the appliance; run it with
// `go run ./scripts/benchtool` (or build it once, as bench.sh does).
//
//	benchtool mediapack DIR ID N SIZE   write a pack of N random "video" files;
//	                                    prints "PACKPATH ITEMID" per file
//	benchtool catalogpack DIR ID N      write samplecourse.WriteLarge's N-item pack
//	benchtool pagespack DIR ID N        write samplecourse.WritePages's N-page pack
//	benchtool zimsrc PACKDIR OUTDIR N   lay out a pagespack's pages for zimwriterfs
//	benchtool scaleurls DIR COURSE BOOK N SAMPLE
//	                                    write the page paths section e asks both
//	                                    servers for (same items, fixed seed)
//	benchtool pageload -base URL -urls FILE [-clients C] [-duration D] [-gzip]
//	                                    pages/s and latency of one server
//	benchtool peakrss CMD ARGS...       run CMD; print its peak RSS and wall time
//	benchtool freeport                  print a free loopback TCP port
//	benchtool fileserver DIR ADDR       serve DIR with a minimal http.ServeContent
//	                                    handler: the net/http floor under the portal
//	benchtool syncbench -work DIR [-scale F] [-shaped]
//	                                    bytes on the wire for course updates,
//	                                    Outpost sync vs rsync -az, and hub CPU
//	benchtool coldstart [flags]         time `outpost serve` to its first page and
//	                                    read its memory after page views; prints
//	                                    "key value" lines
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"outpost/appliance/loadgen"
	"outpost/content/samplecourse"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: benchtool mediapack|catalogpack|pagespack|zimsrc|scaleurls|pageload|peakrss|freeport|fileserver|syncbench|coldstart ARGS")
	}
	switch args[0] {
	case "mediapack":
		if len(args) != 5 {
			return errors.New("usage: benchtool mediapack DIR ID N SIZE")
		}
		n, err1 := strconv.Atoi(args[3])
		size, err2 := strconv.ParseInt(args[4], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("mediapack: %w", err)
		}
		files, err := loadgen.WriteMediaPack(args[1], args[2], n, size, 1)
		if err != nil {
			return err
		}
		for _, f := range files {
			fmt.Println(f.Path, f.ItemID)
		}
		return nil
	case "syncbench":
		return syncbench(args[1:])
	case "catalogpack":
		if len(args) != 4 {
			return errors.New("usage: benchtool catalogpack DIR ID N")
		}
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return fmt.Errorf("catalogpack: %w", err)
		}
		_, err = samplecourse.WriteLarge(args[1], args[2], n)
		return err
	case "pagespack":
		if len(args) != 4 {
			return errors.New("usage: benchtool pagespack DIR ID N")
		}
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return fmt.Errorf("pagespack: %w", err)
		}
		_, err = samplecourse.WritePages(args[1], args[2], n)
		return err
	case "zimsrc":
		if len(args) != 4 {
			return errors.New("usage: benchtool zimsrc PACKDIR OUTDIR N")
		}
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return fmt.Errorf("zimsrc: %w", err)
		}
		return zimSource(args[1], args[2], n)
	case "scaleurls":
		if len(args) != 6 {
			return errors.New("usage: benchtool scaleurls DIR COURSE BOOK N SAMPLE")
		}
		n, err1 := strconv.Atoi(args[4])
		sample, err2 := strconv.Atoi(args[5])
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("scaleurls: %w", err)
		}
		return scaleURLs(args[1], args[2], args[3], n, sample)
	case "pageload":
		return pageLoad(args[1:])
	case "peakrss":
		return peakRSS(args[1:])
	case "freeport":
		port, err := freePort()
		if err != nil {
			return err
		}
		fmt.Println(port)
		return nil
	case "fileserver":
		if len(args) != 3 {
			return errors.New("usage: benchtool fileserver DIR ADDR")
		}
		return fileServer(args[1], args[2])
	case "coldstart":
		return coldStartCmd(args[1:])
	}
	return fmt.Errorf("unknown subcommand %q", args[0])
}

// freePort asks the kernel for an unused loopback port. Another process
// could take it before the server binds it; on a benchmark machine that is
// a retry, not a wrong figure.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// fileServer serves dir the way the portal serves an object once it knows
// which: open the file, set the headers, http.ServeContent (which uses
// sendfile), close. The difference between it and the portal is the
// portal's own per-request work; between it and nginx, net/http's.
func fileServer(dir, addr string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("fileserver: %w", err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := root.Open(strings.TrimPrefix(path.Clean(r.URL.Path), "/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "video/webm")
		http.ServeContent(w, r, "", time.Time{}, f)
	})
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

func coldStartCmd(args []string) error {
	fs := flag.NewFlagSet("coldstart", flag.ContinueOnError)
	var c coldStart
	fs.StringVar(&c.bin, "bin", "bin/outpost", "the outpost binary")
	fs.StringVar(&c.data, "data", "", "data directory with the catalog imported")
	fs.StringVar(&c.pack, "pack", "", "the imported pack's folder, to build page URLs from its manifest")
	fs.IntVar(&c.runs, "runs", 3, "server starts to time; page views happen in the last")
	fs.IntVar(&c.clients, "clients", 4, "concurrent page-view clients")
	fs.IntVar(&c.first, "pages", 200, "page views before the first memory reading")
	fs.IntVar(&c.total, "total-pages", 1000, "page views in all before the second reading")
	fs.DurationVar(&c.settle, "settle", 0, "after each idle reading, wait this long and read RSS again")
	mix := fs.String("mix", "home,search,course,item", "kinds of page to cycle through")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.mix = strings.Split(*mix, ",")
	if c.data == "" || c.pack == "" || c.runs < 1 || c.first < 1 || c.total < c.first {
		return errors.New("coldstart: need -data, -pack, -runs >= 1 and 1 <= -pages <= -total-pages")
	}
	return c.run(context.Background(), os.Stdout)
}
