package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
	"github.com/syncthing/syncthing/lib/protocol"

	"outpost/sync/hub"
)

func newHubRevokeCmd(g *globals) *cobra.Command {
	var hf hubFlags
	cmd := &cobra.Command{
		Use:   "revoke DEVICE-ID",
		Short: "Cut a box off: the hub refuses its next request",
		Long: `Revoke a box, e.g. one that was stolen or decommissioned. The hub refuses
every later request from it, whatever it holds; to bring it back, enrol it
again with a new token. DEVICE-ID is the full ID or the short form
'outpost hub boxes' shows, if no other box's ID starts with it.`,
		Example: `  outpost hub revoke --data /var/lib/outpost-hub ABCDEF1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.hubClient(&hf)
			if err != nil {
				return err
			}
			id, err := resolveBoxID(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			if err := c.postJSON(cmd.Context(), "/admin/v1/boxes/"+url.PathEscape(id)+"/revoke", nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "revoked %s: the hub refuses its next request; to bring it back, enrol it again with a new token\n", terminalSafe(id))
			return nil
		},
	}
	addHubFlags(cmd, &hf)
	return cmd
}

// resolveBoxID accepts a full device ID as is, and otherwise looks for the
// one enrolled box whose ID starts with arg.
func resolveBoxID(ctx context.Context, c *hubClient, arg string) (string, error) {
	arg = strings.TrimSpace(arg)
	if id, err := protocol.DeviceIDFromString(arg); err == nil && id != protocol.EmptyDeviceID {
		return id.String(), nil
	}
	if len(arg) < 4 {
		return "", fmt.Errorf("%q is not a device ID; give the ID from `outpost hub boxes` (at least its first 4 characters)", arg)
	}
	var boxes []hub.Box
	if err := c.getJSON(ctx, "/admin/v1/boxes", &boxes); err != nil {
		return "", err
	}
	var matches []string
	for _, b := range boxes {
		if strings.HasPrefix(strings.ToUpper(b.DeviceID), strings.ToUpper(arg)) {
			matches = append(matches, b.DeviceID)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return "", fmt.Errorf("%q is not a device ID and no enrolled box's ID starts with it; see `outpost hub boxes`", arg)
	default:
		return "", fmt.Errorf("%q starts the IDs of %d boxes (%s); give more of the ID", arg, len(matches), strings.Join(terminalSafeAll(matches), ", "))
	}
}
