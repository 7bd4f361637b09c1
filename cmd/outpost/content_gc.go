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
		Long: `Delete stored files no course version references, and what interrupted
imports left behind.

Files an unfinished sync pass has already downloaded for a course version
not yet installed (stored whole, or partial under DATA/sync/partial) are
kept, so the next pass goes on from there; they are reclaimed once the hub
has not offered that version for 30 days.`,
		Args: cobra.NoArgs,
		RunE: g.withNode(func(cmd *cobra.Command, node *appliance.Node, _ []string) error {
			res, err := node.Library.GC(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "removed %d unreferenced files (%s) and %d leftovers of interrupted imports and syncs (%s)\n",
				res.Objects, humanize.IBytes(uint64(res.ObjectBytes)), res.Leftovers, humanize.IBytes(uint64(res.LeftoverByte)))
			if res.Pending > 0 {
				fmt.Fprintf(g.stdout, "kept %d files (%s) an unfinished sync pass needs for its next course versions\n",
					res.Pending, humanize.IBytes(uint64(res.PendingBytes)))
			}
			return nil
		}),
	}
}
