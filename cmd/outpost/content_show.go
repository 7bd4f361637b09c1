package main

import (
	"fmt"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"outpost/appliance"
)

func newContentShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a course's lessons and items",
		Args:  cobra.ExactArgs(1),
		RunE: g.withNode(func(cmd *cobra.Command, node *appliance.Node, args []string) error {
			c, err := node.Catalog.Course(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("%w; list courses with `outpost content ls`", err)
			}
			// Every string below is the pack author's.
			w := g.stdout
			fmt.Fprintf(w, "%s (version %d)\n%s\n", terminalSafe(c.Title), c.Version, terminalSafe(c.ID))
			fmt.Fprintf(w, "Language: %s  Subjects: %s  Grades: %s\n", terminalSafe(c.Language), strings.Join(terminalSafeAll(c.Subjects), ", "), strings.Join(terminalSafeAll(c.Grades), ", "))
			fmt.Fprintf(w, "Size: %s in %d items, imported %s\n", humanize.IBytes(uint64(c.Bytes)), c.ItemCount, c.ImportedAt.Format("2006-01-02 15:04"))
			if c.Description != "" {
				// Line by line: the description's own line breaks stay.
				fmt.Fprintf(w, "\n%s\n", strings.Join(terminalSafeAll(strings.Split(c.Description, "\n")), "\n"))
			}
			for _, l := range c.Lessons {
				fmt.Fprintf(w, "\n%d. %s\n", l.Index+1, terminalSafe(l.Title))
				for _, it := range l.Items {
					fmt.Fprintf(w, "   - [%s] %s (%s, %s)\n", terminalSafe(string(it.Kind)), terminalSafe(it.Title), terminalSafe(it.Path), humanize.IBytes(uint64(it.Size)))
				}
			}
			return nil
		}),
	}
}
