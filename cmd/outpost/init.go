package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"outpost/appliance"
)

func newInitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create a node's data directory without starting the daemon",
		Long: `Create a node in --data: the directory (mode 0700), the node's key pair,
certificate and device ID, and its database. The first 'outpost serve' does
the same; use init to prepare a node that is filled before it first serves
(content import from a USB stick, a prepared image). Every other verb but
serve, hub and demo refuses a directory that is not a node, so a mistyped
--data never starts an empty one. Running init on a node changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := appliance.LoadConfig(g.data)
			if err != nil {
				return err
			}
			node, err := appliance.Open(cmd.Context(), cfg, g.logger())
			if err != nil {
				return err
			}
			defer node.Close()
			what := "already a node"
			if node.Created {
				what = "created a node"
			}
			fmt.Fprintf(g.stdout, "%s: %s, device ID %s\n", g.data, what, node.Identity.DeviceID)
			return nil
		},
	}
}
