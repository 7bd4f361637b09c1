package main

import (
	"fmt"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"outpost/appliance"
)

func newContentGCCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "gc",
		Short: "Delete files no course needs, and leftovers of interrupted imports",
		Args:  cobra.NoArgs,
		RunE: g.withNode(func(cmd *cobra.Command, node *appliance.Node, _ []string) error {
			res, err := node.Library.GC(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "removed %d unreferenced files (%s) and %d leftovers of interrupted imports (%s)\n",
				res.Objects, humanize.IBytes(uint64(res.ObjectBytes)), res.Leftovers, humanize.IBytes(uint64(res.LeftoverByte)))
			return nil
		}),
	}
}
