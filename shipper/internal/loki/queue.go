package loki

import (
	"sync"
	"sync/atomic"
	"time"
)

// EntryOverhead is what an entry costs in memory besides its line; the
// budget (logs.max_buffer_bytes) counts it.
const EntryOverhead = 96

// maxQueued is how many full batches may wait for the sender.
const maxQueued = 3

// Queue is the FIFO between the Batcher (the reader) and the Sender. The
// bytes of its batches, from reading to acknowledgement, are bounded by a
// budget; the Batcher waits when it is spent or maxQueued batches wait.
type Queue struct {
	mu     sync.Mutex
	items  []*Batch
	closed bool
	ready  chan struct{}

	budget  budget
	pool    chan *Batch
	typical atomic.Int64 // bytes batches needed lately (moving average; the Batcher's)

	lagMu   sync.Mutex
	lagFIFO []int64 // read time of the first entry of every unacknowledged batch
}

// NewQueue holds at most budget bytes of entries (logs.max_buffer_bytes).
func NewQueue(budgetBytes int64) *Queue {
	return &Queue{
		ready:  make(chan struct{}, 1),
		budget: budget{max: budgetBytes, freed: make(chan struct{}, 1)},
		pool:   make(chan *Batch, maxQueued+2),
	}
}

func (q *Queue) push(b *Batch) {
	q.mu.Lock()
	q.items = append(q.items, b)
	q.mu.Unlock()
	q.signal()
}

func (q *Queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

func (q *Queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *Queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// pop waits for the next batch; nil once closed and empty.
func (q *Queue) pop() *Batch {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			b := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			q.mu.Unlock()
			return b
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil
		}
		<-q.ready
	}
}

// newBatch starts a batch at read time now (unix nanoseconds).
func (q *Queue) newBatch(now int64) *Batch {
	var b *Batch
	select {
	case b = <-q.pool:
	default:
		b = &Batch{}
	}
	b.first = now
	q.lagMu.Lock()
	q.lagFIFO = append(q.lagFIFO, now)
	q.lagMu.Unlock()
	return b
}

// done returns a batch's memory once it is acknowledged or given up.
func (q *Queue) done(b *Batch) {
	q.budget.release(b.bytes)
	q.lagMu.Lock()
	if len(q.lagFIFO) > 0 {
		q.lagFIFO = q.lagFIFO[:copy(q.lagFIFO, q.lagFIFO[1:])]
	}
	q.lagMu.Unlock()
	b.reset()
	b.shrink(q.keepLimit())
	select {
	case q.pool <- b:
	default:
	}
}

// Buffers are sized for the steady state: after a burst (catching up on a
// backlog fills batches to loki.batch_bytes), buffers far larger than what
// batches have needed lately are given back instead of being kept for good.
func (q *Queue) noteUsed(used int) {
	q.typical.Store((7*q.typical.Load() + int64(used)) / 8)
}

// keepLimit is the largest buffer worth keeping for the next batch.
func (q *Queue) keepLimit() int { return 4*int(q.typical.Load()) + 64<<10 }

// Lag is the age in seconds of the oldest unacknowledged entry.
func (q *Queue) Lag(now time.Time) float64 {
	q.lagMu.Lock()
	defer q.lagMu.Unlock()
	if len(q.lagFIFO) == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, q.lagFIFO[0])).Seconds()
}

// Buffered is the bytes of entries read and not yet acknowledged.
func (q *Queue) Buffered() int64 { return q.budget.inUse() }

// budget bounds the bytes of entries between reading and acknowledgement:
// the reader takes, the sender gives back; when it is spent, reading waits.
type budget struct {
	mu    sync.Mutex
	used  int64
	max   int64
	freed chan struct{}
}

func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
	select {
	case b.freed <- struct{}{}:
	default:
	}
}

func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
