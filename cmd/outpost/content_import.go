package main

import (
	"fmt"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"outpost/appliance"
)

func newContentImportCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "import PATH...",
		Short: "Import course packs from folders, .zip, .tar or .tar.zst files",
		Long: `Import one or more course packs, e.g. from a USB stick.

Every file is checked against the manifest's size and SHA-256 before the
course becomes visible; a bad pack is refused with every problem found (the
file and field at fault), nothing of it appears on the portal, and what was
stored of it is deleted again. Importing a newer version of
a course switches to it atomically once complete.`,
		Example: `  outpost content import --data /var/lib/outpost /media/usb/fractions.tar.zst`,
		Args:    cobra.MinimumNArgs(1),
		RunE: g.withNode(func(cmd *cobra.Command, node *appliance.Node, args []string) error {
			for _, p := range args {
				b := newBar(g.stderr, "importing")
				res, err := node.Library.Import(cmd.Context(), p, b)
				b.finish()
				if err != nil {
					return err
				}
				switch {
				case res.AlreadyImported:
					fmt.Fprintf(g.stdout, "%s version %d is already imported; nothing to do\n", res.ID, res.Version)
				case res.Replaced > 0:
					fmt.Fprintf(g.stdout, "updated %s from version %d to %d: %q, %d files, %s (%s new)\n", res.ID, res.Replaced, res.Version, res.Title, res.Files, humanize.IBytes(uint64(res.Bytes)), humanize.IBytes(uint64(res.NewBytes)))
				default:
					fmt.Fprintf(g.stdout, "imported %s version %d: %q, %d files, %s (%s new)\n", res.ID, res.Version, res.Title, res.Files, humanize.IBytes(uint64(res.Bytes)), humanize.IBytes(uint64(res.NewBytes)))
				}
			}
			return nil
		}),
	}
}
