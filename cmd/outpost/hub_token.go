package main

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"outpost/sync/hub"
)

func newHubTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make enrolment tokens for new boxes",
	}
	cmd.AddCommand(newHubTokenCreateCmd(g))
	return cmd
}

// hubTokenOutput is what `hub token create --json` prints.
type hubTokenOutput struct {
	hub.TokenResponse
	Site     string   `json:"site"`
	Channels []string `json:"channels"`
	Command  string   `json:"command"`
}

func newHubTokenCreateCmd(g *globals) *cobra.Command {
	var hf hubFlags
	var site, expires string
	var channels []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create --site NAME --channels a,b",
		Short: "Make a one-time token that enrols one box into a site and channels",
		Long: `Make a one-time enrolment token. The technician installing a box gives
it to 'outpost serve --upstream HUB-URL' with --enrol-file FILE, or with
--enrol - on standard input (pasted, or piped as the printed command does,
so it never shows in ps); the box then syncs
the courses published to its channels. The token carries the hub's device
ID, which the box pins, and works once, until it expires.`,
		Example: `  outpost hub token create --data /var/lib/outpost-hub --site "Kisumu Primary" --channels science,maths
  outpost hub token create --hub https://hub.example.org:8443 --admin-token T --hub-id ID --site clinic-3 --channels health --expires 7d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ttl, err := parseExpiry(expires)
			if err != nil {
				return err
			}
			c, err := g.hubClient(&hf)
			if err != nil {
				return err
			}
			chs := tidyChannels(channels)
			var res hub.TokenResponse
			if err := c.postJSON(cmd.Context(), "/admin/v1/tokens", hub.TokenRequest{Site: site, Channels: chs, ExpiresSeconds: int64(ttl / time.Second)}, &res); err != nil {
				return err
			}
			// printf is a shell builtin, so the token never shows in ps,
			// as it would for the daemon's whole life with --enrol TOKEN.
			command := "printf '%s\\n' " + res.Token + " | outpost serve --upstream " + c.base + " --enrol -"
			if asJSON {
				return g.printJSON(hubTokenOutput{TokenResponse: res, Site: strings.TrimSpace(site), Channels: chs, Command: command})
			}
			w := g.stdout
			fmt.Fprintf(w, "Enrolment token (works once):\n\n    %s\n\n", terminalSafe(res.Token))
			fmt.Fprintf(w, "  site:      %s\n", terminalSafe(strings.TrimSpace(site)))
			fmt.Fprintf(w, "  channels:  %s\n", strings.Join(terminalSafeAll(chs), ", "))
			fmt.Fprintf(w, "  expires:   %s (%s)\n", res.Expires.Local().Format("2006-01-02 15:04 MST"), expiresIn(res.Expires))
			fmt.Fprintf(w, "  hub ID:    %s\n\n", terminalSafe(res.HubID))
			fmt.Fprintf(w, "On the box, run:\n\n    %s\n", terminalSafe(command))
			if loopbackURL(c.base) {
				fmt.Fprintf(w, "\n(%s is this machine: replace it with the address boxes reach the hub at.)\n", c.base)
			}
			return nil
		},
	}
	addHubFlags(cmd, &hf)
	cmd.Flags().StringVar(&site, "site", "", "the school or clinic the box is for")
	cmd.Flags().StringSliceVar(&channels, "channels", nil, "the channels the box receives, comma-separated")
	cmd.Flags().StringVar(&expires, "expires", "72h", "how long the token may wait to be used, e.g. 72h or 14d")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the token and its details as JSON")
	return cmd
}

// expiresIn is "3 days from now" for a token made for 72h a moment ago.
func expiresIn(t time.Time) string {
	now := time.Now()
	return humanize.RelTime(now, now.Add(time.Until(t).Round(time.Minute)), "ago", "from now")
}

// parseExpiry is time.ParseDuration that also takes whole days ("14d").
func parseExpiry(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err == nil && n > 0 && n <= 3650 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expires %q: give a positive duration such as 72h, 90m or 14d", s)
	}
	return d, nil
}

// tidyChannels trims, drops empties and duplicates, and sorts, as the hub
// stores them.
func tidyChannels(in []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, c := range in {
		if c = strings.TrimSpace(c); c != "" && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

func loopbackURL(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}
