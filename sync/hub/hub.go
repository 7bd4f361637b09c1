// Package hub is the root of the sync tree: it accepts published courses
// and box enrolments, and answers the sync API (sync/wire) that boxes call
// over mutual TLS. A hub is an ordinary node (the same catalog and block
// store as a box) plus the tables that say which box gets what.
package hub

import (
	"crypto/subtle"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"outpost/appliance/atomicfile"
	"outpost/appliance/identity"
	"outpost/content/blockstore"
	"outpost/content/catalog"
	"outpost/content/library"
	"outpost/sync/wire"
)

// Options are what a hub is built from; the composition root fills them
// from an opened node.
type Options struct {
	DataDir    string
	DB         *sql.DB
	Store      *blockstore.Store
	Catalog    *catalog.Catalog
	Library    *library.Library
	Identity   *identity.Identity
	AdminToken string
	Log        *slog.Logger
	// Now is the hub's clock (token expiry, last-seen); tests move it.
	Now func() time.Time
	// Hooks observe or disturb the hub in tests; nil in production.
	Hooks *Hooks
	// PatchBuilds is how many patches may be built at once (0: sized to
	// the host, see defaultPatchBuilds). Each takes ~128 MiB and a CPU.
	PatchBuilds int
	// PatchWait is how long a patch request waits for a free builder
	// before the hub answers busy (0: 30 s; negative: not at all).
	PatchWait time.Duration
	// PatchCacheBytes bounds the patches kept on disk (0: 2 GiB); the
	// least recently served go first, never one being served.
	PatchCacheBytes int64
}

// DefaultPatchCacheBytes is the patch cache's bound unless told otherwise:
// patches carry only changed bytes, so 2 GiB holds the patches of many
// updates, and a hub short of disk can be given less.
const DefaultPatchCacheBytes = 2 << 30

// defaultPatchWait is well under the 2 minutes a box waits for an answer's
// header, and long enough for a few 8 MiB segments to be built ahead.
const defaultPatchWait = 30 * time.Second

// Hooks let tests count what the hub serves and inject faults.
type Hooks struct {
	// BlockServed is called for every block just before it is written to
	// a box: called after, it could race with the box reporting the block
	// stored, and a test would see a block served after it was stored.
	BlockServed func(file string, index int)
	// CorruptBlock, if it returns true, makes the hub send the block with
	// one byte flipped (a bad disk, a meddling middlebox).
	CorruptBlock func(file string, index int) bool
	// AbortBefore, if it returns true, drops the connection before the
	// block is sent (a hub that crashes mid-stream).
	AbortBefore func(file string, index int) bool
	// MangleFrame, if it returns true, flips a byte of the block's
	// compressed frame (a truncated or corrupt zstd stream).
	MangleFrame func(file string, index int) bool
	// PatchBuild is called when a patch build starts, holding one of the
	// builders: a test that blocks in it keeps the builder busy.
	PatchBuild func(from, to string, seg int)
	// PatchWait is called when a patch request finds every builder busy
	// and starts waiting for one.
	PatchWait func(from, to string, seg int)
}

// Hub serves the sync and admin APIs.
type Hub struct {
	dataDir    string
	db         *sql.DB
	store      *blockstore.Store
	catalog    *catalog.Catalog
	library    *library.Library
	id         *identity.Identity
	adminToken string
	log        *slog.Logger
	now        func() time.Time
	hooks      Hooks
	patches    *patchCache
	metrics    *metrics

	offerMu sync.Mutex
	offers  map[string]map[string][]string // "course\x00version" → its Patches

	uploadsMu sync.Mutex
	uploads   map[string]*sync.Mutex // per upload file; a few per publish, never pruned

	sources *sourceLimiter
	failLog *failureLog
}

// New builds a hub over an opened node's parts.
func New(o Options) (*Hub, error) {
	if o.AdminToken == "" {
		return nil, errors.New("new hub: no admin token")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Hub{dataDir: o.DataDir, db: o.DB, store: o.Store, catalog: o.Catalog, library: o.Library, id: o.Identity,
		adminToken: o.AdminToken, log: o.Log, now: o.Now, metrics: newMetrics(), uploads: map[string]*sync.Mutex{}, offers: map[string]map[string][]string{},
		sources: newSourceLimiter(o.Now), failLog: newFailureLog()}
	if o.Hooks != nil {
		h.hooks = *o.Hooks
	}
	if o.PatchBuilds <= 0 {
		o.PatchBuilds = defaultPatchBuilds()
	}
	switch {
	case o.PatchWait == 0:
		o.PatchWait = defaultPatchWait
	case o.PatchWait < 0:
		o.PatchWait = 0
	}
	if o.PatchCacheBytes <= 0 {
		o.PatchCacheBytes = DefaultPatchCacheBytes
	}
	pc, err := newPatchCache(patchCacheConfig{
		dir: filepath.Join(o.DataDir, "hub", "patches"), store: o.Store, builds: o.PatchBuilds, wait: o.PatchWait,
		limit: o.PatchCacheBytes, log: o.Log, onBuild: h.hooks.PatchBuild, onWait: h.hooks.PatchWait, metrics: h.metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("new hub: %w", err)
	}
	h.patches = pc
	h.log.Debug("hub limits", "patch_builds", o.PatchBuilds, "patch_wait", o.PatchWait, "patch_cache_bytes", o.PatchCacheBytes)
	return h, nil
}

// DeviceID is the hub's identity, which boxes pin.
func (h *Hub) DeviceID() string { return h.id.DeviceID.String() }

// LoadOrCreateAdminToken returns the hub's admin token, kept in
// DATA/hub/admin-token (mode 0600), creating it on first start.
func LoadOrCreateAdminToken(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "hub", "admin-token")
	if b, err := os.ReadFile(path); err == nil {
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	tok, err := wire.NewTokenSecret()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	if err := atomicfile.Write(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return tok, nil
}

// Handler is the hub's whole HTTP API.
func (h *Hub) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+wire.PathEnrol, h.handleEnrol)
	mux.Handle("GET "+wire.PathChanges, h.device(h.handleChanges))
	mux.Handle("POST "+wire.PathFiles, h.device(h.handleFiles))
	mux.Handle("POST "+wire.PathBlocks, h.device(h.handleBlocks))
	mux.Handle("GET "+wire.PathPatch, h.device(h.handlePatch))
	h.adminRoutes(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := h.db.PingContext(r.Context()); err != nil {
			// The cause is for the operator's log, not for whoever asks.
			h.log.Error("health check: database unavailable", "err", err)
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	// Metrics say how many boxes sync, what they fetch and how the process
	// fares: not for strangers. On the sync port they need the admin
	// token; MetricsHandler serves them on a listener of their own.
	mux.Handle("GET /metrics", h.admin(h.MetricsHandler().ServeHTTP))
	return mux
}

// MetricsHandler serves the hub's Prometheus metrics without any check,
// for a listener only the operator reaches (outpost hub --metrics-listen).
func (h *Hub) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(h.metrics.reg, promhttp.HandlerOpts{})
}

// TLSConfig is the sync API's side of mutual TLS, for the server the
// composition root builds around Handler.
func (h *Hub) TLSConfig() *tls.Config { return wire.ServerTLS(h.id.Cert) }

// RegisterMetrics adds collectors (the server's connection counts) to what
// the hub's /metrics serves.
func (h *Hub) RegisterMetrics(cs ...prometheus.Collector) error {
	var errs []error
	for _, c := range cs {
		if err := h.metrics.reg.Register(c); err != nil {
			errs = append(errs, fmt.Errorf("hub metrics: %w", err))
		}
	}
	return errors.Join(errs...)
}

// checkAdmin compares the bearer token in constant time.
func (h *Hub) checkAdmin(r *http.Request) bool {
	const prefix = "Bearer "
	a := r.Header.Get("Authorization")
	if len(a) <= len(prefix) || a[:len(prefix)] != prefix {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(a[len(prefix):]), []byte(h.adminToken)) == 1
}

type metrics struct {
	reg           *prometheus.Registry
	blocks        *prometheus.CounterVec
	blockBytes    *prometheus.CounterVec
	patches       prometheus.Counter
	patchBytes    prometheus.Counter
	patchBuilt    prometheus.Counter
	requests      *prometheus.CounterVec
	changesServed prometheus.Counter
	refused       *prometheus.CounterVec
	patchBusy     prometheus.Counter
	patchBuilding prometheus.Gauge
	patchCache    prometheus.Gauge
	patchPruned   prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg:           prometheus.NewRegistry(),
		blocks:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "outpost_hub_blocks_served_total", Help: "Blocks sent to boxes, by encoding."}, []string{"encoding"}),
		blockBytes:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "outpost_hub_block_bytes_total", Help: "Block payload bytes sent, by encoding."}, []string{"encoding"}),
		patches:       prometheus.NewCounter(prometheus.CounterOpts{Name: "outpost_hub_patches_served_total", Help: "Patch segments sent."}),
		patchBytes:    prometheus.NewCounter(prometheus.CounterOpts{Name: "outpost_hub_patch_bytes_total", Help: "Patch bytes sent."}),
		patchBuilt:    prometheus.NewCounter(prometheus.CounterOpts{Name: "outpost_hub_patches_built_total", Help: "Patch segments computed (the rest came from the cache)."}),
		requests:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "outpost_hub_sync_requests_total", Help: "Sync API requests by path and outcome."}, []string{"path", "code"}),
		changesServed: prometheus.NewCounter(prometheus.CounterOpts{Name: "outpost_hub_changes_served_total", Help: "Changes messages sent."}),
		refused:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "outpost_hub_refused_total", Help: "Requests refused before any work, by reason (no certificate, unknown device, bad token, wrong admin token, rate limited)."}, []string{"reason"}),
		patchBusy:     prometheus.NewCounter(prometheus.CounterOpts{Name: "outpost_hub_patch_busy_total", Help: "Patch requests answered busy: every builder stayed busy while they waited."}),
		patchBuilding: prometheus.NewGauge(prometheus.GaugeOpts{Name: "outpost_hub_patch_builds_running", Help: "Patch segments being built now."}),
		patchCache:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "outpost_hub_patch_cache_bytes", Help: "Bytes of patches kept on disk."}),
		patchPruned:   prometheus.NewCounter(prometheus.CounterOpts{Name: "outpost_hub_patch_cache_pruned_total", Help: "Cached patches deleted to keep the cache within its bound."}),
	}
	m.reg.MustRegister(m.blocks, m.blockBytes, m.patches, m.patchBytes, m.patchBuilt, m.requests, m.changesServed,
		m.refused, m.patchBusy, m.patchBuilding, m.patchCache, m.patchPruned,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
