// Package backoff is exponential backoff with full jitter, for every retry
// loop in the agent (Loki pushes, PagerDuty events, REST re-tries).
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff yields growing, jittered waits between Min and Max.
type Backoff struct {
	Min, Max time.Duration
	attempt  int
}

// Next returns the wait before the next attempt: a random duration in
// [d/2, d] where d doubles from Min up to Max. Half-jitter keeps a floor so
// a flapping peer is not hammered, while spreading synchronized clients.
func (b *Backoff) Next() time.Duration {
	d := b.Min
	for i := 0; i < b.attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	b.attempt++
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Reset starts over from Min after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Attempts is how many waits Next has handed out since the last Reset.
func (b *Backoff) Attempts() int { return b.attempt }

// Wait sleeps for d or until ctx ends; it reports whether the full wait
// elapsed.
func Wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
