package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"outpost/appliance"
)

func newContentRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm ID...",
		Short: "Remove courses from the portal (run gc to reclaim their space)",
		Args:  cobra.MinimumNArgs(1),
		RunE: g.withNode(func(cmd *cobra.Command, node *appliance.Node, args []string) error {
			for _, id := range args {
				if err := node.Catalog.Remove(cmd.Context(), id); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "removed %s; run `outpost content gc` to reclaim its space\n", id)
			}
			return nil
		}),
	}
}
