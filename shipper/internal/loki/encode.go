package loki

import (
	"encoding/binary"
	"math/bits"

	"github.com/klauspost/compress/s2"
)

// encoder turns a batch into the body of a Loki push: a PushRequest of
// github.com/grafana/loki/pkg/push (push.proto), snappy-compressed.
//
// Entries are written in the protobuf wire format when they are added to
// the batch (appendEntry), not by filling push.PushRequest and calling its
// Marshal: that path sized and converted every entry twice and copied
// every line twice more, a third of the shipper's CPU. The output is
// byte-for-byte what push.PushRequest.Marshal produces for the same
// request (TestEncoderMatchesPush), so Loki cannot tell the difference.
type encoder struct {
	hdr   []byte // one stream's header
	chunk []byte // one compressed chunk (snappyChunk)
}

const (
	tagStreams   = 1<<3 | 2 // PushRequest.streams
	tagLabels    = 1<<3 | 2 // Stream.labels
	tagEntries   = 2<<3 | 2 // Stream.entries
	tagTimestamp = 1<<3 | 2 // Entry.timestamp
	tagLine      = 2<<3 | 2 // Entry.line
	tagMetadata  = 3<<3 | 2 // Entry.structuredMetadata
	tagSeconds   = 1 << 3   // Timestamp.seconds (wire type 0, varint)
	tagNanos     = 2 << 3   // Timestamp.nanos (wire type 0, varint)
	tagName      = 1<<3 | 2 // LabelPairAdapter.name
	tagValue     = 2<<3 | 2 // LabelPairAdapter.value
)

func sov(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// lenField is the size of a length-delimited field holding n bytes
// (omitted when empty, as proto3 does).
func lenField(n int) int {
	if n == 0 {
		return 0
	}
	return 1 + sov(uint64(n)) + n
}

func labelPairSize(name, value string) int { return lenField(len(name)) + lenField(len(value)) }

func tsSize(ts int64) (sec int64, nsec int32, n int) {
	sec, nsec = ts/1e9, int32(ts%1e9)
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	if sec != 0 {
		n += 1 + sov(uint64(sec))
	}
	if nsec != 0 {
		n += 1 + sov(uint64(nsec))
	}
	return sec, nsec, n
}

// Meta is an entry's structured metadata; empty values are left out.
type Meta struct {
	Level, Logger, Thread string
	// The Kubernetes resource a Flink Kubernetes Operator line is about.
	ResourceNamespace, ResourceName string
}

func entrySize(ts int64, lineLen int, m *Meta) (int, int64, int32, int) {
	sec, nsec, tn := tsSize(ts)
	n := 1 + sov(uint64(tn)) + tn + lenField(lineLen)
	if m.Level != "" {
		n += metaField("level", m.Level)
	}
	if m.Logger != "" {
		n += metaField("logger", m.Logger)
	}
	if m.Thread != "" {
		n += metaField("thread", m.Thread)
	}
	if m.ResourceNamespace != "" {
		n += metaField("resource_namespace", m.ResourceNamespace)
	}
	if m.ResourceName != "" {
		n += metaField("resource_name", m.ResourceName)
	}
	return n, sec, nsec, tn
}

// appendEntry appends one EntryAdapter as field 2 of a StreamAdapter. Empty
// metadata values are left out of its structured metadata.
func appendEntry(b []byte, ts int64, line []byte, m *Meta) []byte {
	size, sec, nsec, tn := entrySize(ts, len(line), m)
	b = append(b, tagEntries)
	b = appendVarint(b, uint64(size))
	b = append(b, tagTimestamp)
	b = appendVarint(b, uint64(tn))
	if sec != 0 {
		b = append(b, tagSeconds)
		b = appendVarint(b, uint64(sec))
	}
	if nsec != 0 {
		b = append(b, tagNanos)
		b = appendVarint(b, uint64(nsec))
	}
	if len(line) > 0 {
		b = append(b, tagLine)
		b = appendVarint(b, uint64(len(line)))
		b = append(b, line...)
	}
	if m.Level != "" {
		b = appendMeta(b, "level", m.Level)
	}
	if m.Logger != "" {
		b = appendMeta(b, "logger", m.Logger)
	}
	if m.Thread != "" {
		b = appendMeta(b, "thread", m.Thread)
	}
	if m.ResourceNamespace != "" {
		b = appendMeta(b, "resource_namespace", m.ResourceNamespace)
	}
	if m.ResourceName != "" {
		b = appendMeta(b, "resource_name", m.ResourceName)
	}
	return b
}

func metaField(name, value string) int {
	s := labelPairSize(name, value)
	return 1 + sov(uint64(s)) + s
}

func appendMeta(b []byte, name, value string) []byte {
	b = append(b, tagMetadata)
	b = appendVarint(b, uint64(labelPairSize(name, value)))
	b = append(b, tagName)
	b = appendVarint(b, uint64(len(name)))
	b = append(b, name...)
	if value != "" {
		b = append(b, tagValue)
		b = appendVarint(b, uint64(len(value)))
		b = append(b, value...)
	}
	return b
}

// appendStreamHeader appends the StreamAdapter tag, its length and its
// labels field for a stream whose entries take n bytes.
func appendStreamHeader(pb []byte, st *Stream, n int) []byte {
	pb = append(pb, tagStreams)
	pb = appendVarint(pb, uint64(lenField(len(st.Labels))+n))
	if st.Labels != "" {
		pb = append(pb, tagLabels)
		pb = appendVarint(pb, uint64(len(st.Labels)))
		pb = append(pb, st.Labels...)
	}
	return pb
}

// snappyChunk is how much of a request is compressed at a time. A snappy
// block is its decoded length followed by elements whose copies reach
// back by offset, so the elements of pieces compressed one by one, after
// one length, are a valid block (the reference implementation works in
// 64 KiB fragments too). A batch's entries are compressed a chunk at a
// time as they come (fold) and the request is the stream headers, each
// compressed alone, around them (encode): memory grows with the
// compressed size, not with the request.
const snappyChunk = 64 << 10

// fold compresses the full chunks of stream si's entries not compressed
// yet, leaving less than a chunk.
func (e *encoder) fold(b *Batch, si int) {
	ents := b.ents
	raw := ents.raw[si]
	if len(raw) < snappyChunk {
		return
	}
	full := len(raw) - len(raw)%snappyChunk
	ents.z[si] = e.compress(ents.z[si], raw[:full])
	ents.raw[si] = raw[:copy(raw, raw[full:])]
}

// encode writes b's push request, snappy-compressed, into b.body and
// returns it.
func (e *encoder) encode(b *Batch) []byte {
	ents := b.ents
	total := 0
	for si, st := range b.streams {
		n := lenField(len(st.Labels)) + ents.n[si]
		total += 1 + sov(uint64(n)) + n
	}
	out := binary.AppendUvarint(b.body[:0], uint64(total))
	for si, st := range b.streams {
		e.hdr = appendStreamHeader(e.hdr[:0], st, ents.n[si])
		out = e.compress(out, e.hdr)
		out = append(out, ents.z[si]...)
		out = e.compress(out, ents.raw[si])
	}
	b.body = out
	return out
}

// compress appends the snappy elements of p (a block without its length).
func (e *encoder) compress(dst, p []byte) []byte {
	if e.chunk == nil {
		e.chunk = make([]byte, s2.MaxEncodedLen(snappyChunk))
	}
	for len(p) > 0 {
		c := p[:min(len(p), snappyChunk)]
		p = p[len(c):]
		// s2's snappy-compatible encoder: Loki decodes it with snappy, and
		// it takes a quarter less CPU than github.com/golang/snappy here.
		z := s2.EncodeSnappy(e.chunk, c)
		_, hn := binary.Uvarint(z)
		dst = append(dst, z[hn:]...)
	}
	return dst
}
