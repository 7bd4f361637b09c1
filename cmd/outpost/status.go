package main

import (
	"fmt"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"outpost/appliance"

	"outpost/appliance/database"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the node's device ID, schema version and content summary",
		Args:  cobra.NoArgs,
		RunE: g.withNode(func(cmd *cobra.Command, node *appliance.Node, _ []string) error {
			u, err := node.Library.Usage(cmd.Context())
			if err != nil {
				return err
			}
			st := struct {
				DeviceID    string `json:"device_id"`
				DataDir     string `json:"data_dir"`
				Schema      int    `json:"schema_version"`
				Courses     int    `json:"courses"`
				StoredBytes int64  `json:"stored_bytes"`
				FreeBytes   int64  `json:"free_bytes"`
			}{node.Identity.DeviceID.String(), g.data, database.SchemaVersion(), len(u.Courses), u.StoredBytes, u.FreeBytes}
			if asJSON {
				return g.printJSON(st)
			}
			fmt.Fprintf(g.stdout, "Device ID:  %s\n", st.DeviceID)
			fmt.Fprintf(g.stdout, "Data:       %s (schema %d)\n", st.DataDir, st.Schema)
			fmt.Fprintf(g.stdout, "Courses:    %d, %s stored, %s free\n", st.Courses, humanize.IBytes(uint64(st.StoredBytes)), humanize.IBytes(uint64(max(st.FreeBytes, 0))))
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
