//go:build unix

package index

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time this process used: benchmarks report it
// beside wall time, which other load on the machine distorts.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
