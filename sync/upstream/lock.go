package upstream

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// passLockFile is the file a running pass holds a write lock on, in
// DATA/sync. It makes "one pass per data directory" hold across processes:
// the daemon, `outpost sync now` run without a daemon, a second daemon
// started by mistake. Two passes at once would fetch the same blocks twice
// and install the same version twice.
//
// The lock is an open-file-description lock (fcntl F_OFD_SETLK), not flock:
// it is released when the holder's descriptor closes, so a crashed or
// killed pass never leaves it held, it conflicts between two descriptors
// of one process as between processes, and, unlike flock, another process
// can test it (F_OFD_GETLK) without taking it, so `outpost sync status`
// can tell a running pass from an interrupted one without ever making a
// starting pass fail.
const passLockFile = "pass.lock"

// ErrPassRunning is returned by Pass when another pass, in this process or
// another, is running for the same data directory.
var ErrPassRunning = errors.New("another sync pass is running for this data directory")

func passLockPath(dataDir string) string { return filepath.Join(dataDir, "sync", passLockFile) }

// wholeFile is a lock over the whole file, of the given type.
func wholeFile(typ int16) *unix.Flock_t {
	return &unix.Flock_t{Type: typ, Whence: 0, Start: 0, Len: 0}
}

// lockPass takes the pass lock without waiting, and writes this process's
// ID into the file for the message another process shows.
func lockPass(dataDir string) (release func(), err error) {
	path := passLockPath(dataDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("take the sync pass lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("take the sync pass lock: %w", err)
	}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, wholeFile(unix.F_WRLCK)); err != nil {
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("%w (%s); wait for it to finish, or follow it with `outpost sync status`", ErrPassRunning, holder(path))
		}
		return nil, fmt.Errorf("take the sync pass lock: %w", err)
	}
	// Best effort: the PID only makes the other side's message precise.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}

// holder names the process that holds the lock, as far as its file says.
func holder(path string) string {
	b, err := os.ReadFile(path)
	pid := strings.TrimSpace(string(b))
	if err != nil || pid == "" {
		return "in another process"
	}
	if pid == strconv.Itoa(os.Getpid()) {
		return "in this process"
	}
	return "process " + pid
}

// PassRunning reports whether a sync pass holds the data directory's pass
// lock right now, in any process. It never takes the lock.
func PassRunning(dataDir string) (bool, error) {
	f, err := os.Open(passLockPath(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check the sync pass lock: %w", err)
	}
	defer f.Close()
	lk := wholeFile(unix.F_WRLCK)
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, lk); err != nil {
		return false, fmt.Errorf("check the sync pass lock: %w", err)
	}
	return lk.Type != unix.F_UNLCK, nil
}
