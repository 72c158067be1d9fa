package loki

import (
	"unsafe"

	"github.com/flink-agent/flink-agent/shipper/internal/positions"
)

// Stream is one Loki stream: its labels, and the clock that gives its
// entries distinct times.
type Stream struct {
	Labels string // rendered, sorted: {cluster="c1", filename="x.log", …}
	clock  streamClock
}

// NewStream returns the stream with these labels. Every file whose
// entries go to it must share it, so that its clock sees them all.
func NewStream(labels string) *Stream { return &Stream{Labels: labels} }

// Stamp returns the entry time for an event logged at ts (unix
// nanoseconds, millisecond precision); see streamClock.
func (s *Stream) Stamp(ts int64) int64 { return s.clock.stamp(ts) }

// streamClock spreads events of one Loki stream that share a millisecond
// over its nanoseconds. Loki drops an entry equal to one it holds in
// stream, time and line. Flink logs some lines twice in a millisecond; a
// rotation can put the two in different files of the stream, and other
// threads' lines can come between them with a later millisecond, so the
// state belongs to the stream and remembers the last few milliseconds.
type streamClock struct {
	ts   [clockSlots]int64
	seq  [clockSlots]int64
	last int   // slot written last
	max  int64 // the latest millisecond in the ring
}

const clockSlots = 16

// stamp returns the entry time for an event logged at ts (nanoseconds,
// millisecond precision): ts itself for the first event of a millisecond,
// then ts+1, ts+2, … (up to 999,999; beyond, times repeat).
func (c *streamClock) stamp(ts int64) int64 {
	if ts <= c.max { // usually the same millisecond as the last event
		for i, j := 0, c.last; i < clockSlots; i++ {
			if c.ts[j] == ts {
				if c.seq[j] < 999_999 {
					c.seq[j]++
				}
				return ts + c.seq[j]
			}
			j = (j - 1) & (clockSlots - 1)
		}
	} else {
		c.max = ts
	}
	// A new millisecond replaces the oldest one.
	c.last = (c.last + 1) & (clockSlots - 1)
	c.ts[c.last], c.seq[c.last] = ts, 0
	return ts
}

// Batch is what one push request carries. Each entry is written in the
// protobuf wire format as it is added, into its stream's buffer: the
// line is copied once, and encoding the request is framing the streams.
// Its marks say how far each file is acknowledged when Loki takes it.
type Batch struct {
	marks   []positions.Mark
	streams []*Stream
	sbuf    [][]byte // per stream: its encoded entries (field 2 of StreamAdapter); nil once handed off
	body    []byte   // the compressed request, from the handoff on
	bytes   int64    // taken from the budget
	lines   int      // line bytes, compared with loki.batch_bytes
	first   int64    // read time of the first entry (lag)
}

func (b *Batch) reset() {
	clear(b.marks) // drop the file references
	b.marks = b.marks[:0]
	clear(b.streams)
	b.streams = b.streams[:0]
	for i := range b.sbuf {
		b.sbuf[i] = b.sbuf[i][:0]
	}
	b.body = b.body[:0]
	b.bytes, b.lines, b.first = 0, 0, 0
}

// used is the bytes of the batch's encoded entries.
func (b *Batch) used() int {
	n := 0
	for i := range b.streams {
		n += len(b.sbuf[i])
	}
	return n
}

// shrink drops buffers (emptied by reset) larger than limit bytes.
func (b *Batch) shrink(limit int) {
	shrinkBufs(b.sbuf, limit)
	if cap(b.marks)*int(unsafe.Sizeof(positions.Mark{})) > limit {
		b.marks = nil
	}
	if cap(b.body) > limit {
		b.body = nil
	}
}

func shrinkBufs(bufs [][]byte, limit int) {
	for i := range bufs {
		if cap(bufs[i]) > limit {
			bufs[i] = nil
		}
	}
}

func (b *Batch) stream(st *Stream) int {
	for i := len(b.streams) - 1; i >= 0; i-- {
		if b.streams[i] == st {
			return i
		}
	}
	b.streams = append(b.streams, st)
	if len(b.sbuf) < len(b.streams) {
		b.sbuf = append(b.sbuf, nil)
	}
	si := len(b.streams) - 1
	b.sbuf[si] = append(b.sbuf[si][:0], make([]byte, streamHeaderRoom(st))...)
	return si
}

// add appends one entry to st's stream.
func (b *Batch) add(st *Stream, ts int64, line []byte, m *Meta, mark positions.Mark) {
	si := b.stream(st)
	b.sbuf[si] = appendEntry(b.sbuf[si], ts, line, m)
	b.marks = append(b.marks, mark)
	b.lines += len(line)
}
