package tracesink

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"strconv"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TraceID is a checkpoint's trace id, derived from the job id and the
// checkpoint id alone: a re-export can never make a second trace.
func TraceID(jobID string, checkpointID int64) trace.TraceID {
	var t trace.TraceID
	copy(t[:], digest("trace", jobID, strconv.FormatInt(checkpointID, 10)))
	if !t.IsValid() {
		t[0] = 1
	}
	return t
}

// spanID derives a span's id from its trace and its place in it, so that a
// re-export repeats the same spans.
func spanID(t trace.TraceID, parts ...string) trace.SpanID {
	var s trace.SpanID
	copy(s[:], digest(append([]string{"span", t.String()}, parts...)...))
	if !s.IsValid() {
		s[0] = 1
	}
	return s
}

func digest(parts ...string) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// sampled decides a healthy checkpoint's sampling from its trace id, as the
// SDK's TraceIDRatioBased sampler does: the same answer on every agent.
func sampled(t trace.TraceID, ratio float64) bool {
	if ratio >= 1 {
		return true
	}
	return binary.BigEndian.Uint64(t[8:16])>>1 < uint64(ratio*(1<<63))
}

type idsKey struct{}

type ids struct {
	trace trace.TraceID
	span  trace.SpanID
}

// withIDs makes the next span started with ctx get these ids.
func withIDs(ctx context.Context, t trace.TraceID, s trace.SpanID) context.Context {
	return context.WithValue(ctx, idsKey{}, ids{t, s})
}

// IDGenerator gives spans started through the sink their derived ids, and
// random ones to any other span.
func IDGenerator() sdktrace.IDGenerator { return idGenerator{} }

type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if v, ok := ctx.Value(idsKey{}).(ids); ok {
		return v.trace, v.span
	}
	var t trace.TraceID
	binary.BigEndian.PutUint64(t[:8], rand.Uint64())
	binary.BigEndian.PutUint64(t[8:], rand.Uint64()|1)
	return t, randomSpanID()
}

func (idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if v, ok := ctx.Value(idsKey{}).(ids); ok {
		return v.span
	}
	return randomSpanID()
}

func randomSpanID() trace.SpanID {
	var s trace.SpanID
	binary.BigEndian.PutUint64(s[:], rand.Uint64()|1)
	return s
}
