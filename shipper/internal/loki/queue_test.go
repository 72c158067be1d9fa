package loki

import (
	"bytes"
	"testing"

	"github.com/flink-agent/flink-agent/shipper/internal/positions"
)

// After a burst (batches filled to loki.batch_bytes while catching up),
// steady small batches give the burst's buffers back: the pool keeps
// buffers sized for the steady state.
func TestBuffersShrinkAfterBurst(t *testing.T) {
	q := NewQueue(64 << 20)
	st := NewStream(`{filename="x.log"}`)
	line := bytes.Repeat([]byte("x"), 1000)
	fill := func(n int) *Batch {
		b := q.newBatch(0)
		for range n {
			b.add(st, 1, line, &Meta{}, positions.Mark{})
		}
		return b
	}
	capacity := func() int { // the largest buffer of the pooled batches
		var pooled []*Batch
		for len(q.pool) > 0 {
			pooled = append(pooled, <-q.pool)
		}
		n := 0
		for _, b := range pooled {
			for _, s := range b.sbuf {
				n = max(n, cap(s))
			}
			q.pool <- b
		}
		return n
	}
	bursts := make([]*Batch, 3)
	for i := range bursts {
		bursts[i] = fill(1000) // about 1 MB each
	}
	for _, b := range bursts {
		q.done(b)
	}
	if c := capacity(); c < 1<<20 {
		t.Fatalf("largest pooled buffer %d bytes right after the burst, want ≥ 1 MiB (kept while batches are big)", c)
	}
	for range 40 {
		q.done(fill(10))
	}
	if c := capacity(); c > 128<<10 {
		t.Errorf("largest pooled buffer %d bytes after 40 small batches, want it given back (≤ 128 KiB)", c)
	}
}
