package shipper

import (
	"errors"
	"strconv"
	"sync"
	"time"
)

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

// bent is what acknowledging an entry takes: its file and end offset.
type bent struct {
	f   *tfile
	end int64
}

// batch is what one push request carries. Each entry is written in the
// protobuf wire format as it is added, into its stream's buffer: the
// line is copied once, and encoding the request is framing the streams.
type batch struct {
	ents    []bent
	streams []*group
	sbuf    [][]byte // per stream: its encoded entries (field 2 of StreamAdapter)
	bytes   int64    // taken from the budget
	lines   int      // line bytes, compared with loki.batch_bytes
	first   int64    // read time of the first entry (lag)
}

func (b *batch) reset() {
	clear(b.ents) // drop the *tfile references
	b.ents = b.ents[:0]
	clear(b.streams)
	b.streams = b.streams[:0]
	for i := range b.sbuf {
		b.sbuf[i] = b.sbuf[i][:0]
	}
	b.bytes, b.lines, b.first = 0, 0, 0
}

func (b *batch) stream(g *group) int {
	for i := len(b.streams) - 1; i >= 0; i-- {
		if b.streams[i] == g {
			return i
		}
	}
	b.streams = append(b.streams, g)
	if len(b.sbuf) < len(b.streams) {
		b.sbuf = append(b.sbuf, nil)
	}
	si := len(b.streams) - 1
	b.sbuf[si] = append(b.sbuf[si][:0], make([]byte, streamHeaderRoom(g))...)
	return si
}

// add appends one entry to g's stream.
func (b *batch) add(g *group, ts int64, line []byte, level int8, logger, thread string, f *tfile, end int64) {
	si := b.stream(g)
	b.sbuf[si] = appendEntry(b.sbuf[si], ts, line, level, logger, thread)
	b.ents = append(b.ents, bent{f: f, end: end})
	b.lines += len(line)
}

var errStopping = errors.New("shipper stopping")

// emit finishes t's event: redaction, parsing, metrics, observers, and the
// batch (or, without Loki, the positions directly).
func (s *Shipper) emit(t *tfile) error {
	if t.evDropped > 0 {
		t.ev = append(t.ev, " … [truncated by flink-agent: "...)
		t.ev = strconv.AppendInt(t.ev, int64(t.evDropped), 10)
		t.ev = append(t.ev, " bytes dropped]"...)
	}
	out := s.red.apply(t.ev, t.evHdr.msgStart, t.evLines > 1)
	ts := t.evTS
	if ts == 0 {
		ts = s.nowNano
	} else {
		ts = t.g.clock.stamp(ts)
	}
	var logger, thread string
	h := &t.evHdr
	if h.loggerEnd > h.loggerStart {
		logger = s.loggers.get(t.ev[h.loggerStart:h.loggerEnd])
	}
	if h.threadEnd > h.threadStart {
		thread = s.threads.get(t.ev[h.threadStart:h.threadEnd])
	}
	comp := t.g.comp
	s.lineCounts[comp*numLevels+h.level]++
	if t.evLines > 1 {
		if c := exceptionClass(out); c != nil {
			s.countException(comp, c)
		}
	}
	if len(s.opts.Observers) > 0 {
		ev := &s.event
		ev.Time = time.Unix(0, ts)
		ev.Line = out
		ev.Level = ""
		if h.level != levelUnknown {
			ev.Level = levelNames[h.level]
		}
		ev.Logger, ev.Thread = logger, thread
		ev.File, ev.Component = t.path, t.g.compName
		for _, o := range s.opts.Observers {
			o.Observe(ev)
		}
		ev.Line = nil
	}
	if s.client == nil {
		t.committed.Store(t.evEnd)
	} else if err := s.appendBatch(t, ts, out, int8(h.level), logger, thread); err != nil {
		return err
	}
	t.handed = t.evEnd
	t.ev = t.ev[:0]
	t.evLines, t.evDropped, t.evTS = 0, 0, 0
	return nil
}

// appendBatch adds an entry to the current batch, waiting for memory when
// the budget is spent.
func (s *Shipper) appendBatch(t *tfile, ts int64, line []byte, level int8, logger, thread string) error {
	need := int64(len(line)) + entryOverhead
	if s.cur != nil && len(s.cur.ents) > 0 && s.cur.lines+len(line) > s.batchSize {
		if err := s.handoff(); err != nil {
			return err
		}
	}
	for !s.budget.take(need) {
		if s.cur != nil && len(s.cur.ents) > 0 {
			if err := s.handoff(); err != nil {
				return err
			}
			continue
		}
		if err := s.waitForMemory(); err != nil {
			return err
		}
	}
	// Reading ahead of the sender by more than a few batches buys no
	// throughput, only memory: wait for it (the budget still bounds the
	// bytes when batches are small).
	for s.cur == nil && s.queue.len() >= maxQueued {
		if err := s.waitForMemory(); err != nil {
			s.budget.release(need)
			return err
		}
	}
	b := s.cur
	if b == nil {
		b = s.getBatch()
		b.first = s.nowNano
		s.cur = b
		s.lagMu.Lock()
		s.lagFIFO = append(s.lagFIFO, b.first)
		s.lagMu.Unlock()
	}
	b.add(t.g, ts, line, level, logger, thread, t, t.evEnd)
	b.bytes += need
	return nil
}

// waitForMemory waits until the sender frees budget. Meanwhile new files
// are opened (not read), so that what is rotated away and deleted during
// a long Loki outage stays readable; and readiness is not held up.
func (s *Shipper) waitForMemory() error {
	s.firePass()
	t := time.NewTimer(s.poll)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return errStopping
	case <-s.budget.freed:
		return nil
	case <-s.notify:
		if s.scanWanted.Load() {
			s.scan(false)
		}
	case <-t.C:
		s.scan(false)
	}
	return nil
}

func (s *Shipper) getBatch() *batch {
	select {
	case b := <-s.pool:
		return b
	default:
		return &batch{}
	}
}

func (s *Shipper) putBatch(b *batch) {
	b.reset()
	select {
	case s.pool <- b:
	default:
	}
}

// handoff queues the current batch for the sender. It never blocks: the
// budget alone bounds what is queued, and waiting for it (waitForMemory)
// keeps opening new files, which waiting here would not.
func (s *Shipper) handoff() error {
	b := s.cur
	if b == nil || len(b.ents) == 0 {
		return nil
	}
	s.queue.push(b)
	s.cur = nil
	return nil
}

// maxQueued is how many full batches may wait for the sender.
const maxQueued = 3

// batchQueue is the FIFO between reader and sender. The reader waits (in
// waitForMemory, opening new files meanwhile) when it holds maxQueued
// batches or the budget is spent.
type batchQueue struct {
	mu     sync.Mutex
	items  []*batch
	closed bool
	ready  chan struct{}
}

func newBatchQueue() *batchQueue { return &batchQueue{ready: make(chan struct{}, 1)} }

func (q *batchQueue) push(b *batch) {
	q.mu.Lock()
	q.items = append(q.items, b)
	q.mu.Unlock()
	q.signal()
}

func (q *batchQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

func (q *batchQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *batchQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// pop waits for the next batch; nil once closed and empty.
func (q *batchQueue) pop() *batch {
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
