package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"outpost/appliance"
)

// version is set by the release build (-ldflags "-X main.version=...").
var version = "dev"

// globals are the flags every verb shares.
type globals struct {
	data   string
	stdout io.Writer
	stderr io.Writer
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	appliance.Software = version
	root := &cobra.Command{
		Use:   "outpost",
		Short: "Offline-first course cache and LAN portal for schools and clinics",
		Long: `Outpost keeps courses, forms and records on a small box in a school or
clinic, serves them to phones and laptops on the local network, and syncs
with a hub whenever the internet link allows.

Start here:
  outpost demo                         try it: a box with a sample course
  outpost serve --data DIR             run the appliance daemon (its first start creates DIR)
  outpost content import --data DIR P  import a course pack (folder, .zip, .tar, .tar.zst)
  outpost hub --data DIR               run the hub boxes sync from
  outpost sync status                  how this box's sync is doing`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.data, "data", defaultDataDir(), "the node's data directory (database, content store, identity); only init, serve, hub and demo create one")
	root.AddCommand(
		newServeCmd(g),
		newInitCmd(g),
		newStatusCmd(g),
		newContentCmd(g),
		newDemoCmd(g),
		newLoadtestCmd(g),
		newHubCmd(g),
		newSyncCmd(g),
	)
	return root
}

// defaultDataDir is where a node keeps its state when --data is not given:
// /var/lib/outpost on an appliance (systemd's StateDirectory), else the
// user's data directory so a developer's `make run` needs no root.
func defaultDataDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "outpost", "node")
	}
	return "outpost-data"
}

func (g *globals) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// withNode adapts an administration verb's body to cobra: it opens the node
// in --data, runs fn, and closes the node whatever fn returned.
func (g *globals) withNode(fn func(cmd *cobra.Command, node *appliance.Node, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		node, err := g.openNode(cmd.Context())
		if err != nil {
			return err
		}
		defer node.Close()
		return fn(cmd, node, args)
	}
}

// printJSON writes v to stdout indented, for --json output.
func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// openNode opens the node in --data for an administration verb. Only
// init, serve, hub and demo create a node; every other verb refuses a directory
// that holds none, naming it.
func (g *globals) openNode(ctx context.Context) (*appliance.Node, error) {
	if err := appliance.CheckNode(g.data); err != nil {
		return nil, err
	}
	cfg, err := appliance.LoadConfig(g.data)
	if err != nil {
		return nil, err
	}
	return appliance.OpenExisting(ctx, cfg, g.logger())
}
