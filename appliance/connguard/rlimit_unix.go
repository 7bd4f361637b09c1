//go:build unix

package connguard

import "syscall"

// reservedDescriptors are kept for everything but client connections: the
// database and its WAL, the listeners, the sync client's connections,
// files being imported or synced, logs.
const reservedDescriptors = 128

// descriptorsPerConn: a socket, and the file a media request streams.
const descriptorsPerConn = 2

// descriptorBudget is how many connections the process's descriptor limit
// allows (Go raises the soft limit to the hard one at start), or 0 if it
// cannot be read.
func descriptorBudget() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	cur := min(uint64(rl.Cur), 1<<30) // "unlimited" is all ones
	if cur <= reservedDescriptors+descriptorsPerConn {
		return 1
	}
	return int((cur - reservedDescriptors) / descriptorsPerConn)
}
