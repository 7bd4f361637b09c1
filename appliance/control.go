package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/thejerf/suture/v4"

	"outpost/sync/upstream"
)

// ControlSocket is the daemon's control socket, in its data directory.
// Verbs run on the box (`outpost sync now`) reach the daemon of *their*
// data directory through it, whatever port its portal listens on, and
// nothing else can: it is a unix socket of mode 0600 in a 0700 directory,
// so only the node's own user (and root) may connect. No browser can reach
// it, so a web page cannot make the box sync, and no LAN client can.
const ControlSocket = "control.sock"

// ErrNoDaemon is returned by RequestSyncPass when no daemon serves the data
// directory.
var ErrNoDaemon = errors.New("no daemon runs on this data directory")

// maxSyncWait bounds how long the daemon keeps a `sync now` request open
// waiting for its pass, whatever the caller asked.
const maxSyncWait = time.Hour

// socketPath returns an address for the unix socket at path. A socket path
// is limited to 107 bytes; a longer one is reached through the directory's
// descriptor (/proc/self/fd/N/NAME), which Linux resolves like any path.
// close must be called once the socket is bound or connected.
func socketPath(path string) (addr string, closeDir func(), err error) {
	if len(path) < 100 {
		return path, func() {}, nil
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), filepath.Base(path)), func() { d.Close() }, nil
}

// listenControl binds the control socket, refusing if another daemon
// already answers on it (two daemons on one data directory would serve the
// same store twice). A socket file left by a crash is replaced.
func (n *Node) listenControl(ctx context.Context) (net.Listener, error) {
	path := filepath.Join(n.Config.DataDir, ControlSocket)
	if _, err := os.Lstat(path); err == nil {
		c, err := dialControl(ctx, path)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("another outpost daemon already serves %s; stop it first", n.Config.DataDir)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove the stale control socket: %w", err)
		}
	}
	addr, closeDir, err := socketPath(path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer closeDir()
	ln, err := net.Listen("unix", addr)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	// The umask already makes it 0600 (see Open); say so explicitly too.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	// The listener removes the file when it closes, through the path it
	// was bound with; with a /proc path the directory descriptor is gone
	// by then, so remove it by its real name.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	return &removeOnClose{Listener: ln, path: path}, nil
}

type removeOnClose struct {
	net.Listener
	path string
}

func (r *removeOnClose) Close() error {
	err := r.Listener.Close()
	os.Remove(r.path)
	return err
}

func dialControl(ctx context.Context, path string) (net.Conn, error) {
	addr, closeDir, err := socketPath(path)
	if err != nil {
		return nil, err
	}
	defer closeDir()
	d := net.Dialer{Timeout: 5 * time.Second}
	return d.DialContext(ctx, "unix", addr)
}

// controlService answers the control socket.
type controlService struct {
	n  *Node
	ln net.Listener
}

func (s *controlService) Serve(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sync/now", s.n.handleSyncNow)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		// It owns a listener it was handed: it cannot be restarted. The
		// portal goes on; `sync now` then runs passes itself.
		n := s.n
		n.Log.Error("control socket failed; `outpost sync now` will not reach this daemon", "err", err)
		return fmt.Errorf("control socket: %w: %w", err, suture.ErrDoNotRestart)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	srv.Shutdown(shutCtx) // waiting requests end with ctx; nothing to save
	<-errc
	return nil
}

// handleSyncNow runs a pass in the daemon for `outpost sync now` and
// answers with what that pass did, once it is over.
func (n *Node) handleSyncNow(w http.ResponseWriter, r *http.Request) {
	c := n.syncClient()
	if c == nil {
		msg := upstream.ErrNotEnrolled.Error()
		if n.Config.Upstream != "" {
			msg = "this box is not enrolled yet; the daemon retries enrolment with " + n.Config.Upstream + " (see its log)"
		}
		http.Error(w, msg, http.StatusConflict)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), maxSyncWait)
	defer cancel()
	rep, err := c.KickAndWait(ctx)
	if err != nil {
		http.Error(w, "the pass is still running", http.StatusGatewayTimeout)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rep)
}

// RequestSyncPass asks the daemon serving dataDir for a sync pass now and
// waits for it to finish, at most until ctx ends, and returns what that
// pass did. It returns ErrNoDaemon when no daemon serves dataDir.
//
// Reaching the daemon is bounded on its own (a few seconds), not by ctx:
// an error wrapping context.DeadlineExceeded means the daemon took the
// request and its pass was still running when ctx ended.
func RequestSyncPass(ctx context.Context, dataDir string) (*upstream.PassReport, error) {
	path := filepath.Join(dataDir, ControlSocket)
	conn, err := dialControl(context.Background(), path)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil, ErrNoDaemon
	}
	if err != nil {
		return nil, fmt.Errorf("ask the daemon for a sync pass: %w", err)
	}
	used := false
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			if used {
				return nil, errors.New("the daemon closed the control connection")
			}
			used = true
			return conn, nil
		},
	}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://daemon/sync/now", nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		if !used {
			conn.Close()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("ask the daemon for a sync pass: the time to wait ended before the request was sent")
			}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ask the daemon for a sync pass: %w", ctx.Err())
		}
		return nil, fmt.Errorf("ask the daemon for a sync pass: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("ask the daemon for a sync pass: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(strings.TrimSpace(string(body)))
	}
	var rep upstream.PassReport
	if err := json.Unmarshal(body, &rep); err != nil {
		return nil, fmt.Errorf("ask the daemon for a sync pass: %w", err)
	}
	return &rep, nil
}
