package upstream

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// States a box's sync can be in.
const (
	StateIdle        = "idle"
	StateSyncing     = "syncing"
	StatePaused      = "paused" // waiting for something a person must fix (disk full)
	StateError       = "error"  // the last pass failed; retrying with backoff
	StateNotEnrolled = "not_enrolled"
	// StateInterrupted is a pass that was saved as running but no longer
	// runs: the daemon stopped or crashed, or the box lost power, mid-pass.
	StateInterrupted = "interrupted"
)

// Status is what `outpost sync status` shows. It is kept in the database
// so the command can show it whether or not the daemon runs.
type Status struct {
	State       string    `json:"state"`
	Message     string    `json:"message,omitempty"`
	Hub         string    `json:"hub,omitempty"`
	Site        string    `json:"site,omitempty"`
	Channels    []string  `json:"channels,omitempty"`
	Cursor      int64     `json:"cursor"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`

	QueueFiles int     `json:"queue_files"`
	QueueBytes int64   `json:"queue_bytes"`
	Throughput float64 `json:"throughput_bytes_per_second"` // recent, from block batches
	ETASeconds float64 `json:"eta_seconds,omitempty"`

	// LastPass is what the last finished pass did, on its own.
	LastPass *PassReport `json:"last_pass,omitempty"`

	Totals Totals `json:"totals"`
}

// PassReport is what one pass did: its result, and its own counts (not
// the box's totals).
type PassReport struct {
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	// Result is the state the pass left (idle, paused, error), or busy
	// when it did not run because another pass was running.
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
	Work   Totals `json:"work"`
}

// ResultBusy is a pass that did not run: another held the data directory.
const ResultBusy = "busy"

// minus is the work between two snapshots of the totals.
func (t Totals) minus(u Totals) Totals {
	return Totals{
		Passes:         t.Passes - u.Passes,
		FailedPasses:   t.FailedPasses - u.FailedPasses,
		BlocksFetched:  t.BlocksFetched - u.BlocksFetched,
		BytesFetched:   t.BytesFetched - u.BytesFetched,
		BlocksLocal:    t.BlocksLocal - u.BlocksLocal,
		BlocksShifted:  t.BlocksShifted - u.BlocksShifted,
		BlocksPatched:  t.BlocksPatched - u.BlocksPatched,
		PatchBytes:     t.PatchBytes - u.PatchBytes,
		HashMismatches: t.HashMismatches - u.HashMismatches,
		BadStreams:     t.BadStreams - u.BadStreams,
		CoursesSynced:  t.CoursesSynced - u.CoursesSynced,
		CoursesRemoved: t.CoursesRemoved - u.CoursesRemoved,
	}
}

// Totals count since the box's first sync.
type Totals struct {
	Passes         int64 `json:"passes"`
	FailedPasses   int64 `json:"failed_passes"`
	BlocksFetched  int64 `json:"blocks_fetched"`
	BytesFetched   int64 `json:"bytes_fetched"`   // payload bytes on the wire, blocks and patches
	BlocksLocal    int64 `json:"blocks_local"`    // copied from a file the box held
	BlocksShifted  int64 `json:"blocks_shifted"`  // found moved within an older version
	BlocksPatched  int64 `json:"blocks_patched"`  // produced by a hub patch
	PatchBytes     int64 `json:"patch_bytes"`     // of BytesFetched
	HashMismatches int64 `json:"hash_mismatches"` // blocks discarded and fetched again
	BadStreams     int64 `json:"bad_streams"`     // truncated or corrupt responses
	CoursesSynced  int64 `json:"courses_synced"`
	CoursesRemoved int64 `json:"courses_removed"`
}

const (
	keyCursor     = "cursor"
	keyCursorLink = "cursor_link" // the enrolment the cursor belongs to
	keyStatus     = "status"
)

func getState(ctx context.Context, db *sql.DB, key string) (string, error) {
	var v string
	err := db.QueryRowContext(ctx, `SELECT value FROM sync_state WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read sync state %s: %w", key, err)
	}
	return v, nil
}

func setState(ctx context.Context, db *sql.DB, key, value string) error {
	_, err := db.ExecContext(ctx, `INSERT INTO sync_state(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("write sync state %s: %w", key, err)
	}
	return nil
}

// loadCursor returns the cursor of this enrolment (0 after enrolling again).
func loadCursor(ctx context.Context, db *sql.DB, link *Link) (int64, error) {
	if link != nil {
		gen, err := getState(ctx, db, keyCursorLink)
		if err != nil || gen != link.generation() {
			return 0, err
		}
	}
	v, err := getState(ctx, db, keyCursor)
	if err != nil || v == "" {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read sync cursor: %w", err)
	}
	return n, nil
}

// ReadStatus reads the status the sync loop last saved.
func ReadStatus(ctx context.Context, db *sql.DB, dataDir string) (*Status, error) {
	st := &Status{State: StateIdle}
	v, err := getState(ctx, db, keyStatus)
	if err != nil {
		return nil, err
	}
	if v != "" {
		if err := json.Unmarshal([]byte(v), st); err != nil {
			return nil, fmt.Errorf("read sync status: %w", err)
		}
	}
	link, err := LoadLink(dataDir)
	if errors.Is(err, ErrNotEnrolled) {
		st.State, st.Message = StateNotEnrolled, ErrNotEnrolled.Error()
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	st.Hub, st.Site, st.Channels = link.URL, link.Site, link.Channels
	if st.Cursor, err = loadCursor(ctx, db, link); err != nil {
		return nil, err
	}
	if st.State == StateSyncing {
		// Saved mid-pass; if no pass holds the lock now, the process that
		// ran it is gone and what it saved (queue, ETA) is stale.
		running, err := PassRunning(dataDir)
		if err != nil {
			return nil, err
		}
		if !running {
			st.State = StateInterrupted
			st.Message = fmt.Sprintf("the last pass, started %s, was interrupted (the daemon stopped or crashed, or the power failed); the next pass resumes where it stopped",
				st.LastAttempt.Local().Format("2006-01-02 15:04:05"))
			st.QueueFiles, st.QueueBytes, st.ETASeconds = 0, 0, 0
		}
	}
	return st, nil
}

type syncMetrics struct {
	blocks     *prometheus.CounterVec
	wireBytes  prometheus.Counter
	mismatches prometheus.Counter
	passes     *prometheus.CounterVec
	queueBytes prometheus.Gauge
}

func newSyncMetrics() *syncMetrics {
	return &syncMetrics{
		blocks:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "outpost_sync_blocks_total", Help: "Blocks the box obtained, by source (fetched, local, shifted, patched)."}, []string{"source"}),
		wireBytes:  prometheus.NewCounter(prometheus.CounterOpts{Name: "outpost_sync_payload_bytes_total", Help: "Block and patch payload bytes received from upstream."}),
		mismatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "outpost_sync_hash_mismatches_total", Help: "Blocks discarded because their hash did not match."}),
		passes:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "outpost_sync_passes_total", Help: "Sync passes by result."}, []string{"result"}),
		queueBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "outpost_sync_queue_bytes", Help: "Bytes still to obtain in the current pass."}),
	}
}

// Collectors are the sync loop's metrics, for the node's registry.
func (c *Client) Collectors() []prometheus.Collector {
	return []prometheus.Collector{c.m.blocks, c.m.wireBytes, c.m.mismatches, c.m.passes, c.m.queueBytes}
}
