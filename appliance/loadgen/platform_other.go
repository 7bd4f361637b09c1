//go:build !linux

package loadgen

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// discardSocket needs Linux's MSG_TRUNC; elsewhere the stdlib client, which
// copies bodies, is the one to use.
func discardSocket(syscall.RawConn, []byte) (int, error) {
	return 0, fmt.Errorf("the raw client discards bodies with Linux's MSG_TRUNC; use the stdlib client here: %w", errors.ErrUnsupported)
}

// processCPU is not measured outside Linux; the report then shows 0.
func processCPU() time.Duration { return 0 }
