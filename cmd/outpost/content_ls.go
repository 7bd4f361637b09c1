package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"outpost/appliance"

	"outpost/content/catalog"
)

func newContentLsCmd(g *globals) *cobra.Command {
	var asJSON bool
	var f catalog.Filter
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the courses on this node",
		Args:  cobra.NoArgs,
		RunE: g.withNode(func(cmd *cobra.Command, node *appliance.Node, _ []string) error {
			f.Limit = 1000
			cs, err := node.Catalog.Courses(cmd.Context(), f)
			if err != nil {
				return err
			}
			if asJSON {
				type row struct {
					ID          string   `json:"id"`
					Version     int64    `json:"version"`
					Title       string   `json:"title"`
					Language    string   `json:"language"`
					Subjects    []string `json:"subjects"`
					Items       int      `json:"items"`
					Bytes       int64    `json:"bytes"`
					Description string   `json:"description"`
				}
				rows := []row{}
				for _, c := range cs {
					rows = append(rows, row{c.ID, c.Version, c.Title, c.Language, c.Subjects, c.ItemCount, c.Bytes, c.Description})
				}
				return g.printJSON(rows)
			}
			if len(cs) == 0 {
				fmt.Fprintln(g.stdout, "No courses yet. Import one with: outpost content import --data DIR PACK")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tVERSION\tLANG\tSUBJECTS\tITEMS\tSIZE\tTITLE")
			for _, c := range cs {
				// A pack's author chose these strings.
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\n", terminalSafe(c.ID), c.Version, terminalSafe(c.Language), strings.Join(terminalSafeAll(c.Subjects), ","), c.ItemCount, humanize.IBytes(uint64(c.Bytes)), terminalSafe(c.Title))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&f.Language, "lang", "", "only courses in this language")
	cmd.Flags().StringVar(&f.Subject, "subject", "", "only courses with this subject")
	return cmd
}
