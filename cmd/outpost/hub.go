package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"outpost/appliance"
	"outpost/sync/hub"
)

// defaultHubListen is where a hub listens unless told otherwise.
const defaultHubListen = ":8443"

func newHubCmd(g *globals) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "hub",
		Short: "Run the cloud hub that publishes courses to enrolled boxes",
		Long: `Run the hub: the root of the sync tree. Boxes enrol with a one-time token
and then sync over HTTPS with mutual TLS; operators publish courses and
manage boxes through its admin API (the subcommands below).

On first start it creates --data, the hub's key pair and device ID (boxes
pin it; 'outpost status --data DIR' prints it) and an admin token in
DIR/hub/admin-token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := appliance.LoadConfig(g.data)
			if err != nil {
				return err
			}
			node, err := appliance.Open(ctx, cfg, g.logger())
			if err != nil {
				return err
			}
			defer node.Close()
			h, err := newHub(node)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("hub: listen on %s: %w; choose another address with --listen", listen, err)
			}
			return h.Serve(ctx, ln, func() {
				node.Log.Info("hub serving", "url", hubURL(ln.Addr()), "hub_id", h.DeviceID(), "admin_token_file", g.data+"/hub/admin-token")
			})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", defaultHubListen, "address of the hub's HTTPS API")
	cmd.AddCommand(newHubTokenCmd(g), newHubBoxesCmd(g), newHubRevokeCmd(g))
	return cmd
}

func newHub(node *appliance.Node) (*hub.Hub, error) {
	o, err := node.HubOptions()
	if err != nil {
		return nil, err
	}
	return hub.New(o)
}

// hubURL is the URL boxes and tools use for a hub listening on a.
func hubURL(a net.Addr) string {
	u := portalURL(a)
	return "https" + u[len("http"):len(u)-1]
}
