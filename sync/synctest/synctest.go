// Package synctest starts real hubs and boxes in one process, on 127.0.0.1
// and in temporary directories, for the sync end-to-end tests and the sync
// benchmark. Nothing in it is a fake: each node is the composition the
// daemon uses, with its own SQLite database, block store and TLS identity.
package synctest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"outpost/appliance"
	"outpost/sync/hub"
	"outpost/sync/upstream"
)

// Hub is a running hub.
type Hub struct {
	Node *appliance.Node
	Hub  *hub.Hub
	Addr string // 127.0.0.1:PORT
	stop context.CancelFunc
	done chan error
}

// URL is the hub's base URL.
func (h *Hub) URL() string { return "https://" + h.Addr }

// StartHub opens (or reopens) a hub in dir and serves it on addr
// ("127.0.0.1:0" for any port; the old address to restart in place).
func StartHub(ctx context.Context, dir, addr string, hooks *hub.Hooks, log *slog.Logger) (*Hub, error) {
	return StartHubClock(ctx, dir, addr, hooks, log, nil)
}

// StartHubClock is StartHub with the hub's clock given (nil: time.Now).
func StartHubClock(ctx context.Context, dir, addr string, hooks *hub.Hooks, log *slog.Logger, now func() time.Time) (*Hub, error) {
	return StartHubWith(ctx, dir, addr, log, func(o *hub.Options) { o.Hooks, o.Now = hooks, now })
}

// StartHubWith is StartHub with the hub's options changed by configure
// (hooks, clock, patch builders, cache bound) before the hub is built.
func StartHubWith(ctx context.Context, dir, addr string, log *slog.Logger, configure func(*hub.Options)) (*Hub, error) {
	node, err := appliance.Open(ctx, appliance.DefaultConfig(dir), log)
	if err != nil {
		return nil, err
	}
	o, err := node.HubOptions()
	if err != nil {
		node.Close()
		return nil, err
	}
	if configure != nil {
		configure(&o)
	}
	hb, err := hub.New(o)
	if err != nil {
		node.Close()
		return nil, err
	}
	var ln net.Listener
	for range 50 { // a restart may find the port in TIME_WAIT briefly
		ln, err = net.Listen("tcp", addr)
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		node.Close()
		return nil, fmt.Errorf("start hub: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	h := &Hub{Node: node, Hub: hb, Addr: ln.Addr().String(), stop: cancel, done: make(chan error, 1)}
	go func() { h.done <- node.ServeHub(sctx, hb, ln, nil) }()
	return h, nil
}

// Stop shuts the hub down and closes its database.
func (h *Hub) Stop() error {
	h.stop()
	err := <-h.done
	return errors.Join(err, h.Node.Close())
}

// Software is the version test boxes report to the hub.
const Software = "test"

// Box is an enrolled box.
type Box struct {
	Node   *appliance.Node
	Client *upstream.Client
}

// StartBox opens a box in dir, enrols it at hubURL with token (unless it
// already is) and returns it ready for passes.
func StartBox(ctx context.Context, dir, hubURL, token string, hooks *upstream.Hooks, log *slog.Logger) (*Box, error) {
	node, err := appliance.Open(ctx, appliance.DefaultConfig(dir), log)
	if err != nil {
		return nil, err
	}
	link, err := upstream.Enrol(ctx, dir, node.Identity, hubURL, token, "", Software)
	if err != nil {
		node.Close()
		return nil, err
	}
	o := node.SyncOptions()
	o.Hooks, o.Software = hooks, Software
	return &Box{Node: node, Client: upstream.New(o, link)}, nil
}

// Through returns a client for the same box that reaches the hub at
// another address (a link emulator in front of the hub).
func (b *Box) Through(url string, hooks *upstream.Hooks, log *slog.Logger) (*upstream.Client, error) {
	link, err := upstream.LoadLink(b.Node.Config.DataDir)
	if err != nil {
		return nil, err
	}
	l := *link
	l.URL = url
	o := b.Node.SyncOptions()
	o.Hooks, o.Software = hooks, Software
	if log != nil {
		o.Log = log
	}
	return upstream.New(o, &l), nil
}

// Close closes the box's database.
func (b *Box) Close() error { return b.Node.Close() }
