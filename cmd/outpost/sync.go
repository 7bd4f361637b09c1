package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"outpost/appliance"
	"outpost/sync/upstream"
)

func newSyncCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "See and start the box's sync with its hub",
	}
	cmd.AddCommand(newSyncNowCmd(g), newSyncStatusCmd(g))
	return cmd
}

func newSyncNowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "now",
		Short: "Sync with the hub now instead of waiting for the schedule",
		Long: `Ask the running daemon for a sync pass now. If no daemon runs on this
box, run one pass in this process and report how it went.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := appliance.LoadConfig(g.data)
			if err != nil {
				return err
			}
			if kickDaemon(cmd.Context(), cfg.Listen) == nil {
				fmt.Fprintln(g.stdout, "The daemon is syncing now; follow it with `outpost sync status`.")
				return nil
			}
			node, err := appliance.Open(cmd.Context(), cfg, g.logger())
			if err != nil {
				return err
			}
			defer node.Close()
			c, err := node.SyncClient()
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "No daemon answered; syncing in this process.")
			start := time.Now()
			err = c.Pass(cmd.Context())
			st := c.Status()
			fmt.Fprintf(g.stdout, "%s in %s: %d blocks fetched (%s), %d reused from the box, %d patched.\n",
				map[bool]string{true: "Done", false: "Stopped"}[err == nil], time.Since(start).Round(time.Millisecond),
				st.Totals.BlocksFetched, humanize.IBytes(uint64(st.Totals.BytesFetched)), st.Totals.BlocksLocal+st.Totals.BlocksShifted, st.Totals.BlocksPatched)
			return err
		},
	}
}

// kickDaemon asks a daemon on this machine to sync. The address comes from
// the node's config; an unspecified host means loopback.
func kickDaemon(ctx context.Context, listen string) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+net.JoinHostPort(host, port)+"/api/sync/now", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return errors.New(strings.TrimSpace(string(b)))
	}
	return nil
}

func newSyncStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the sync state: last success, queue, throughput, errors",
		Args:  cobra.NoArgs,
		RunE: g.withNode(func(cmd *cobra.Command, node *appliance.Node, _ []string) error {
			st, err := upstream.ReadStatus(cmd.Context(), node.DB, node.Config.DataDir)
			if err != nil {
				return err
			}
			if asJSON {
				return g.printJSON(st)
			}
			fmt.Fprint(g.stdout, formatSyncStatus(st, time.Now()))
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func formatSyncStatus(st *upstream.Status, now time.Time) string {
	var b bytes.Buffer
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return fmt.Sprintf("%s (%s)", humanize.RelTime(t, now, "ago", "from now"), t.Local().Format("2006-01-02 15:04:05"))
	}
	// The message, the last error, the site and the channels may quote
	// the hub: made safe for a terminal.
	fmt.Fprintf(w, "State:\t%s\n", st.State)
	if st.Message != "" {
		fmt.Fprintf(w, "\t%s\n", terminalSafe(st.Message))
	}
	if st.State == upstream.StateNotEnrolled {
		w.Flush()
		return b.String()
	}
	fmt.Fprintf(w, "Hub:\t%s (site %s, channels %s)\n", terminalSafe(st.Hub), terminalSafe(st.Site), strings.Join(terminalSafeAll(st.Channels), ", "))
	fmt.Fprintf(w, "Last success:\t%s\n", ago(st.LastSuccess))
	fmt.Fprintf(w, "Last attempt:\t%s\n", ago(st.LastAttempt))
	if !st.NextAttempt.IsZero() {
		fmt.Fprintf(w, "Next attempt:\t%s\n", ago(st.NextAttempt))
	}
	fmt.Fprintf(w, "Queue:\t%d files, %s\n", st.QueueFiles, humanize.IBytes(uint64(max(st.QueueBytes, 0))))
	if st.Throughput > 0 {
		fmt.Fprintf(w, "Throughput:\t%s/s", humanize.IBytes(uint64(st.Throughput)))
		if st.ETASeconds > 0 && st.QueueBytes > 0 {
			fmt.Fprintf(w, ", about %s left", (time.Duration(st.ETASeconds) * time.Second).Round(time.Second))
		}
		fmt.Fprintln(w)
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "Last error:\t%s\n", terminalSafe(st.LastError))
	}
	t := st.Totals
	fmt.Fprintf(w, "Totals:\t%d passes (%d failed), %d courses synced, %d removed\n", t.Passes, t.FailedPasses, t.CoursesSynced, t.CoursesRemoved)
	fmt.Fprintf(w, "\tblocks: %d fetched, %d reused in place, %d found moved, %d from patches\n", t.BlocksFetched, t.BlocksLocal, t.BlocksShifted, t.BlocksPatched)
	fmt.Fprintf(w, "\treceived %s (%s of it patches)\n", humanize.IBytes(uint64(t.BytesFetched)), humanize.IBytes(uint64(t.PatchBytes)))
	fmt.Fprintf(w, "\tfaults: %d blocks failed verification and were fetched again, %d truncated or corrupt responses\n", t.HashMismatches, t.BadStreams)
	w.Flush()
	return b.String()
}
