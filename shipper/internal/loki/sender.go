package loki

import (
	"context"
	"log/slog"
	"time"

	"github.com/flink-agent/flink-agent/internal/backoff"
	"github.com/flink-agent/flink-agent/internal/condition"
	"github.com/flink-agent/flink-agent/shipper/internal/positions"
)

// SendSettings say how failed pushes are retried.
type SendSettings struct {
	MinBackoff time.Duration // loki.min_backoff
	MaxBackoff time.Duration // loki.max_backoff, at least MinBackoff
	MaxRetries int           // loki.max_retries; 0: until delivered
}

// Observer learns what became of each push; the shipper turns it into
// metrics. Calls come from the sender goroutine.
type Observer interface {
	// Delivered: Loki acknowledged a batch of n entries.
	Delivered(n int)
	// Retrying: an attempt failed for reason and will be repeated.
	Retrying(reason string)
	// Rejected: Loki refused rejected of the batch's n entries for good
	// (400), and took the others.
	Rejected(reason string, rejected, n int)
	// Dropped: loki.max_retries attempts failed; the batch of n entries
	// is given up.
	Dropped(n int)
}

// Sender pushes the queued batches in order, one at a time, and
// acknowledges their entries' files when Loki has answered for good.
type Sender struct {
	c     *Client
	q     *Queue
	s     SendSettings
	obs   Observer
	log   *slog.Logger
	acked func() // after a batch's files were acknowledged

	loggedReject map[string]bool // each rejection reason is logged once
	// failing and dropping are logged when they start and when the next
	// push is delivered, with how many attempts failed or batches went.
	failing, dropping *condition.Warning
}

// NewSender pushes q's batches through c; acked is called after each
// batch's positions moved.
func NewSender(c *Client, q *Queue, s SendSettings, obs Observer, log *slog.Logger, acked func()) *Sender {
	return &Sender{c: c, q: q, s: s, obs: obs, log: log, acked: acked, loggedReject: map[string]bool{},
		failing:  condition.New(log, "Loki push failing; retrying with backoff (reading pauses when logs.max_buffer_bytes is reached)"),
		dropping: condition.New(log, "Loki push failed loki.max_retries times; dropping batches")}
}

// Run pushes batches until the queue is closed and empty. After ctx ends
// (the drain deadline) the remaining batches are dropped unacknowledged:
// their events are read again after a restart.
func (s *Sender) Run(ctx context.Context) {
	for b := s.q.pop(); b != nil; b = s.q.pop() {
		if ctx.Err() == nil {
			s.deliver(ctx, b)
		}
		s.q.done(b)
	}
}

// deliver pushes b (encoded by the Batcher) until Loki acknowledges or
// rejects it, retrying everything else with backoff, or until ctx ends.
func (s *Sender) deliver(ctx context.Context, b *Batch) {
	body := b.body
	bo := backoff.Backoff{Min: s.s.MinBackoff, Max: s.s.MaxBackoff}
	n := len(b.marks)
	for attempt := 1; ; attempt++ {
		r := s.c.Push(ctx, body)
		switch r.Outcome {
		case Delivered:
			s.obs.Delivered(n)
			s.failing.OK()
			s.dropping.OK()
			s.ack(b)
			return
		case Rejected:
			s.failing.OK()
			rejected := r.Ignored
			if rejected < 0 || rejected > n {
				rejected = n
			}
			s.obs.Rejected(r.Reason, rejected, n)
			if !s.loggedReject[r.Reason] {
				s.loggedReject[r.Reason] = true
				s.log.Error("Loki rejected log entries permanently; they are skipped (logged once per reason, counted in flink_agent_loki_entries_rejected_total)",
					"reason", r.Reason, "entries", rejected, "err", r.Err)
			}
			s.ack(b)
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.obs.Retrying(r.Reason)
		if limit := s.s.MaxRetries; limit > 0 && attempt > limit {
			s.obs.Dropped(n)
			s.dropping.Fail("entries", n, "attempts", attempt, "err", r.Err)
			s.ack(b)
			return
		}
		wait := bo.Next()
		if r.RetryAfter > wait {
			wait = min(r.RetryAfter, max(bo.Max, wait))
		}
		s.failing.Fail("reason", r.Reason, "retry_in", wait.Round(time.Millisecond), "err", r.Err)
		if !backoff.Wait(ctx, wait) {
			return
		}
	}
}

// ack advances the files' acknowledged offsets to the end of b's entries.
// The caller's acked saves them: saving after every batch (without fsync)
// is what bounds the duplicates after a SIGKILL to the batch in flight.
func (s *Sender) ack(b *Batch) {
	positions.Commit(b.marks)
	s.acked()
}
