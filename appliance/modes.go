package appliance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// A node's data directory holds its private key, its database (and so, in
// later releases, records about people), sync state and uploads. Nothing in
// it is for other users of the machine: directories are 0700 and files
// 0600, whatever the umask of whoever started the process.
//
// Three layers close the class rather than fix files one by one:
//   - privateUmask sets the process umask when a node opens, so every file
//     any package creates afterwards (SQLite's -wal and -shm, a hub's
//     uploads and patch cache, temp files, sockets) leaves out group and
//     other bits, including code written later;
//   - the node's own files and directories are also created with explicit
//     0600/0700 modes, so they are right even before the umask is set;
//   - tightenDataDir fixes a data directory made by an older release (or
//     under a loose umask) when the node opens it.

const (
	privateDirMode  = 0o700
	privateFileMode = 0o600
)

// privateUmask makes files created from now on in this process private to
// its user. The umask is process-wide: a process that opens a node is that
// node's process (the daemon, a hub, an administration verb), and what it
// writes outside the data directory (an exported pack) is private too.
func privateUmask() { unix.Umask(0o077) }

// tightenDataDir removes group and other permissions from everything in
// dir. A directory already 0700 was tightened before (its content was
// fixed first), so it is not walked again: reopening a node costs a stat
// of its top-level entries. Symbolic links are left alone (chmod would
// follow them out of the data directory).
func tightenDataDir(dir string) error {
	if err := tightenChildren(dir); err != nil {
		return err
	}
	return chmodPrivate(dir, privateDirMode)
}

func tightenChildren(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("tighten permissions in %s: %w", dir, err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile (a temp file)
		}
		if err != nil {
			return fmt.Errorf("tighten permissions in %s: %w", dir, err)
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
		case info.IsDir():
			if info.Mode().Perm() == privateDirMode {
				continue
			}
			if err := tightenChildren(p); err != nil {
				return err
			}
			if err := chmodPrivate(p, privateDirMode); err != nil {
				return err
			}
		case info.Mode().Perm()&0o077 != 0:
			if err := chmodPrivate(p, info.Mode().Perm()&^0o077); err != nil {
				return err
			}
		}
	}
	return nil
}

func chmodPrivate(p string, mode fs.FileMode) error {
	if err := os.Chmod(p, mode); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tighten permissions of %s: %w", p, err)
	}
	return nil
}

// createPrivate creates path as an empty file of mode 0600 if it does not
// exist, so what opens it next (SQLite) finds the mode set, and copies it
// to the files it makes beside it.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, privateFileMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}
