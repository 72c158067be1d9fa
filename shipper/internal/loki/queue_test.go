package loki

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flink-agent/flink-agent/shipper/internal/positions"
)

// After a burst (batches filled to loki.batch_bytes while catching up),
// steady small batches give the burst's buffers back: the pool keeps
// buffers sized for the steady state.
func TestBuffersShrinkAfterBurst(t *testing.T) {
	q := NewQueue(64 << 20)
	bt := NewBatcher(q, BatchSettings{MaxLineBytes: 1 << 30, MaxWait: time.Hour}, nil)
	st := NewStream(`{filename="x.log"}`)
	// Random lines: compressed, they stay as big as they are.
	rng := rand.New(rand.NewPCG(5, 6))
	line := make([]byte, 1000)
	// One batch of n lines through the Batcher (handed off compressed)
	// and the sender's side (acknowledged).
	batch := func(n int) {
		for range n {
			for i := range line {
				line[i] = byte(rng.Uint32())
			}
			if err := bt.Add(st, 1, line, &Meta{}, positions.Mark{}, 0); err != nil {
				t.Fatal(err)
			}
		}
		bt.handoff()
		b := q.pop()
		if len(b.body) == 0 || b.ents != nil {
			t.Fatalf("handed off: %d bytes compressed, entry buffers %v: want the request only", len(b.body), b.ents != nil)
		}
		q.done(b)
	}
	capacity := func() int { // the largest buffer kept: entries, pooled bodies
		n := 0
		for i := range bt.spare.raw {
			n = max(n, cap(bt.spare.raw[i]), cap(bt.spare.z[i]))
		}
		var pooled []*Batch
		for len(q.pool) > 0 {
			pooled = append(pooled, <-q.pool)
		}
		for _, b := range pooled {
			n = max(n, cap(b.body))
			q.pool <- b
		}
		return n
	}
	for range 3 {
		batch(1000) // about 1 MB each
	}
	if c := capacity(); c < 1<<20 {
		t.Fatalf("largest buffer kept %d bytes right after the burst, want ≥ 1 MiB (kept while batches are big)", c)
	}
	for range 40 {
		batch(10)
	}
	if c := capacity(); c > 128<<10 {
		t.Errorf("largest buffer kept %d bytes after 40 small batches, want it given back (≤ 128 KiB)", c)
	}
}
