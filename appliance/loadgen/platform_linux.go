package loadgen

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// discardSocket receives up to len(p) bytes from the socket and drops them
// in the kernel: with MSG_TRUNC, Linux's TCP skips the copy to user space
// (p is never written), so discarding costs the client almost nothing.
func discardSocket(rc syscall.RawConn, p []byte) (int, error) {
	var n int
	var opErr error
	err := rc.Read(func(fd uintptr) bool {
		n, _, opErr = unix.Recvfrom(int(fd), p, unix.MSG_TRUNC|unix.MSG_DONTWAIT)
		return opErr != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	if opErr != nil {
		return 0, opErr
	}
	return n, nil
}

// processCPU is the CPU time (user + system) this process has used, so a
// run can report whether the load generator itself was near its limit.
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
