package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"outpost/appliance"
)

func newContentDuCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "du",
		Short: "Show space used by each course, in total, free, and the quota",
		Args:  cobra.NoArgs,
		RunE: g.withNode(func(cmd *cobra.Command, node *appliance.Node, _ []string) error {
			u, err := node.Library.Usage(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return g.printJSON(u)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "COURSE\tVERSION\tSIZE\tTITLE")
			for _, c := range u.Courses {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", terminalSafe(c.ID), c.Version, humanize.IBytes(uint64(c.Bytes)), terminalSafe(c.Title))
			}
			tw.Flush()
			quota := "none"
			if u.Quota > 0 {
				quota = humanize.IBytes(uint64(u.Quota))
			}
			fmt.Fprintf(g.stdout, "\nstored: %s (files shared between courses count once)\nfree:   %s\nquota:  %s\n",
				humanize.IBytes(uint64(u.StoredBytes)), humanize.IBytes(uint64(max(u.FreeBytes, 0))), quota)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
