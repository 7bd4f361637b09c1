package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"outpost/appliance/loadgen"
)

// loadtestReport is the --json form of a run, for scripts: plain numbers
// with their units in the names.
type loadtestReport struct {
	URLs              int              `json:"urls"`
	Client            string           `json:"client"`
	Clients           int              `json:"clients"`
	Connections       int64            `json:"connections"`
	RangeBytes        int64            `json:"range_bytes"`
	Seconds           float64          `json:"seconds"`
	Requests          int64            `json:"requests"`
	Bytes             int64            `json:"bytes"`
	Errors            int64            `json:"errors"`
	ErrorKinds        map[string]int64 `json:"error_kinds,omitempty"`
	FirstError        string           `json:"first_error,omitempty"`
	RequestsPerSecond float64          `json:"requests_per_second"`
	MBPerSecond       float64          `json:"mb_per_second"`
	P50Millis         float64          `json:"p50_ms"`
	P99Millis         float64          `json:"p99_ms"`
	MaxMillis         float64          `json:"max_ms"`
	ClientCPUSeconds  float64          `json:"client_cpu_seconds"`
}

func newLoadtestCmd(g *globals) *cobra.Command {
	var (
		cfg        loadgen.Config
		asJSON     bool
		cpuProfile string
		clientKind string
	)
	cmd := &cobra.Command{
		Use:   "loadtest URL...",
		Short: "Measure how fast a server hands out byte ranges of media files",
		Long: `Measure a media server the way a classroom of video players loads it:
--clients concurrent keep-alive connections, each asking for --range bytes
at random offsets (multiples of --range) of the given URLs for --duration.

Every answer must be 206 with exactly the range asked for; anything else is
counted as an error, never as throughput. Bodies are received in full but,
with the default raw client, dropped in the kernel rather than copied, so
the load generator costs far less CPU than the server it measures. Sizes are learnt with HEAD first.
Reports requests/s, MB/s (10^6 bytes), p50/p99 latency and errors. Exits
with an error if any request failed.`,
		Example: `  outpost loadtest --clients 50 --duration 10s --range 262144 http://127.0.0.1:8080/m/course/video`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.URLs = args
			switch clientKind {
			case "raw":
			case "stdlib":
				cfg.Stdlib = true
			default:
				return fmt.Errorf("load test: --client must be raw or stdlib, not %q", clientKind)
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("load test: create CPU profile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("load test: start CPU profile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			res, err := loadgen.Run(cmd.Context(), cfg)
			if res == nil {
				return err
			}
			if werr := printLoadtest(g, cfg, res, asJSON); werr != nil {
				return werr
			}
			if err != nil {
				return err
			}
			if res.Errors > 0 {
				return fmt.Errorf("load test: %d of %d requests failed; first: %s", res.Errors, res.Errors+res.Requests, res.FirstError)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Clients, "clients", 50, "concurrent clients, each with its own keep-alive connection")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to apply load")
	f.Int64Var(&cfg.RangeSize, "range", 256<<10, "bytes per range request")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed for the random choice of files and offsets")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.StringVar(&clientKind, "client", "raw", "raw: a minimal HTTP/1.1 client that discards bodies in the kernel, so one core can load a server;\nstdlib: net/http's Transport, which copies every body (needed for https)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the load generator itself to this file")
	return cmd
}

func printLoadtest(g *globals, cfg loadgen.Config, res *loadgen.Result, asJSON bool) error {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	if asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		err := enc.Encode(loadtestReport{
			URLs: len(cfg.URLs), Client: clientName(cfg), Clients: res.Clients, Connections: res.Connections, RangeBytes: cfg.RangeSize,
			Seconds: res.Elapsed.Seconds(), Requests: res.Requests, Bytes: res.Bytes,
			Errors: res.Errors, ErrorKinds: res.ErrorKinds, FirstError: res.FirstError,
			RequestsPerSecond: res.RequestsPerSecond, MBPerSecond: res.MBPerSecond,
			P50Millis: ms(res.P50), P99Millis: ms(res.P99), MaxMillis: ms(res.Max),
			ClientCPUSeconds: res.ClientCPU.Seconds(),
		})
		if err != nil {
			return fmt.Errorf("load test: write result: %w", err)
		}
		return nil
	}
	w := g.stdout
	fmt.Fprintf(w, "%d %s clients (%d connections), %s ranges of %d URLs, %.1fs\n",
		res.Clients, clientName(cfg), res.Connections, humanize.IBytes(uint64(cfg.RangeSize)), len(cfg.URLs), res.Elapsed.Seconds())
	fmt.Fprintf(w, "requests    %d  (%.0f/s)\n", res.Requests, res.RequestsPerSecond)
	fmt.Fprintf(w, "throughput  %.1f MB/s\n", res.MBPerSecond)
	fmt.Fprintf(w, "latency     p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", ms(res.P50), ms(res.P99), ms(res.Max))
	fmt.Fprintf(w, "client CPU  %.1fs (%.0f%% of one core)\n", res.ClientCPU.Seconds(), 100*res.ClientCPU.Seconds()/res.Elapsed.Seconds())
	fmt.Fprintf(w, "errors      %d\n", res.Errors)
	kinds := make([]string, 0, len(res.ErrorKinds))
	for k := range res.ErrorKinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "  %-18s %d\n", k, res.ErrorKinds[k])
	}
	if res.FirstError != "" {
		fmt.Fprintf(w, "  first: %s\n", res.FirstError)
	}
	return nil
}

func clientName(cfg loadgen.Config) string {
	if cfg.Stdlib {
		return "stdlib"
	}
	return "raw"
}
