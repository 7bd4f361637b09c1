package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"outpost/appliance"
	"outpost/content/samplecourse"
)

func newDemoCmd(g *globals) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a box with a sample course on this machine and print the URL to open",
		Long: `Run an appliance with a generated sample course (video, audio, PDF and an
HTML5 activity) so you can try the portal from this machine or any phone on
the same network. State is kept in a demo data directory under your cache
directory (override with --data); running it again reuses it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if !cmd.Flags().Changed("data") {
				d, err := os.UserCacheDir()
				if err != nil {
					return fmt.Errorf("demo: find a cache directory: %w; pass --data DIR", err)
				}
				g.data = filepath.Join(d, "outpost", "demo")
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

			packDir, err := os.MkdirTemp("", "outpost-sample-")
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			defer os.RemoveAll(packDir)
			if _, err := samplecourse.Write(packDir); err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			res, err := node.Library.Import(ctx, packDir, nil)
			if err != nil {
				return fmt.Errorf("demo: import the sample course: %w", err)
			}
			fmt.Fprintf(g.stdout, "Sample course %q is on the box (%s).\n", res.Title, g.data)

			ln, err := net.Listen("tcp", listen)
			if errors.Is(err, syscall.EADDRINUSE) && !cmd.Flags().Changed("listen") {
				// make run should just work even if 8080 is taken.
				host, _, _ := net.SplitHostPort(listen)
				ln, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
			}
			if err != nil {
				return fmt.Errorf("demo: listen on %s: %w; choose another address with --listen", listen, err)
			}
			return node.Serve(ctx, ln, func() {
				fmt.Fprintf(g.stdout, "\nOpen %s in a browser.\n", portalURL(ln.Addr()))
				for _, u := range lanURLs(ln.Addr()) {
					fmt.Fprintf(g.stdout, "On a phone or laptop on this network: %s\n", u)
				}
				fmt.Fprintln(g.stdout, "Press Ctrl-C to stop.")
			})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":8080", "address of the portal; if the default port is busy a free one is used")
	return cmd
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
