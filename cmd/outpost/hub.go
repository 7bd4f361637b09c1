package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"outpost/appliance"
	"outpost/sync/hub"
)

// defaultHubListen is where a hub listens unless told otherwise.
const defaultHubListen = ":8443"

func newHubCmd(g *globals) *cobra.Command {
	var listen, metricsListen, patchCache string
	var patchBuilds int
	cmd := &cobra.Command{
		Use:   "hub",
		Short: "Run the cloud hub that publishes courses to enrolled boxes",
		Long: `Run the hub: the root of the sync tree. Boxes enrol with a one-time token
and then sync over HTTPS with mutual TLS; operators publish courses and
manage boxes through its admin API (the subcommands below).

On first start it creates --data, the hub's key pair and device ID (boxes
pin it; 'outpost status --data DIR' prints it) and an admin token in
DIR/hub/admin-token.

The hub listens on the internet, so what strangers can make it do is
bounded: a request that does not prove it comes from an enrolled box is
refused before its body is read; an address that keeps failing (no or an
unknown certificate, a wrong enrolment or admin token) is answered 429
for a while; /metrics on --listen needs the admin token (Prometheus:
'authorization: {credentials_file: ...}'), or serve it without one on a
private address with --metrics-listen. Patches are built at most
--patch-builds at a time (about 128 MiB and a CPU each) and kept within
--patch-cache on disk.`,
		Example: `  outpost hub --data /var/lib/outpost-hub
  outpost hub --data /var/lib/outpost-hub --metrics-listen 127.0.0.1:9100 --patch-cache 10GiB`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cacheBytes, err := humanize.ParseBytes(patchCache)
			if err != nil || cacheBytes == 0 {
				return fmt.Errorf("--patch-cache %q: give a size such as 2GiB or 500MB", patchCache)
			}
			if patchBuilds < 0 {
				return fmt.Errorf("--patch-builds %d: give 0 (sized to this machine) or more", patchBuilds)
			}
			cfg, err := appliance.LoadConfig(g.data)
			if err != nil {
				return err
			}
			node, err := appliance.Open(ctx, cfg, g.logger())
			if err != nil {
				return err
			}
			defer node.Close()
			h, err := newHub(node, func(o *hub.Options) {
				o.PatchBuilds, o.PatchCacheBytes = patchBuilds, int64(min(cacheBytes, 1<<62))
			})
			if err != nil {
				return err
			}
			if metricsListen != "" {
				stop, err := serveMetrics(ctx, metricsListen, h, node)
				if err != nil {
					return err
				}
				defer stop()
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("hub: listen on %s: %w; choose another address with --listen", listen, err)
			}
			return node.ServeHub(ctx, h, ln, func() {
				node.Log.Info("hub serving", "url", hubURL(ln.Addr()), "hub_id", h.DeviceID(), "admin_token_file", g.data+"/hub/admin-token")
			})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", defaultHubListen, "address of the hub's HTTPS API")
	cmd.Flags().StringVar(&metricsListen, "metrics-listen", "", "also serve /metrics, without a token, over plain HTTP on this address (e.g. 127.0.0.1:9100); keep it off the internet")
	cmd.Flags().IntVar(&patchBuilds, "patch-builds", 0, "patches built at once (0: half the CPUs, and no more than a quarter of the memory at 128 MiB each)")
	cmd.Flags().StringVar(&patchCache, "patch-cache", "2GiB", "disk space kept for built patches; past it the least recently served are deleted")
	cmd.AddCommand(newHubTokenCmd(g), newHubBoxesCmd(g), newHubRevokeCmd(g))
	return cmd
}

// serveMetrics serves the hub's metrics on a listener of their own, for an
// operator's Prometheus on a private address; stop shuts it down.
func serveMetrics(ctx context.Context, addr string, h *hub.Hub, node *appliance.Node) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("hub: listen on %s for metrics: %w; choose another address with --metrics-listen", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h.MetricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			node.Log.Error("metrics listener stopped", "err", err)
		}
	}()
	node.Log.Info("metrics serving", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}, nil
}

// newHub builds the hub over node, with its options changed by configure
// (nil: as they are).
func newHub(node *appliance.Node, configure func(*hub.Options)) (*hub.Hub, error) {
	o, err := node.HubOptions()
	if err != nil {
		return nil, err
	}
	if configure != nil {
		configure(&o)
	}
	return hub.New(o)
}

// hubURL is the URL boxes and tools use for a hub listening on a.
func hubURL(a net.Addr) string {
	u := portalURL(a)
	return "https" + u[len("http"):len(u)-1]
}
