package main

import "github.com/spf13/cobra"

func newContentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "content",
		Short: "Manage the course cache: import, list, export, verify, reclaim space",
		Long: `Manage the courses cached on this node.

A course pack is a folder, .zip, .tar or .tar.zst with a manifest.json at its
root (see docs/PACK_FORMAT.md). Imports are atomic: a course appears only when
all its files are stored and verified, and a new version replaces the old one
in one step.`,
	}
	cmd.AddCommand(
		newContentImportCmd(g),
		newContentLsCmd(g),
		newContentShowCmd(g),
		newContentExportCmd(g),
		newContentRmCmd(g),
		newContentVerifyCmd(g),
		newContentGCCmd(g),
		newContentDuCmd(g),
		newContentPublishCmd(g),
	)
	return cmd
}
