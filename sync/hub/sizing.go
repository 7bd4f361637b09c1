package hub

import (
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// patchBuildBytes is what one patch build holds: the 16 MiB window of the
// old file and the 8 MiB segment, and the encoder's tables for a 32 MiB
// history at its best level; measured at ~113 MB per build.
const patchBuildBytes = 128 << 20

// defaultPatchBuilds sizes the patch builders to the host: half its CPUs
// (a build is CPU-bound for about a second per segment, and the other half
// keeps serving blocks and changes), and no more than a quarter of its
// memory. Never fewer than one.
func defaultPatchBuilds() int {
	byCPU := max(1, runtime.GOMAXPROCS(0)/2)
	mem := hostMemory()
	if mem <= 0 {
		return byCPU
	}
	return max(1, min(byCPU, int(mem/4/patchBuildBytes)))
}

// hostMemory is the memory this process may use: the machine's RAM, or
// its cgroup's limit when that is lower (a container). 0 if unknown.
func hostMemory() int64 {
	var si unix.Sysinfo_t
	var mem int64
	if unix.Sysinfo(&si) == nil {
		mem = int64(si.Totalram) * int64(si.Unit)
	}
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (mem == 0 || n < mem) {
			mem = n
		}
	}
	return mem
}
