package upstream

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Kick asks the loop for a pass now. It never blocks: a kick while one is
// already pending is the same kick.
func (c *Client) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Serve runs passes until ctx ends: at once on start, then every Interval,
// sooner when kicked, and after a failure with exponential backoff (with
// jitter, so the boxes of a district that lost the hub together do not come
// back together). The schedule uses the monotonic clock only, so a box whose
// wall clock is wrong syncs on time all the same.
func (c *Client) Serve(ctx context.Context) error {
	backoff := time.Duration(0)
	for {
		err := c.Pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var wait time.Duration
		switch {
		case err == nil:
			backoff = 0
			wait = jitter(c.opts.Interval)
		case errors.Is(err, ErrPaused):
			backoff = 0
			wait = jitter(c.opts.Interval)
		case errors.Is(err, ErrPassRunning):
			// `sync now` run without the daemon, in another process: look
			// again soon, it may have stopped short of done.
			wait = jitter(min(c.opts.Interval, time.Minute))
			c.opts.Log.Info("sync pass skipped", "err", err, "retry_in", wait.Round(time.Second))
		default:
			backoff = min(max(2*backoff, 10*time.Second), 30*time.Minute)
			if permanent(err) {
				backoff = max(backoff, 10*time.Minute)
			}
			wait = jitter(backoff)
			c.opts.Log.Warn("sync pass failed", "err", err, "retry_in", wait.Round(time.Second))
		}
		next := time.Now().Add(wait)
		c.update(func(s *Status) { s.NextAttempt = next })
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-c.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// jitter spreads d over [0.75d, 1.25d).
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.75 + 0.5*rand.Float64()))
}
