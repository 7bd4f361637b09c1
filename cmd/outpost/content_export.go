package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"outpost/appliance"
)

func newContentExportCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "export ID OUT",
		Short: "Write a course as a pack: OUT ending in .tar.zst, .tzst, .tar or .zip, else a folder",
		Long: `Write the visible version of a course as a pack another node can import.
OUT ending in .tar.zst (or .tzst), .tar or .zip is written as that archive;
OUT without an extension, or ending in /, or an existing directory, is
written as a folder. Any other extension (.tgz, .tar.gz, .7z) is refused.`,
		Example: `  outpost content export sample-water-cycle /media/usb/water-cycle.tar.zst
  outpost content export sample-water-cycle /media/usb/water-cycle/`,
		Args: cobra.ExactArgs(2),
		RunE: g.withNode(func(cmd *cobra.Command, node *appliance.Node, args []string) error {
			b := newBar(g.stderr, "exporting")
			err := node.Library.Export(cmd.Context(), args[0], args[1], b)
			b.finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "exported %s to %s\n", args[0], args[1])
			return nil
		}),
	}
}
