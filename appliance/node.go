package appliance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"outpost/appliance/connguard"
	"outpost/appliance/database"
	"outpost/appliance/identity"
	"outpost/content/blockstore"
	"outpost/content/catalog"
	"outpost/content/library"
	"outpost/sync/upstream"
)

// Node is one opened data directory: identity, database and content.
// Commands that only manage content open a Node without serving.
type Node struct {
	Config   Config
	Identity *identity.Identity
	DB       *sql.DB
	Store    *blockstore.Store
	Catalog  *catalog.Catalog
	Library  *library.Library
	Log      *slog.Logger
	// Created is true when this Open made a new data directory.
	Created bool
	// PortalLimits and HubLimits override the servers' connection limits
	// (connguard.Portal and connguard.Hub) field by field; tests shorten
	// them, the daemon leaves them zero.
	PortalLimits, HubLimits connguard.Limits

	reg    *prometheus.Registry
	syncMu sync.Mutex
	sync   *upstream.Client // set once the sync service runs
}

// Open opens (creating on first start) the node in cfg.DataDir.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Node, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("open node: no data directory given; pass --data DIR")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	privateUmask()
	if err := os.MkdirAll(cfg.DataDir, privateDirMode); err != nil {
		return nil, fmt.Errorf("open node: create data directory: %w", err)
	}
	if err := tightenDataDir(cfg.DataDir); err != nil {
		// A directory owned by someone else (a shared mount) cannot be
		// tightened; the node still serves, and says so.
		log.Warn("the data directory stays readable by other users", "err", err)
	}
	id, created, err := identity.LoadOrCreate(filepath.Join(cfg.DataDir, "identity"), "outpost")
	if err != nil {
		return nil, fmt.Errorf("open node: %w", err)
	}
	if created {
		log.Info("created node identity", "device_id", id.DeviceID.String(), "data", cfg.DataDir)
	}
	if err := createPrivate(filepath.Join(cfg.DataDir, dbName)); err != nil {
		return nil, fmt.Errorf("open node: create database: %w", err)
	}
	db, err := database.Open(ctx, filepath.Join(cfg.DataDir, dbName))
	if err != nil {
		return nil, fmt.Errorf("open node: %w", err)
	}
	store, err := blockstore.Open(filepath.Join(cfg.DataDir, "store"), db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open node: %w", err)
	}
	cat := catalog.New(db)
	lib := library.New(cfg.DataDir, store, cat)
	lib.Quota = cfg.QuotaBytes
	lib.Reserve = cfg.ReserveBytes
	lib.PartialDir = upstream.PartialDir(cfg.DataDir)
	n := &Node{Config: cfg, Identity: id, DB: db, Store: store, Catalog: cat, Library: lib, Log: log, Created: created, reg: prometheus.NewRegistry()}
	n.PortalLimits.PerClient = cfg.ConnsPerClient
	return n, nil
}

// ErrNotNode is wrapped when a directory given as a node's data directory
// holds no node.
var ErrNotNode = errors.New("not an Outpost data directory")

// dbName is the node's database file; its presence is what makes a
// directory a node (Open creates it before anything else can use it).
const dbName = "outpost.db"

// CheckNode reports whether dir holds a node, with an error for people
// that names the directory and what to do.
func CheckNode(dir string) error {
	_, err := os.Stat(filepath.Join(dir, dbName))
	if err == nil {
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("open node %s: %w", dir, err)
	}
	what := "does not exist"
	if fi, err := os.Stat(dir); err == nil {
		what = "is not a directory"
		if fi.IsDir() {
			what = "holds no node (no " + dbName + ")"
		}
	}
	return fmt.Errorf("%s %s: %w; check --data (a mistyped path would start an empty node), or create a node there with `outpost init --data %s` (or `outpost serve --data %s`, whose first start makes one)",
		dir, what, ErrNotNode, dir, dir)
}

// OpenExisting is Open for a directory that must already hold a node: the
// administration verbs, where a mistyped --data must not silently create
// an empty node and report on it.
func OpenExisting(ctx context.Context, cfg Config, log *slog.Logger) (*Node, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("open node: no data directory given; pass --data DIR")
	}
	if err := CheckNode(cfg.DataDir); err != nil {
		return nil, err
	}
	return Open(ctx, cfg, log)
}

// Close releases the database.
func (n *Node) Close() error {
	if err := n.DB.Close(); err != nil {
		return fmt.Errorf("close node: %w", err)
	}
	return nil
}
