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
// protobuf wire format as it is added, into its stream's buffer (the line
// is copied once), and every full snappyChunk of a stream's entries is
// compressed right away (encoder.fold): a batch holds its entries
// compressed, a quarter of their size for Flink's logs, plus less than a
// chunk of each stream not yet compressed. Encoding the request is then
// framing the streams. Its marks say how far each file is acknowledged
// when Loki takes it.
type Batch struct {
	marks   []positions.Mark
	streams []*Stream
	ents    *entryBufs // nil once handed off
	body    []byte     // the compressed request, from the handoff on
	bytes   int64      // taken from the budget
	lines   int        // line bytes, compared with loki.batch_bytes
	first   int64      // read time of the first entry (lag)
}

// entryBufs are a batch's entries, per stream (index as Batch.streams).
// They pass from each batch handed off to the next one (Batcher.spare).
type entryBufs struct {
	raw [][]byte // encoded entries not compressed yet (field 2 of StreamAdapter)
	z   [][]byte // snappy elements of the entries compressed so far
	n   []int    // encoded bytes of all its entries, compressed or not
}

func (e *entryBufs) reset() {
	for i := range e.raw {
		e.raw[i], e.z[i], e.n[i] = e.raw[i][:0], e.z[i][:0], 0
	}
}

func (b *Batch) reset() {
	clear(b.marks) // drop the file references
	b.marks = b.marks[:0]
	clear(b.streams)
	b.streams = b.streams[:0]
	if b.ents != nil {
		b.ents.reset()
	}
	b.body = b.body[:0]
	b.bytes, b.lines, b.first = 0, 0, 0
}

// shrink drops buffers (emptied by reset) larger than limit bytes.
func (b *Batch) shrink(limit int) {
	if b.ents != nil {
		b.ents.shrink(limit)
	}
	if cap(b.marks)*int(unsafe.Sizeof(positions.Mark{})) > limit {
		b.marks = nil
	}
	if cap(b.body) > limit {
		b.body = nil
	}
}

func (e *entryBufs) shrink(limit int) {
	for i := range e.raw {
		if cap(e.raw[i]) > limit {
			e.raw[i] = nil
		}
		if cap(e.z[i]) > limit {
			e.z[i] = nil
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
	if b.ents == nil {
		b.ents = &entryBufs{}
	}
	if e := b.ents; len(e.raw) < len(b.streams) {
		e.raw, e.z, e.n = append(e.raw, nil), append(e.z, nil), append(e.n, 0)
	}
	return len(b.streams) - 1
}

// add appends one entry to st's stream and returns the stream's index.
func (b *Batch) add(st *Stream, ts int64, line []byte, m *Meta, mark positions.Mark) int {
	si := b.stream(st)
	e := b.ents
	n := len(e.raw[si])
	e.raw[si] = appendEntry(e.raw[si], ts, line, m)
	e.n[si] += len(e.raw[si]) - n
	b.marks = append(b.marks, mark)
	b.lines += len(line)
	return si
}
