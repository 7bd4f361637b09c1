package appliance

import (
	"context"
	"errors"
	"time"

	"outpost/sync/hub"
	"outpost/sync/upstream"
)

// Software is this build's version, sent to the hub with every request.
var Software = "dev"

// syncService owns the box's side of sync for the daemon: it enrols first
// if the node was given a token and is not enrolled yet (retrying while the
// hub is unreachable, so a box installed offline enrols the day the link
// comes up), then runs the sync loop.
type syncService struct {
	n *Node
	// token is the enrolment token, held here only (not in the node's
	// config) until enrolment spends it.
	token string
}

func (s *syncService) Serve(ctx context.Context) error {
	n := s.n
	delay := 10 * time.Second
	for {
		link, err := upstream.LoadLink(n.Config.DataDir)
		if err == nil {
			s.forgetToken()
			c := n.newSyncClient(link)
			n.setSync(c)
			return c.Serve(ctx)
		}
		if !errors.Is(err, upstream.ErrNotEnrolled) {
			return err
		}
		_, err = upstream.Enrol(ctx, n.Config.DataDir, n.Identity, n.Config.Upstream, s.token, n.Config.HubID, Software)
		if err == nil {
			n.Log.Info("enrolled with the hub", "upstream", n.Config.Upstream)
			continue
		}
		n.Log.Warn("enrolment failed; retrying", "upstream", n.Config.Upstream, "err", err, "in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, 10*time.Minute)
	}
}

// forgetToken drops the enrolment token once the box is enrolled: from
// memory, and from DATA/outpost.json if an image put it there.
func (s *syncService) forgetToken() {
	s.token = ""
	if err := forgetEnrolToken(s.n.Config.DataDir); err != nil {
		s.n.Log.Warn("the spent enrolment token stays in the config file", "err", err)
	}
}

// SyncOptions is what this node's sync client is built from. Tests set
// Hooks (or another Identity) before upstream.New.
func (n *Node) SyncOptions() upstream.Options {
	interval, err := time.ParseDuration(n.Config.SyncInterval)
	if err != nil || interval <= 0 {
		interval = 5 * time.Minute
	}
	return upstream.Options{DataDir: n.Config.DataDir, DB: n.DB, Store: n.Store, Catalog: n.Catalog,
		Library: n.Library, Identity: n.Identity, Log: n.Log, Software: Software, Interval: interval}
}

func (n *Node) newSyncClient(link *upstream.Link) *upstream.Client {
	return upstream.New(n.SyncOptions(), link)
}

// HubOptions is what a hub over this node is built from, its admin token
// loaded (made on first start).
func (n *Node) HubOptions() (hub.Options, error) {
	tok, err := hub.LoadOrCreateAdminToken(n.Config.DataDir)
	if err != nil {
		return hub.Options{}, err
	}
	return hub.Options{DataDir: n.Config.DataDir, DB: n.DB, Store: n.Store, Catalog: n.Catalog, Library: n.Library,
		Identity: n.Identity, AdminToken: tok, Log: n.Log}, nil
}

// SyncClient returns a sync client for an enrolled node, for verbs that
// run a pass in their own process.
func (n *Node) SyncClient() (*upstream.Client, error) {
	link, err := upstream.LoadLink(n.Config.DataDir)
	if err != nil {
		return nil, err
	}
	return n.newSyncClient(link), nil
}

func (n *Node) setSync(c *upstream.Client) {
	n.syncMu.Lock()
	n.sync = c
	n.syncMu.Unlock()
	for _, col := range c.Collectors() {
		n.registerOnce(col)
	}
}

func (n *Node) syncClient() *upstream.Client {
	n.syncMu.Lock()
	defer n.syncMu.Unlock()
	return n.sync
}
