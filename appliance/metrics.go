package appliance

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "outpost_http_requests_total",
	Help: "HTTP requests served on the LAN port, by status class.",
}, []string{"code"})

// countRequests counts responses by status class (2xx, 3xx…) rather than by
// route: the label set stays tiny, and the cost on the media hot path is one
// atomic add. The wrapper keeps io.ReaderFrom so sendfile still applies.
func countRequests(next http.Handler) http.Handler {
	classes := [6]prometheus.Counter{}
	for i := 1; i < 6; i++ {
		classes[i] = httpRequests.WithLabelValues(strconv.Itoa(i) + "xx")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		if c := sw.code / 100; c >= 1 && c <= 5 {
			classes[c].Inc()
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// ReadFrom lets http.ServeContent reach the connection's sendfile path.
func (s *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := s.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{s.ResponseWriter}, r)
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (n *Node) metricsHandler() http.Handler {
	reg := n.reg
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		httpRequests,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "outpost_courses",
			Help: "Courses visible on the portal.",
		}, func() float64 {
			var c float64
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n.DB.QueryRowContext(ctx, `SELECT count(*) FROM courses`).Scan(&c)
			return c
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "outpost_store_bytes",
			Help: "Bytes of course content stored, deduplicated.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			b, _ := n.Store.UsedBytes(ctx)
			return float64(b)
		}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// registerOnce adds a collector to the node's registry; a collector that is
// already there (a sync client made again) is left as it is.
func (n *Node) registerOnce(c prometheus.Collector) {
	if err := n.reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			n.Log.Warn("register metrics", "err", err)
		}
	}
}
