package main

import (
	"errors"
	"fmt"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"outpost/appliance"
)

func newContentVerifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Re-hash every stored file; quarantine and report what is corrupt",
		Long: `Re-read and re-hash every stored file. A file whose bytes no longer match
its hash (a failing SD card, a bad write) is moved to the store's quarantine
folder and no longer served; the courses that need it are listed so they can
be imported again. Exits non-zero when anything is wrong.`,
		Args: cobra.NoArgs,
		RunE: g.withNode(func(cmd *cobra.Command, node *appliance.Node, _ []string) error {
			b := newBar(g.stderr, "verifying")
			rep, err := node.Library.Verify(cmd.Context(), b.Total, b.Add)
			b.finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "checked %d files, %s\n", rep.Checked, humanize.IBytes(uint64(rep.Bytes)))
			for _, sha := range rep.Corrupt {
				fmt.Fprintf(g.stdout, "corrupt, quarantined: %s\n", sha)
			}
			for id, paths := range rep.Missing {
				for _, p := range paths {
					fmt.Fprintf(g.stdout, "course %s is missing %s; import the course again to repair it\n", id, p)
				}
			}
			if !rep.Clean() {
				return errors.New("verify found problems (listed above)")
			}
			fmt.Fprintln(g.stdout, "all files are intact")
			return nil
		}),
	}
}
