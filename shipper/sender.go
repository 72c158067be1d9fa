package shipper

import (
	"context"
	"time"

	"github.com/flink-agent/flink-agent/internal/backoff"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/shipper/loki"
)

// sendLoop pushes batches in order, one at a time, until the reader closes
// the queue. After ctx ends (the drain deadline) the remaining batches are
// dropped unacknowledged: their events are read again after a restart.
func (s *Shipper) sendLoop(ctx context.Context) {
	defer close(s.sent)
	var enc encoder
	for b := s.queue.pop(); b != nil; b = s.queue.pop() {
		if ctx.Err() == nil && s.client != nil {
			s.deliver(ctx, &enc, b)
		}
		s.budget.release(b.bytes)
		s.lagMu.Lock()
		if len(s.lagFIFO) > 0 {
			s.lagFIFO = s.lagFIFO[:copy(s.lagFIFO, s.lagFIFO[1:])]
		}
		s.lagMu.Unlock()
		s.putBatch(b)
	}
}

// deliver pushes b until Loki acknowledges or rejects it, retrying
// everything else with backoff, or until ctx ends.
func (s *Shipper) deliver(ctx context.Context, enc *encoder, b *batch) {
	body := enc.encode(b)
	bo := backoff.Backoff{Min: s.opts.Loki.MinBackoff.D(), Max: s.opts.Loki.MaxBackoff.D()}
	if bo.Min <= 0 {
		bo.Min = 500 * time.Millisecond
	}
	if bo.Max < bo.Min {
		bo.Max = 5 * time.Minute
	}
	var failingSince time.Time
	var lastLog time.Time
	for attempt := 1; ; attempt++ {
		r := s.client.Push(ctx, body)
		switch r.Outcome {
		case loki.Delivered:
			s.m.batches.WithLabelValues(resultSuccess).Inc()
			s.m.sent.Add(float64(len(b.ents)))
			if !failingSince.IsZero() {
				s.log.Info("Loki push succeeded again", "failed_for", time.Since(failingSince).Round(time.Millisecond), "attempts", attempt)
			}
			s.ack(b)
			return
		case loki.Rejected:
			n := r.Ignored
			if n < 0 || n > len(b.ents) {
				n = len(b.ents)
			}
			s.m.batches.WithLabelValues(resultRejected).Inc()
			s.m.rejected.WithLabelValues(r.Reason).Add(float64(n))
			s.m.sent.Add(float64(len(b.ents) - n))
			s.opts.Statsd.Count(dogstatsd.AgentLokiEntriesRejected, int64(n), dogstatsd.Tag("reason", r.Reason))
			if _, seen := s.loggedReject.LoadOrStore(r.Reason, struct{}{}); !seen {
				s.log.Error("Loki rejected log entries permanently; they are skipped (logged once per reason, counted in flink_agent_loki_entries_rejected_total)",
					"reason", r.Reason, "entries", n, "err", r.Err)
			}
			s.ack(b)
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.m.batches.WithLabelValues(resultRetry).Inc()
		if failingSince.IsZero() {
			failingSince = time.Now()
		}
		if max := s.opts.Loki.MaxRetries; max > 0 && attempt > max {
			s.m.batches.WithLabelValues(resultDropped).Inc()
			s.m.rejected.WithLabelValues("retries_exhausted").Add(float64(len(b.ents)))
			s.opts.Statsd.Count(dogstatsd.AgentLokiEntriesRejected, int64(len(b.ents)), dogstatsd.Tag("reason", "retries_exhausted"))
			s.log.Error("Loki push failed too often; dropping the batch (loki.max_retries)", "entries", len(b.ents), "attempts", attempt, "err", r.Err)
			s.ack(b)
			return
		}
		wait := bo.Next()
		if r.RetryAfter > wait {
			wait = min(r.RetryAfter, max(bo.Max, wait))
		}
		if lastLog.IsZero() || time.Since(lastLog) >= time.Minute {
			lastLog = time.Now()
			s.log.Warn("Loki push failed; retrying (reading pauses when logs.max_buffer_bytes is reached)",
				"reason", r.Reason, "attempt", attempt, "retry_in", wait.Round(time.Millisecond), "err", r.Err)
		}
		if !backoff.Wait(ctx, wait) {
			return
		}
	}
}

// ack advances the files' acknowledged offsets to the end of b's entries
// and saves the positions. Saving after every batch (without fsync) is
// what bounds the duplicates after a SIGKILL to the batch in flight.
func (s *Shipper) ack(b *batch) {
	var last *tfile
	for i := range b.ents {
		e := &b.ents[i]
		if e.f != last && last != nil {
			last.committed.Store(b.ents[i-1].end)
		}
		last = e.f
	}
	if last != nil {
		last.committed.Store(b.ents[len(b.ents)-1].end)
	}
	s.posVersion.Add(1)
	if s.pw != nil {
		if err := s.savePositions(false); err != nil {
			s.log.Error("saving positions failed", "err", err)
		}
	}
}
