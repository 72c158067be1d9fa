package shipper

import (
	"context"
	"time"

	"github.com/flink-agent/flink-agent/internal/dogstatsd"
)

// acked saves the positions after the sender acknowledged a batch.
func (s *Shipper) acked() {
	if s.opts.OnFirstAck != nil {
		s.firstAck.Do(s.opts.OnFirstAck)
	}
	if s.saver == nil {
		return
	}
	s.saver.Changed()
	if err := s.saver.Save(false); err != nil {
		s.log.Error("saving positions failed", "err", err)
	}
}

func (s *Shipper) positionsChanged() {
	if s.saver != nil {
		s.saver.Changed()
	}
}

// housekeeping saves the positions durably every sync period and, when
// DogStatsD is on, sends the lag every second (Prometheus reads it when it
// scrapes: without DogStatsD nothing wakes the agent each second).
func (s *Shipper) housekeeping(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	syncT := time.NewTicker(s.sync)
	defer syncT.Stop()
	var lagC <-chan time.Time
	if s.opts.Statsd.Enabled() {
		lagT := time.NewTicker(time.Second)
		defer lagT.Stop()
		lagC = lagT.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-syncT.C:
			if s.saver != nil {
				if err := s.saver.Sync(); err != nil {
					s.log.Error("saving positions failed", "err", err)
				}
			}
		case <-lagC:
			s.opts.Statsd.Gauge(dogstatsd.AgentLokiLag, s.lag(time.Now()))
		}
	}
}

// lag is the age in seconds of the oldest entry Loki has not acknowledged.
func (s *Shipper) lag(now time.Time) float64 {
	if s.queue == nil {
		return 0
	}
	return s.queue.Lag(now)
}

func (s *Shipper) buffered() int64 {
	if s.queue == nil {
		return 0
	}
	return s.queue.Buffered()
}

// flushMetrics adds the reader's local counts to the metrics.
func (s *Shipper) flushMetrics() {
	s.m.flush(s.tail.TakeBytesRead(), s.tail.OpenFiles())
}
