package loki

import (
	"time"

	"github.com/flink-agent/flink-agent/shipper/internal/positions"
)

// BatchSettings shape the batches.
type BatchSettings struct {
	MaxLineBytes int           // loki.batch_bytes: line bytes per push
	MaxWait      time.Duration // loki.batch_wait: how long the first entry waits for more
}

// Batcher is the reader's side of the queue: it fills a batch and hands it
// to the Sender when it is full or old enough. It is not safe for
// concurrent use (one reader goroutine).
type Batcher struct {
	s   BatchSettings
	q   *Queue
	cur *Batch
	enc encoder
	// spare is the entry buffers of the batch handed off last: the sender
	// pushes (and retries) the compressed request, so one set of entry
	// buffers serves every batch.
	spare *entryBufs
	// wait is called when the budget is spent or the queue is full, and
	// returns when the reader should try again (after freed has a value,
	// or whenever it likes: it may do other work meanwhile); an error
	// stops the reader.
	wait func(freed <-chan struct{}) error
}

// NewBatcher fills batches for q. wait: see Batcher.wait.
func NewBatcher(q *Queue, s BatchSettings, wait func(freed <-chan struct{}) error) *Batcher {
	return &Batcher{s: s, q: q, wait: wait}
}

// Add appends an entry, read at now (unix nanoseconds), to the current
// batch, waiting for memory when the budget is spent. An error comes from
// wait: the entry was not added.
func (b *Batcher) Add(st *Stream, ts int64, line []byte, m *Meta, mark positions.Mark, now int64) error {
	need := int64(len(line)) + EntryOverhead
	if b.cur != nil && len(b.cur.marks) > 0 && b.cur.lines+len(line) > b.s.MaxLineBytes {
		b.handoff()
	}
	for !b.q.budget.take(need) {
		if b.cur != nil && len(b.cur.marks) > 0 {
			b.handoff()
			continue
		}
		if err := b.wait(b.q.budget.freed); err != nil {
			return err
		}
	}
	// Reading ahead of the sender by more than a few batches buys no
	// throughput, only memory: wait for it (the budget still bounds the
	// bytes when batches are small).
	for b.cur == nil && b.q.len() >= maxQueued {
		if err := b.wait(b.q.budget.freed); err != nil {
			b.q.budget.release(need)
			return err
		}
	}
	if b.cur == nil {
		b.cur = b.q.newBatch(now)
		if b.cur.ents == nil {
			b.cur.ents, b.spare = b.spare, nil
		}
	}
	b.enc.fold(b.cur, b.cur.add(st, ts, line, m, mark))
	b.cur.bytes += need
	return nil
}

// Flush hands the current batch to the sender if it has waited
// loki.batch_wait; otherwise it returns when it will have (ok false: no
// batch is pending).
func (b *Batcher) Flush(now time.Time) (due time.Time, ok bool) {
	if b.cur == nil || len(b.cur.marks) == 0 {
		return time.Time{}, false
	}
	due = time.Unix(0, b.cur.first).Add(b.s.MaxWait)
	if !now.Before(due) {
		b.handoff()
		return time.Time{}, false
	}
	return due, true
}

// Due is when the current batch is to be handed off (ok false: no batch
// is pending).
func (b *Batcher) Due() (time.Time, bool) {
	if b.cur == nil || len(b.cur.marks) == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, b.cur.first).Add(b.s.MaxWait), true
}

// Close hands the current batch to the sender and closes the queue: the
// sender stops once it has pushed (or given up) what is queued.
func (b *Batcher) Close() {
	b.handoff()
	b.q.close()
}

// handoff compresses the current batch and queues it for the sender, and
// keeps its entry buffers for the next batch. It never blocks: the budget
// alone bounds what is queued, and waiting for it (wait) lets the reader
// keep opening new files, which waiting here would not.
func (b *Batcher) handoff() {
	cur := b.cur
	if cur == nil || len(cur.marks) == 0 {
		return
	}
	b.q.noteUsed(len(b.enc.encode(cur)))
	b.spare, cur.ents = cur.ents, nil
	b.spare.reset()
	b.spare.shrink(b.q.keepLimit())
	b.q.push(cur)
	b.cur = nil
}
