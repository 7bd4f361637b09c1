// Command outpost is the Outpost node: the appliance daemon, the demo, and
// the administration verbs, in one static binary.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		// An error may quote a peer (a hub's or a box's message) or a
		// pack: the last sink before the terminal.
		fmt.Fprintln(os.Stderr, "outpost:", terminalSafe(err.Error()))
		os.Exit(1)
	}
}
