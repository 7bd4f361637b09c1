package connguard

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// Guard is one server's caps, windows and counters.
type Guard struct {
	name    string
	limits  Limits
	caps    *caps
	metrics *metrics
	refusal map[string][]byte // nil on TLS: a plain-text answer means nothing there
}

// Server is an http.Server behind a Guard.
type Server struct {
	g   *Guard
	srv *http.Server
	tls *tls.Config
}

// New builds the server for h. name ("portal", "hub") labels its metrics;
// l must be complete (Limits.WithDefaults); tlsConf is nil for plain HTTP.
func New(name string, h http.Handler, l Limits, tlsConf *tls.Config, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if budget := descriptorBudget(); budget > 0 && budget < l.Total {
		l.Total = budget
	}
	g := &Guard{name: name, limits: l}
	g.caps = newCaps(l)
	g.metrics = newMetrics(name, g.caps)
	// On the internet a TLS server sees handshake noise from scanners all
	// day; on the LAN, what net/http logs (accept errors when descriptors
	// run out) is worth a warning.
	level := slog.LevelWarn
	if tlsConf != nil {
		level = slog.LevelDebug
	} else {
		g.refusal = refusals()
	}
	srv := &http.Server{
		Handler:           g.bodies(h),
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ConnContext:       connContext,
		// No ReadTimeout or WriteTimeout: both are absolute, and would cut
		// a video to a phone on weak Wi-Fi or an upload over a thin link
		// however steadily it moves. The body and write windows bound
		// them instead.
		ErrorLog: slog.NewLogLogger(log.Handler(), level),
	}
	return &Server{g: g, srv: srv, tls: tlsConf}
}

// Limits are the limits the server runs with, the total cap lowered to
// the descriptor limit.
func (s *Server) Limits() Limits { return s.g.limits }

// Collectors are the server's connection metrics, for the registry its
// /metrics serves.
func (s *Server) Collectors() []prometheus.Collector { return s.g.metrics.collectors() }

// Serve serves on ln until ctx ends, then shuts down gracefully: requests
// in flight get ShutdownGrace, after which the connections still open
// (stalled clients, mostly) are closed. ready, if set, is called once the
// server accepts. Request contexts derive from ctx. An error means the
// listener failed (or the shutdown did); nil, that ctx ended.
func (s *Server) Serve(ctx context.Context, ln net.Listener, ready func()) error {
	var l net.Listener = &listener{Listener: ln, g: s.g}
	if s.tls != nil {
		l = tls.NewListener(l, s.tls)
	}
	s.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(l) }()
	if ready != nil {
		ready()
	}
	select {
	case err := <-errc:
		// The listener failed: the connections already served go too, so
		// no goroutine outlives Serve.
		s.srv.Close()
		return fmt.Errorf("%s: %w", s.g.name, err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), s.g.limits.ShutdownGrace)
	defer cancel()
	var shutErr error
	if err := s.srv.Shutdown(shutCtx); errors.Is(err, context.DeadlineExceeded) {
		s.srv.Close()
	} else if err != nil {
		shutErr = fmt.Errorf("%s: shutdown: %w", s.g.name, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: %w", s.g.name, err)
	}
	return shutErr
}

// WithDefaults fills l's zero fields from d (Portal or Hub).
func (l Limits) WithDefaults(d Limits) Limits { return l.orDefaults(d) }

// Reasons a request or connection is cut, as counted in
// outpost_conn_dropped_total.
const (
	reasonWriteStall   = "write_stall"
	reasonBodyStall    = "body_stall"
	reasonBodyTooLarge = "body_too_large"
)

type metrics struct {
	rejected *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	open     prometheus.GaugeFunc
}

func newMetrics(name string, c *caps) *metrics {
	labels := prometheus.Labels{"server": name}
	m := &metrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "outpost_conn_rejected_total",
			Help:        "Connections refused on accept: client_cap (one client holds its share), total_cap (the server holds all it can).",
			ConstLabels: labels,
		}, []string{"reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "outpost_conn_dropped_total",
			Help:        "Requests cut for a slow or greedy client: write_stall (stopped reading a response), body_stall (trickled a request body), body_too_large (refused unread).",
			ConstLabels: labels,
		}, []string{"reason"}),
		open: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "outpost_conn_open",
			Help:        "Connections open now.",
			ConstLabels: labels,
		}, func() float64 { return float64(c.count()) }),
	}
	// Every series exists from the start, so a rate() sees the first one.
	for _, r := range []string{reasonClientCap, reasonTotalCap} {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range []string{reasonWriteStall, reasonBodyStall, reasonBodyTooLarge} {
		m.dropped.WithLabelValues(r)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.rejected, m.dropped, m.open}
}
