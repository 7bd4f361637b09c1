package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"outpost/appliance"
	"outpost/sync/upstream"
)

func newServeCmd(g *globals) *cobra.Command {
	var listen, upstreamURL, enrol, enrolFile, hubID, interval string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the appliance daemon: the LAN portal over the local course cache",
		Long: `Run the appliance daemon. On first start it creates the data directory,
the node's key pair, certificate and device ID (see 'outpost status').

It serves the LAN portal, /healthz (200 once ready) and /metrics (Prometheus
text format) on --listen, and stops gracefully on SIGTERM or Ctrl-C.

With --upstream and an enrolment token it joins a hub once (the token is
spent, the hub's identity pinned in DATA/upstream.json) and from then on
syncs the courses of its channels in the background; later starts need no
flags. The portal serves what the box holds while the hub is unreachable.

Give the token with --enrol-file PATH or --enrol - (read from standard
input): a token on the command line (--enrol TOKEN) is visible to every
user of the machine in ps for as long as the daemon runs. Once enrolled,
the daemon forgets the token, and removes enrol_token from
DATA/outpost.json if an image put it there. A box already enrolled keeps
its hub address: to change it, use 'outpost sync set-upstream'.`,
		Example: `  outpost serve --data /var/lib/outpost --upstream https://hub.example.org:8443 --enrol-file /boot/enrol-token
  echo TOKEN | outpost serve --data /var/lib/outpost --upstream https://hub.example.org:8443 --enrol -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := appliance.LoadConfig(g.data)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("listen") || cfg.Listen == "" {
				cfg.Listen = listen
			}
			for flag, dst := range map[string]*string{"upstream": &cfg.Upstream, "hub-id": &cfg.HubID, "sync-interval": &cfg.SyncInterval} {
				if v, _ := cmd.Flags().GetString(flag); cmd.Flags().Changed(flag) {
					*dst = v
				}
			}
			if tok, err := enrolToken(cmd, enrol, enrolFile); err != nil {
				return err
			} else if tok != "" {
				cfg.EnrolToken = tok
			}
			if cfg.EnrolToken != "" && cfg.Upstream == "" {
				return fmt.Errorf("an enrolment token needs --upstream https://HUB:PORT (the hub the token is for)")
			}
			node, err := appliance.Open(ctx, cfg, g.logger())
			if err != nil {
				return err
			}
			defer node.Close()
			warnUpstreamIgnored(node, cmd.Flags().Changed("upstream"))
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w; choose another address with --listen", cfg.Listen, err)
			}
			return node.Serve(ctx, ln, func() {
				node.Log.Info("serving", "url", portalURL(ln.Addr()), "device_id", node.Identity.DeviceID.String())
			})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":8080", "address of the LAN portal, e.g. :8080 or 127.0.0.1:8080")
	cmd.Flags().StringVar(&upstreamURL, "upstream", "", "the hub to sync from, https://HOST:PORT")
	cmd.Flags().StringVar(&enrol, "enrol", "", "one-time enrolment token printed by 'outpost hub token create', or - to read it from standard input; a token given here shows in ps, prefer --enrol-file")
	cmd.Flags().StringVar(&enrolFile, "enrol-file", "", "read the one-time enrolment token from this file")
	cmd.Flags().StringVar(&hubID, "hub-id", "", "the hub's device ID, if the token does not carry it")
	cmd.Flags().StringVar(&interval, "sync-interval", "5m", "time between sync passes when all is well")
	return cmd
}

// portalURL is the address a person types: an unspecified host becomes
// 127.0.0.1, since "[::]:8080" opens nothing in a browser.
func portalURL(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return "http://" + a.String() + "/"
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return fmt.Sprintf("http://%s/", net.JoinHostPort(host, fmt.Sprint(tcp.Port)))
}

// warnUpstreamIgnored says so when --upstream names another address than
// the one an enrolled box syncs from: the enrolment's address wins (a unit
// file's old flag must not undo a move), and silence would hide that.
func warnUpstreamIgnored(node *appliance.Node, given bool) {
	link, err := upstream.LoadLink(node.Config.DataDir)
	if err != nil || !given {
		return
	}
	want, err := upstream.NormaliseURL(node.Config.Upstream)
	if err != nil || want == link.URL {
		return
	}
	node.Log.Warn("this box is enrolled and syncs from its enrolment's hub address; --upstream is ignored. If the hub moved, run `outpost sync set-upstream URL`",
		"enrolled_with", link.URL, "upstream_flag", want)
}

// enrolToken reads the token from --enrol, --enrol - (standard input) or
// --enrol-file; "" when none was given. The flag's copy is cleared, so the
// token is held only by the node until enrolment spends it.
func enrolToken(cmd *cobra.Command, flag, file string) (string, error) {
	fromFlag, fromFile := cmd.Flags().Changed("enrol"), cmd.Flags().Changed("enrol-file")
	if fromFlag && fromFile {
		return "", errors.New("give the enrolment token once: --enrol or --enrol-file")
	}
	var tok string
	switch {
	case fromFile:
		b, err := readBounded(file, 4096)
		if err != nil {
			return "", fmt.Errorf("--enrol-file: %w", err)
		}
		tok = string(b)
	case fromFlag && flag == "-":
		// One line, so a technician can paste the token and press Enter
		// (or pipe it in) while the daemon keeps standard input.
		in := cmd.InOrStdin()
		if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			fmt.Fprint(cmd.ErrOrStderr(), "Paste the enrolment token and press Enter: ")
		}
		line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("--enrol -: read standard input: %w", err)
		}
		tok = line
	case fromFlag:
		tok = flag
		cmd.Flags().Set("enrol", "")
	default:
		return "", nil
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", errors.New("the enrolment token is empty: give the token 'outpost hub token create' printed")
	}
	return tok, nil
}

// readBounded reads at most limit bytes of a small file a person named.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}
