package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	cmd.AddCommand(newSyncNowCmd(g), newSyncStatusCmd(g), newSyncSetUpstreamCmd(g))
	return cmd
}

func newSyncSetUpstreamCmd(g *globals) *cobra.Command {
	var noCheck bool
	cmd := &cobra.Command{
		Use:   "set-upstream URL",
		Short: "Change the address of the hub this box syncs from (the same hub, moved)",
		Long: `Change the address of the hub this enrolled box syncs from, when the hub
has moved (a new host name, IP address or port). Enrolment is kept: the
site, the channels, where sync stands, and the hub's device ID the box
pinned. Before saving, it connects to the new address and refuses it unless
the hub there is the one the box enrolled with; with --no-check it saves
without connecting, and the next sync refuses any other hub all the same.

A running daemon uses the new address from its next pass ('outpost sync now'
starts one). To sync from a different hub, enrol again with a token from it.`,
		Example: `  outpost sync set-upstream https://hub.example.org:8443 --data /var/lib/outpost`,
		Args:    cobra.ExactArgs(1),
		RunE: g.withNode(func(cmd *cobra.Command, node *appliance.Node, args []string) error {
			old, err := upstream.LoadLink(node.Config.DataDir)
			if err != nil {
				return err
			}
			link, err := upstream.SetURL(cmd.Context(), node.Config.DataDir, node.Identity, args[0], !noCheck)
			if err != nil {
				return err
			}
			how := "checked: it is the hub this box enrolled with"
			if noCheck {
				how = "not checked; the next sync refuses any other hub"
			}
			fmt.Fprintf(g.stdout, "The box now syncs from %s (was %s); hub %s, %s.\n", link.URL, old.URL, link.HubID, how)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&noCheck, "no-check", false, "save the address without connecting to it first")
	return cmd
}

func newSyncNowCmd(g *globals) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "now",
		Short: "Sync with the hub now and report what this pass did",
		Long: `Run a sync pass now instead of waiting for the schedule, and report what
that pass did (blocks fetched, reused, patched; courses synced, removed).

If a daemon serves this data directory, it runs the pass and this command
waits for it (at most --wait; the pass goes on after that). The daemon is
found through DATA/control.sock, whatever address its portal listens on.
If no daemon runs, the pass runs in this process. Only one pass runs per
data directory at a time, across processes.`,
		Args: cobra.NoArgs,
		RunE: g.withNode(func(cmd *cobra.Command, node *appliance.Node, _ []string) error {
			if wait <= 0 {
				return errors.New("--wait must be a positive duration, e.g. 10m")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), wait)
			defer cancel()
			rep, err := appliance.RequestSyncPass(ctx, node.Config.DataDir)
			switch {
			case err == nil:
				fmt.Fprint(g.stdout, "The daemon ran a pass. ")
				return printPassReport(g.stdout, rep)
			case errors.Is(err, context.DeadlineExceeded) && cmd.Context().Err() == nil:
				fmt.Fprintf(g.stdout, "The daemon's pass is still running after %s; follow it with `outpost sync status`.\n", wait)
				return nil
			case !errors.Is(err, appliance.ErrNoDaemon):
				return err
			}
			c, err := node.SyncClient()
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "No daemon serves this data directory; syncing in this process.")
			r, err := c.RunPass(cmd.Context())
			if r.Result == upstream.ResultBusy {
				return err
			}
			if perr := printPassReport(g.stdout, &r); perr != nil {
				return perr
			}
			return err
		}),
	}
	cmd.Flags().DurationVar(&wait, "wait", 10*time.Minute, "how long to wait for the daemon's pass before leaving it to run")
	return cmd
}

// printPassReport prints what one pass did. A pass that failed is an
// error, so scripts see it in the exit status.
func printPassReport(w io.Writer, rep *upstream.PassReport) error {
	if rep.Result == upstream.ResultBusy {
		return errors.New(rep.Error)
	}
	wk := rep.Work
	took := (time.Duration(rep.Seconds * float64(time.Second))).Round(time.Millisecond)
	verb := "Done"
	if rep.Error != "" {
		verb = "Stopped"
	}
	fmt.Fprintf(w, "%s in %s: %d blocks fetched (%s), %d reused from the box, %d patched; %s synced, %s removed.\n",
		verb, took, wk.BlocksFetched, humanize.IBytes(uint64(wk.BytesFetched)), wk.BlocksLocal+wk.BlocksShifted, wk.BlocksPatched,
		plural(wk.CoursesSynced, "course"), plural(wk.CoursesRemoved, "course"))
	if rep.Error != "" {
		return errors.New(rep.Error)
	}
	return nil
}

// passOutcome says how a pass ended, in words.
func passOutcome(result string) string {
	switch result {
	case upstream.StateIdle:
		return "done"
	case upstream.StateError:
		return "failed"
	}
	return result
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	if strings.HasSuffix(unit, "s") {
		return fmt.Sprintf("%d %ses", n, unit)
	}
	return fmt.Sprintf("%d %ss", n, unit)
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
	if lp := st.LastPass; lp != nil {
		wk := lp.Work
		fmt.Fprintf(w, "Last pass:\t%s in %s: %d blocks fetched (%s), %d reused, %d patched; %s synced, %s removed\n",
			passOutcome(lp.Result), (time.Duration(lp.Seconds * float64(time.Second))).Round(time.Millisecond), wk.BlocksFetched,
			humanize.IBytes(uint64(wk.BytesFetched)), wk.BlocksLocal+wk.BlocksShifted, wk.BlocksPatched,
			plural(wk.CoursesSynced, "course"), plural(wk.CoursesRemoved, "course"))
	}
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
	fmt.Fprintf(w, "Totals:\t%s (%d failed), %s synced, %d removed\n", plural(t.Passes, "pass"), t.FailedPasses, plural(t.CoursesSynced, "course"), t.CoursesRemoved)
	fmt.Fprintf(w, "\tblocks: %d fetched, %d reused in place, %d found moved, %d from patches\n", t.BlocksFetched, t.BlocksLocal, t.BlocksShifted, t.BlocksPatched)
	fmt.Fprintf(w, "\treceived %s (%s of it patches)\n", humanize.IBytes(uint64(t.BytesFetched)), humanize.IBytes(uint64(t.PatchBytes)))
	fmt.Fprintf(w, "\tfaults: %d blocks failed verification and were fetched again, %d truncated or corrupt responses\n", t.HashMismatches, t.BadStreams)
	w.Flush()
	return b.String()
}
