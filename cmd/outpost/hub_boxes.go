package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"outpost/sync/hub"
)

func newHubBoxesCmd(g *globals) *cobra.Command {
	var hf hubFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "boxes",
		Short: "List enrolled boxes: when each was last seen and how far behind it is",
		Long: `List the boxes enrolled with the hub. LAG is how many hub changes a box has
not applied yet and the age of the oldest; a box that stays behind while
LAST SEEN is recent is syncing slowly, one whose LAST SEEN is old is offline.
DEVICE is shortened; --json gives the full IDs.`,
		Example: `  outpost hub boxes --data /var/lib/outpost-hub`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.hubClient(&hf)
			if err != nil {
				return err
			}
			var boxes []hub.Box
			if err := c.getJSON(cmd.Context(), "/admin/v1/boxes", &boxes); err != nil {
				return err
			}
			if asJSON {
				if boxes == nil {
					boxes = []hub.Box{}
				}
				return g.printJSON(boxes)
			}
			if len(boxes) == 0 {
				fmt.Fprintln(g.stdout, "No boxes enrolled yet. Make a token for one with `outpost hub token create --site NAME --channels a,b`.")
				return nil
			}
			printBoxes(g, boxes, time.Now())
			return nil
		},
	}
	addHubFlags(cmd, &hf)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the boxes as JSON, with full device IDs")
	return cmd
}

func printBoxes(g *globals, boxes []hub.Box, now time.Time) {
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tSITE\tHOST\tLAST SEEN\tSOFTWARE\tLAG\tSTATE")
	for _, b := range boxes {
		state := "ok"
		if b.Revoked != nil {
			state = "revoked"
		}
		// Every field came from the hub, and the host name and software
		// from the box itself.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", terminalSafe(shortDeviceID(b.DeviceID)), orDash(b.Site), orDash(b.Hostname),
			lastSeen(b.LastSeen, now), orDash(b.Software), boxLag(b), state)
	}
	tw.Flush()
}

// shortDeviceID is the first group of a device ID, enough to tell boxes
// apart in a table and to pass to `outpost hub revoke`.
func shortDeviceID(id string) string {
	if len(id) > 7 {
		return id[:7]
	}
	return id
}

// orDash is a remote string for a table cell: "-" when empty.
func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return terminalSafe(s)
}

func lastSeen(t, now time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "never"
	}
	return humanize.RelTime(t, now, "ago", "from now")
}

func boxLag(b hub.Box) string {
	if b.LagChanges <= 0 {
		return "up to date"
	}
	unit := "changes"
	if b.LagChanges == 1 {
		unit = "change"
	}
	if b.LagSeconds <= 0 {
		return fmt.Sprintf("%d %s, just now", b.LagChanges, unit)
	}
	now := time.Now()
	return fmt.Sprintf("%d %s, oldest %s", b.LagChanges, unit, humanize.RelTime(now.Add(-time.Duration(b.LagSeconds)*time.Second), now, "ago", "from now"))
}
