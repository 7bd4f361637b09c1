package appliance

import (
	"context"
	"net"

	"outpost/appliance/connguard"
	"outpost/sync/hub"
)

// ServeHub runs h's HTTPS API on ln until ctx ends, behind the same
// connection guard as the portal with the hub's limits (connguard.Hub,
// overridden by n.HubLimits): boxes and publishers come over thin links,
// so bodies and responses are held to a minimum rate, never to an
// absolute deadline. ready, if set, is called once it accepts. The
// server's connection metrics join the hub's /metrics.
func (n *Node) ServeHub(ctx context.Context, h *hub.Hub, ln net.Listener, ready func()) error {
	srv := connguard.New("hub", h.Handler(), n.HubLimits.WithDefaults(connguard.Hub()), h.TLSConfig(), n.Log)
	if err := h.RegisterMetrics(srv.Collectors()...); err != nil {
		n.Log.Warn("hub connection metrics", "err", err)
	}
	return srv.Serve(ctx, ln, ready)
}
