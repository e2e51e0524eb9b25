//go:build unix

package events

import (
	"syscall"
	"time"
)

// processCPU is the user+system CPU time the test process has used; the
// benchmarks divide it by the events folded, which stays meaningful on a
// shared machine where wall time is not.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
