package upstream

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"

	"outpost/appliance/identity"
	"outpost/content/blockstore"
	"outpost/content/catalog"
	"outpost/content/library"
	"outpost/content/pack"
	"outpost/sync/wire"
)

// Options are what a box's sync client is built from.
type Options struct {
	DataDir  string
	DB       *sql.DB
	Store    *blockstore.Store
	Catalog  *catalog.Catalog
	Library  *library.Library
	Identity *identity.Identity
	Log      *slog.Logger
	Software string
	// Interval between passes when nothing goes wrong (default 5 minutes).
	Interval time.Duration
	Hooks    *Hooks
}

// Hooks observe the client in tests; nil in production.
type Hooks struct {
	// BlockStored is called once a block is verified and durable.
	BlockStored func(hash []byte, source string)
}

// Client syncs one box with its upstream. Passes are serialised, within
// the process and across processes (lock.go); Serve runs them on a
// schedule, Kick asks for one now, KickAndWait asks and waits for it.
type Client struct {
	opts Options
	link *Link
	// diskURL is the hub address DATA/upstream.json held when the client
	// last looked: when `outpost sync set-upstream` changes it, the next
	// pass follows (link.URL may differ on purpose: a test's link emulator).
	diskURL string
	http    *http.Client
	m       *syncMetrics
	kick    chan struct{}

	passMu sync.Mutex // one pass at a time

	mu       sync.Mutex
	status   Status
	saved    time.Time
	started  int64         // passes started by this client
	last     PassReport    // the last pass that finished
	lastSeq  int64         // which one it was
	finished chan struct{} // closed when a pass finishes, then replaced
}

// New returns a client for an enrolled box.
func New(o Options, link *Link) *Client {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Minute
	}
	l := *link
	c := &Client{opts: o, link: &l, diskURL: link.URL, http: newHTTPClient(o.Identity, link.hubID()), m: newSyncMetrics(),
		kick: make(chan struct{}, 1), finished: make(chan struct{})}
	if on, err := LoadLink(o.DataDir); err == nil {
		c.diskURL = on.URL
	}
	if st, err := ReadStatus(context.Background(), o.DB, o.DataDir); err == nil {
		c.status = *st
	}
	c.status.Hub, c.status.Site, c.status.Channels = link.URL, link.Site, link.Channels
	return c
}

// Status is a snapshot of the sync state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

func (c *Client) update(f func(*Status)) {
	c.mu.Lock()
	f(&c.status)
	save := time.Since(c.saved) > time.Second
	if save {
		c.saved = time.Now()
	}
	st := c.status
	c.mu.Unlock()
	if save {
		c.saveStatus(st)
	}
}

func (c *Client) saveStatus(st Status) {
	b, _ := json.Marshal(st)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := setState(ctx, c.opts.DB, keyStatus, string(b)); err != nil {
		c.opts.Log.Warn("save sync status", "err", err)
	}
}

// ErrPaused wraps failures a person must resolve (a full disk); the loop
// keeps retrying, slowly.
var ErrPaused = errors.New("sync paused")

// Pass runs one sync pass: changes, then every missing file, then the
// version switches and removals. It returns when the box holds everything
// its channels hold on the hub, or with the error that stopped it; either
// way every verified block is kept for the next pass. If another pass runs
// for the same data directory (in any process) it returns ErrPassRunning
// at once and changes nothing.
func (c *Client) Pass(ctx context.Context) error {
	_, err := c.RunPass(ctx)
	return err
}

// RunPass is Pass, also returning what the pass did.
func (c *Client) RunPass(ctx context.Context) (PassReport, error) {
	c.passMu.Lock()
	defer c.passMu.Unlock()
	c.mu.Lock()
	c.started++
	seq := c.started
	c.mu.Unlock()
	rep := PassReport{Started: time.Now()}
	release, err := lockPass(c.opts.DataDir)
	if err != nil {
		rep.Result, rep.Error = ResultBusy, err.Error()
		c.finish(seq, rep)
		return rep, err
	}
	defer release()
	c.followLink()
	var before Totals
	c.update(func(s *Status) {
		s.State, s.Message, s.LastAttempt = StateSyncing, "asking the hub for changes", rep.Started
		before = s.Totals
	})
	err = c.pass(ctx)
	c.mu.Lock()
	s := &c.status
	s.Totals.Passes++
	s.QueueFiles, s.QueueBytes, s.ETASeconds = 0, 0, 0
	switch {
	case err == nil:
		s.State, s.Message, s.LastError, s.LastSuccess = StateIdle, "up to date", "", time.Now()
		c.m.passes.WithLabelValues("ok").Inc()
	case errors.Is(err, ErrPaused):
		s.Totals.FailedPasses++
		s.State, s.LastError, s.Message = StatePaused, err.Error(), err.Error()
		c.m.passes.WithLabelValues("paused").Inc()
	default:
		s.Totals.FailedPasses++
		s.State, s.LastError, s.Message = StateError, err.Error(), "the last pass failed; retrying"
		c.m.passes.WithLabelValues("error").Inc()
	}
	rep.Result = s.State
	if err != nil {
		rep.Error = err.Error()
	}
	rep.Seconds = time.Since(rep.Started).Seconds()
	rep.Work = s.Totals.minus(before)
	s.LastPass = &rep
	st := *s
	c.mu.Unlock()
	c.m.queueBytes.Set(0)
	c.saveStatus(st)
	c.finish(seq, rep)
	c.opts.Log.Info("sync pass finished", "state", st.State, "took", time.Since(st.LastAttempt).Round(time.Millisecond), "err", err)
	return rep, err
}

// followLink adopts a new hub address saved since the client was made
// (`outpost sync set-upstream`). The pin is not read again: a link for
// another hub comes from a new enrolment, which needs a new client.
func (c *Client) followLink() {
	on, err := LoadLink(c.opts.DataDir)
	if err != nil || on.URL == c.diskURL || on.HubID != c.link.HubID {
		return
	}
	c.opts.Log.Info("hub address changed", "from", c.link.URL, "to", on.URL)
	c.link.URL, c.diskURL = on.URL, on.URL
	c.http.CloseIdleConnections()
	c.update(func(s *Status) { s.Hub = on.URL })
}

// finish records a pass's report and wakes whoever waits for it.
func (c *Client) finish(seq int64, rep PassReport) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last, c.lastSeq = rep, seq
	close(c.finished)
	c.finished = make(chan struct{})
}

// KickAndWait asks the loop (Serve) for a pass and waits until a pass that
// started after the request has finished, then returns what it did. A pass
// already running when it is called does not count: it may have asked the
// hub for changes before the caller's reason to sync existed. It gives up
// when ctx ends; the pass goes on.
func (c *Client) KickAndWait(ctx context.Context) (PassReport, error) {
	c.mu.Lock()
	after := c.started
	c.mu.Unlock()
	c.Kick()
	for {
		c.mu.Lock()
		if c.lastSeq > after {
			rep := c.last
			c.mu.Unlock()
			return rep, nil
		}
		ch := c.finished
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return PassReport{}, ctx.Err()
		case <-ch:
		}
	}
}

// coursePlan is one course version to install and the files it lacks.
type coursePlan struct {
	change   wire.CourseChange
	manifest *pack.Manifest
}

// planCourse checks a course change from the upstream before the box
// fetches anything for it: its manifest must be one the importer would
// accept, it must be the course and version the change names, and every
// patch offer must be for a file of that manifest (the box asks the hub for
// nothing else).
func planCourse(cc wire.CourseChange) (*coursePlan, error) {
	m, err := pack.ParseStoredManifest(cc.Manifest)
	if err != nil {
		return nil, fmt.Errorf("sync: course %s from the hub: %w", cc.ID, err)
	}
	if m.ID != cc.ID || m.Version != cc.Version {
		return nil, fmt.Errorf("sync: %w: change names %s v%d but its manifest is %s v%d", wire.ErrMalformed, cc.ID, cc.Version, m.ID, m.Version)
	}
	files := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		files[f.SHA256] = true
	}
	for to := range cc.Patches {
		if !files[to] {
			return nil, fmt.Errorf("sync: %w: course %s offers a patch for %s, which is not one of its files", wire.ErrMalformed, cc.ID, to)
		}
	}
	return &coursePlan{change: cc, manifest: m}, nil
}

func (c *Client) pass(ctx context.Context) error {
	release, err := c.opts.Library.Hold()
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	releaseOnce := sync.OnceFunc(release)
	defer releaseOnce()
	cursor, err := loadCursor(ctx, c.opts.DB, c.link)
	if err != nil {
		return err
	}
	var ch wire.Changes
	err = c.retry(ctx, "changes", func() (bool, error) {
		ch = wire.Changes{}
		err := c.call(ctx, http.MethodGet, wire.PathChanges+"?since="+strconv.FormatInt(cursor, 10), nil, &ch)
		if errors.Is(err, wire.ErrTruncated) {
			c.update(func(s *Status) { s.Totals.BadStreams++ })
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if err := ch.Validate(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	var plans []*coursePlan
	need := map[string]int64{} // file SHA-256 → size
	bases := map[string][]string{}
	for _, cc := range ch.Courses {
		exists, err := c.opts.Catalog.Existing(ctx, cc.ID, cc.Version, catalog.ManifestSum(cc.Manifest))
		if err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		if exists {
			if err := c.markSynced(ctx, cc.ID, cc.Version); err != nil {
				return err
			}
			continue
		}
		p, err := planCourse(cc)
		if err != nil {
			return err
		}
		plans = append(plans, p)
		m := p.manifest
		for _, f := range m.Files {
			have, err := c.opts.Store.Has(ctx, f.SHA256)
			if err != nil {
				return fmt.Errorf("sync: %w", err)
			}
			if !have {
				need[f.SHA256] = f.Size
			}
		}
		for to, from := range cc.Patches {
			bases[to] = append(bases[to], from...)
		}
	}
	// Record what the new versions need before fetching any of it: if this
	// pass is interrupted, gc keeps what it stored and assembled, and the
	// next pass goes on from there. Nothing pending forgets earlier work
	// (installed, or withdrawn by the hub).
	var pending []string
	for _, p := range plans {
		for _, f := range p.manifest.Files {
			pending = append(pending, f.SHA256)
		}
	}
	if err := c.opts.Library.KeepPending(ctx, pendingOwner, pending); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if len(need) > 0 {
		if err := c.fetchFiles(ctx, need, bases); err != nil {
			return err
		}
	}
	changed := false
	for _, p := range plans {
		res, err := c.opts.Library.Install(ctx, p.change.Manifest)
		if err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		if err := c.markSynced(ctx, p.change.ID, p.change.Version); err != nil {
			return err
		}
		changed = changed || res.Replaced != 0
		c.opts.Log.Info("course synced", "course", res.ID, "version", res.Version, "replaced", res.Replaced)
		c.update(func(s *Status) { s.Totals.CoursesSynced++ })
	}
	if len(plans) > 0 {
		// Installed: the catalog references them now.
		if err := c.opts.Library.KeepPending(ctx, pendingOwner, nil); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
	}
	for _, id := range ch.Removed {
		removed, err := c.removeSynced(ctx, id)
		if err != nil {
			return err
		}
		changed = changed || removed
	}
	releaseOnce()
	if changed {
		// Reclaim replaced and removed versions' files now: a box's disk
		// is small, and the next course may need the space.
		if _, err := c.opts.Library.GC(ctx); err != nil && !errors.Is(err, library.ErrBusy) {
			return fmt.Errorf("sync: reclaim space: %w", err)
		}
	}
	c.cleanPartials(need)
	if err := setState(ctx, c.opts.DB, keyCursor, strconv.FormatInt(ch.Cursor, 10)); err != nil {
		return err
	}
	if err := setState(ctx, c.opts.DB, keyCursorLink, c.link.generation()); err != nil {
		return err
	}
	c.update(func(s *Status) { s.Cursor = ch.Cursor })
	return nil
}

func (c *Client) markSynced(ctx context.Context, id string, version int64) error {
	_, err := c.opts.DB.ExecContext(ctx, `INSERT INTO sync_courses(course_id, version) VALUES (?, ?)
		ON CONFLICT(course_id) DO UPDATE SET version = excluded.version`, id, version)
	if err != nil {
		return fmt.Errorf("sync: record course %s: %w", id, err)
	}
	return nil
}

// removeSynced removes a course the upstream removed, if it came from the
// upstream: a course a technician imported from a USB stick stays.
func (c *Client) removeSynced(ctx context.Context, id string) (bool, error) {
	var v int64
	err := c.opts.DB.QueryRowContext(ctx, `SELECT version FROM sync_courses WHERE course_id = ?`, id).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sync: remove course %s: %w", id, err)
	}
	if err := c.opts.Catalog.Remove(ctx, id); err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return false, fmt.Errorf("sync: remove course %s: %w", id, err)
	}
	if _, err := c.opts.DB.ExecContext(ctx, `DELETE FROM sync_courses WHERE course_id = ?`, id); err != nil {
		return false, fmt.Errorf("sync: remove course %s: %w", id, err)
	}
	c.opts.Log.Info("course removed by upstream", "course", id)
	c.update(func(s *Status) { s.Totals.CoursesRemoved++ })
	return true, nil
}

// pendingOwner names the sync pass's pending work in the library.
const pendingOwner = "sync"

// PartialDir is where passes assemble new files, DATA/sync/partial; the
// library's gc keeps the partials of pending work there.
func PartialDir(dataDir string) string { return filepath.Join(dataDir, "sync", "partial") }

func (c *Client) partialDir() string { return PartialDir(c.opts.DataDir) }

// cleanPartials deletes partial files no longer wanted (a course replaced
// again before it finished arriving).
func (c *Client) cleanPartials(keep map[string]int64) {
	ents, _ := os.ReadDir(c.partialDir())
	for _, e := range ents {
		sha := e.Name()
		if ext := filepath.Ext(sha); ext == ".part" {
			sha = sha[:len(sha)-len(ext)]
		}
		if _, ok := keep[sha]; !ok {
			os.Remove(filepath.Join(c.partialDir(), e.Name()))
		}
	}
}

// checkSpace pauses sync when the missing files do not fit. A file needs
// room twice while it is assembled (the partial, then the stored copy), so
// the largest one counts double.
func (c *Client) checkSpace(ctx context.Context, need map[string]int64) error {
	var total, largest int64
	for _, n := range need {
		total += n
		largest = max(largest, n)
	}
	want := total + largest
	free, err := c.opts.Store.FreeBytes()
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if want > free-c.opts.Library.Reserve {
		return fmt.Errorf("%w: disk full: the new courses need %s, the disk has %s free (%s kept in reserve); free space with `outpost content gc` or `outpost content rm`, sync resumes by itself",
			ErrPaused, humanize.IBytes(uint64(want)), humanize.IBytes(uint64(max(free, 0))), humanize.IBytes(uint64(c.opts.Library.Reserve)))
	}
	if q := c.opts.Library.Quota; q > 0 {
		used, err := c.opts.Store.UsedBytes(ctx)
		if err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		if used+total > q {
			return fmt.Errorf("%w: the new courses need %s, the content quota of %s has %s left; raise quota_bytes or remove a course, sync resumes by itself",
				ErrPaused, humanize.IBytes(uint64(total)), humanize.IBytes(uint64(q)), humanize.IBytes(uint64(max(q-used, 0))))
		}
	}
	return nil
}

// isDiskFull reports a write that failed for lack of space.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func sortedKeys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	// Small files first: they finish (and free their partials) soonest.
	sort.Slice(out, func(i, j int) bool {
		if m[out[i]] != m[out[j]] {
			return m[out[i]] < m[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}
