// Package appliance is the node runtime: its configuration, its identity,
// and the composition root that wires the database, the content library and
// the LAN portal into one daemon with one owner for every goroutine.
package appliance

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"outpost/appliance/atomicfile"
)

// ConfigName is the optional configuration file inside a data directory.
const ConfigName = "outpost.json"

// Config is everything a node can be told. It is declared once, here, with
// its defaults; flags override the file, the file overrides the defaults.
type Config struct {
	// DataDir holds the database, the content store and the identity.
	DataDir string `json:"-"`
	// Listen is the LAN portal's address.
	Listen string `json:"listen"`
	// QuotaBytes caps stored course content; 0 means only free space limits it.
	QuotaBytes int64 `json:"quota_bytes"`
	// ReserveBytes is disk space imports always leave free.
	ReserveBytes int64 `json:"reserve_bytes"`
	// Language is the portal's language when the browser asks for none we have.
	Language string `json:"language"`

	// Upstream is the hub (or district box) this node syncs from, as
	// https://HOST:PORT; empty for a node that only serves what it is given.
	Upstream string `json:"upstream,omitempty"`
	// EnrolToken is the one-time token that joins the upstream (put in the
	// image by the technician, or passed with --enrol or --enrol-file).
	// Removed from the file, and dropped from memory, once enrolled.
	EnrolToken string `json:"enrol_token,omitempty"`
	// HubID pins the upstream's device ID when the token does not carry it.
	HubID string `json:"hub_id,omitempty"`
	// SyncInterval is the time between sync passes when all is well, as a
	// Go duration ("5m"); failures retry sooner, with backoff.
	SyncInterval string `json:"sync_interval,omitempty"`
	// ConnsPerClient caps the portal's connections from one address (an
	// IPv6 /64); 0 keeps the default (connguard.Portal: 32). Raise it when
	// many devices reach the box through one NAT router, so they share an
	// address: a browser opens up to 6 connections.
	ConnsPerClient int `json:"conns_per_client,omitempty"`
}

// DefaultConfig is what a node runs with when told nothing.
func DefaultConfig(dataDir string) Config {
	return Config{
		DataDir:      dataDir,
		Listen:       ":8080",
		ReserveBytes: 64 << 20,
		Language:     "en",
		SyncInterval: "5m",
	}
}

// LoadConfig reads DataDir/outpost.json over the defaults, if it exists.
func LoadConfig(dataDir string) (Config, error) {
	cfg := DefaultConfig(dataDir)
	path := filepath.Join(dataDir, ConfigName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("read config %s: %w; fix the file or delete it to use defaults", path, err)
	}
	cfg.DataDir = dataDir
	return cfg, nil
}

// forgetEnrolToken removes enrol_token from DATA/outpost.json, once the box
// is enrolled: a spent token only re-enrols this same box, but it is a
// secret a stolen SD card or a backup need not carry. The other settings
// are kept (rewritten: key order and spacing are not).
func forgetEnrolToken(dataDir string) error {
	path := filepath.Join(dataDir, ConfigName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("forget the enrolment token: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("forget the enrolment token: read %s: %w", path, err)
	}
	if _, ok := m["enrol_token"]; !ok {
		return nil
	}
	delete(m, "enrol_token")
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("forget the enrolment token: %w", err)
	}
	if err := atomicfile.Write(path, append(out, '\n'), privateFileMode); err != nil {
		return fmt.Errorf("forget the enrolment token: %w", err)
	}
	return nil
}
