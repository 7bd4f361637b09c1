package appliance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/thejerf/suture/v4"

	"outpost/appliance/connguard"
	"outpost/sync/upstream"
	"outpost/ui/web"
)

// Serve runs the daemon until ctx is cancelled: the LAN HTTP server on ln
// and, when the node has an upstream, the sync service, each under one
// supervisor that restarts a failed service with backoff. On cancel the
// HTTP server shuts down gracefully: in-flight requests (a video segment, a
// download) get connguard's ShutdownGrace to finish. ready is called once
// the portal answers. The server's deadlines and connection caps are
// connguard.Portal, overridden by n.PortalLimits.
func (n *Node) Serve(ctx context.Context, ln net.Listener, ready func()) error {
	portal, err := web.New(web.Options{
		Courses:         n.Catalog,
		Objects:         n.Store,
		DefaultLanguage: n.Config.Language,
		Logger:          n.Log,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	sup := suture.New("outpost", suture.Spec{
		EventHook: func(e suture.Event) { n.Log.Warn("service event", "event", e.String()) },
		Timeout:   n.PortalLimits.WithDefaults(connguard.Portal()).ShutdownGrace + 5*time.Second,
	})
	ctl, err := n.listenControl(ctx)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer ctl.Close()
	httpErr := make(chan error, 1)
	sup.Add(&httpService{n: n, ln: ln, portal: portal, ready: ready, failed: httpErr})
	sup.Add(&controlService{n: n, ln: ctl})
	if _, err := upstream.LoadLink(n.Config.DataDir); err == nil || n.Config.Upstream != "" {
		// The token moves to the service, which forgets it once spent.
		sup.Add(&syncService{n: n, token: n.Config.EnrolToken})
	}
	n.Config.EnrolToken = ""
	supCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := sup.ServeBackground(supCtx)
	select {
	case err := <-httpErr:
		// The listener is gone (closed under us): nothing left to serve.
		cancel()
		<-done
		return fmt.Errorf("serve: %w", err)
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	}
}

// httpService is the LAN portal as a supervised service. It cannot be
// restarted (it owns a listener it was handed), so a failure ends the
// daemon through failed.
type httpService struct {
	n      *Node
	ln     net.Listener
	portal http.Handler
	ready  func()
	failed chan<- error
}

func (s *httpService) Serve(ctx context.Context) error {
	n := s.n
	var isReady atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !isReady.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		if err := n.DB.PingContext(r.Context()); err != nil {
			http.Error(w, "database unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", n.metricsHandler())
	mux.Handle("/", s.portal)

	srv := connguard.New("portal", countRequests(mux), n.PortalLimits.WithDefaults(connguard.Portal()), nil, n.Log)
	for _, c := range srv.Collectors() {
		n.registerOnce(c)
	}
	err := srv.Serve(ctx, s.ln, func() {
		isReady.Store(true)
		if s.ready != nil {
			s.ready()
		}
	})
	if err != nil && ctx.Err() == nil {
		// The listener is gone (closed under us): nothing left to serve.
		s.failed <- err
		return suture.ErrDoNotRestart
	}
	return err
}
