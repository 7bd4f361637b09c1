package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"outpost/appliance"
	"outpost/content/samplecourse"
	"outpost/sync/upstream"
)

func newDemoCmd(g *globals) *cobra.Command {
	var listen, hubListen string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a hub and a box on this machine; the sample course reaches the box by sync",
		Long: `Run a hub and an appliance on this machine, the way a school gets its
courses: the hub publishes a generated sample course (video, audio, PDF and
an HTML5 activity), the box enrols with a one-time token, syncs the course
over mutual TLS, and serves it on its portal. Then it prints the URL to open
from this machine or any phone on the same network.

State is kept under your cache directory (override with --data): DIR/hub
and DIR/box. Running it again reuses both.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			if !cmd.Flags().Changed("data") {
				d, err := os.UserCacheDir()
				if err != nil {
					return fmt.Errorf("demo: find a cache directory: %w; pass --data DIR", err)
				}
				g.data = filepath.Join(d, "outpost", "demo")
			}
			root := g.data
			log := g.logger()

			// The hub.
			g.data = filepath.Join(root, "hub")
			hubNode, err := appliance.Open(ctx, appliance.DefaultConfig(g.data), log)
			if err != nil {
				return fmt.Errorf("demo: open the hub: %w", err)
			}
			defer hubNode.Close()
			h, err := newHub(hubNode, nil)
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			hubLn, err := listenOrAny(hubListen, !cmd.Flags().Changed("hub-listen"))
			if err != nil {
				return fmt.Errorf("demo: hub: %w", err)
			}
			hubErr := make(chan error, 1)
			go func() { hubErr <- hubNode.ServeHub(ctx, h, hubLn, nil) }()
			defer func() { cancel(); <-hubErr }()
			hubAt := hubURL(hubLn.Addr())

			packDir, err := os.MkdirTemp("", "outpost-sample-")
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			defer os.RemoveAll(packDir)
			if _, err := samplecourse.Write(packDir); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			pub, err := h.Publish(ctx, packDir, "demo")
			if err != nil {
				return fmt.Errorf("demo: publish the sample course: %w", err)
			}
			fmt.Fprintf(g.stdout, "Hub %s published %q to channel \"demo\" (hub data: %s).\n", hubAt, pub.Title, g.data)
			token, _, err := h.CreateToken(ctx, "demo-school", []string{"demo"}, time.Hour)
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}

			// The box: enrol, sync once in the open so the course is there
			// before the URL is printed, then serve with the sync loop.
			boxDir := filepath.Join(root, "box")
			cfg, err := appliance.LoadConfig(boxDir)
			if err != nil {
				return err
			}
			cfg.Upstream, cfg.EnrolToken, cfg.SyncInterval = hubAt, token, "30s"
			box, err := appliance.Open(ctx, cfg, log)
			if err != nil {
				return fmt.Errorf("demo: open the box: %w", err)
			}
			defer box.Close()
			link, err := upstream.Enrol(ctx, boxDir, box.Identity, hubAt, token, "", appliance.Software)
			if err != nil {
				return fmt.Errorf("demo: enrol the box: %w", err)
			}
			fmt.Fprintf(g.stdout, "Box %s enrolled (site %s); syncing…\n", box.Identity.DeviceID.Short(), terminalSafe(link.Site))
			c, err := box.SyncClient()
			if err != nil {
				return err
			}
			// What this pass did, not the box's totals: a second demo run
			// reports nothing fetched if the box had it all.
			rep, err := c.RunPass(ctx)
			if err != nil {
				return fmt.Errorf("demo: first sync: %w", err)
			}
			fmt.Fprintf(g.stdout, "Synced: %d blocks fetched, %d reused; the box holds %q (box data: %s).\n",
				rep.Work.BlocksFetched, rep.Work.BlocksLocal+rep.Work.BlocksShifted, pub.Title, boxDir)

			ln, err := listenOrAny(listen, !cmd.Flags().Changed("listen"))
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			return box.Serve(ctx, ln, func() {
				fmt.Fprintf(g.stdout, "\nOpen %s in a browser.\n", portalURL(ln.Addr()))
				for _, u := range lanURLs(ln.Addr()) {
					fmt.Fprintf(g.stdout, "On a phone or laptop on this network: %s\n", u)
				}
				fmt.Fprintf(g.stdout, "Publish another course to the box: outpost content publish PACK --data %s --hub %s --channel demo\n", filepath.Join(root, "hub"), hubAt)
				fmt.Fprintln(g.stdout, "Press Ctrl-C to stop.")
			})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":8080", "address of the box's portal; if the default port is busy a free one is used")
	cmd.Flags().StringVar(&hubListen, "hub-listen", "127.0.0.1:8443", "address of the hub; if the default port is busy a free one is used")
	return cmd
}

// listenOrAny listens on addr, or on any free port of the same host when
// addr is busy and fallback is allowed: `make run` should just work.
func listenOrAny(addr string, fallback bool) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) && fallback {
		host, _, _ := net.SplitHostPort(addr)
		ln, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w; choose another address with --listen", addr, err)
	}
	return ln, nil
}

// lanURLs lists the portal's address on each non-loopback IPv4 interface,
// which is what a teacher types into a phone.
func lanURLs(a net.Addr) []string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []string
	for _, ad := range addrs {
		ipn, ok := ad.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.To4() == nil {
			continue
		}
		out = append(out, fmt.Sprintf("http://%s/", net.JoinHostPort(ipn.IP.String(), fmt.Sprint(tcp.Port))))
	}
	return out
}
