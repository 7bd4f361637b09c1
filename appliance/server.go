package appliance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"outpost/ui/web"
)

// Serve runs the LAN HTTP server on ln until ctx is cancelled, then shuts
// down gracefully: in-flight requests (a video segment, a download) get
// shutdownGrace to finish. ready is called once the portal answers.
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
	mux.Handle("/", portal)

	srv := &http.Server{
		Handler:           countRequests(mux),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		// No WriteTimeout: a phone on weak Wi-Fi may take minutes for a video.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	isReady.Store(true)
	if ready != nil {
		ready()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

const shutdownGrace = 10 * time.Second
