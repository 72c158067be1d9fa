package loki

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"

	"github.com/flink-agent/flink-agent/shipper/internal/positions"
)

// TestEncoderMatchesPush checks that the hand-written encoder produces
// exactly push.PushRequest.Marshal's bytes for the same request, and that
// push decodes it back: several streams, interleaved entries, empty lines,
// entries with and without metadata, times before 1970 and with 0 ns,
// compressed a chunk at a time as they come (fold) or all at the end.
func TestEncoderMatchesPush(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	groups := []*Stream{NewStream(`{filename="a.log", pod="p"}`), NewStream(`{filename="b.log"}`), NewStream(`{component="jobmanager", filename="c.log"}`)}
	levels := []string{"", "trace", "debug", "info", "warn", "error", "fatal"}
	var enc encoder
	b := &Batch{} // reused, as the shipper does
	for round := 0; round < 60; round++ {
		b.reset()
		ng := 1 + round%len(groups) // one stream (encoded in place) or several
		type entry struct {
			g                     *Stream
			ts                    int64
			line                  string
			level, logger, thread string
			ns, name              string // an operator line's resource
		}
		var ents []entry
		n := 1 + rng.IntN(300)
		for i := 0; i < n; i++ {
			g := groups[rng.IntN(ng)]
			line := bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, rng.IntN(400))
			var ts int64
			switch rng.IntN(4) {
			case 0:
				ts = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano() + rng.Int64N(1e12)
			case 1:
				ts = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).Unix() * 1e9 // 0 ns
			case 2:
				ts = -rng.Int64N(1e15) // before 1970
			default:
				ts = rng.Int64N(1e9) // 0 s
			}
			e := entry{g: g, ts: ts, line: string(line), level: levels[rng.IntN(len(levels))]}
			if rng.IntN(2) == 0 {
				e.logger = "org.apache.flink.runtime.Foo"
			}
			if rng.IntN(3) == 0 {
				e.thread = "Source: x (1/4)#0"
			}
			if rng.IntN(4) == 0 {
				e.ns = "flink"
			}
			if rng.IntN(4) == 0 {
				e.name = "orders-enrichment"
			}
			ents = append(ents, e)
			si := b.add(e.g, e.ts, []byte(e.line), &Meta{Level: e.level, Logger: e.logger, Thread: e.thread, ResourceNamespace: e.ns, ResourceName: e.name}, positions.Mark{})
			if round%2 == 0 {
				enc.fold(b, si)
			}
		}
		got, err := snappy.Decode(nil, enc.encode(b))
		if err != nil {
			t.Fatal(err)
		}
		// The same request through push's own types and Marshal.
		var req push.PushRequest
		for _, g := range b.streams {
			st := push.Stream{Labels: g.Labels}
			for _, e := range ents {
				if e.g != g {
					continue
				}
				var md push.LabelsAdapter
				if e.level != "" {
					md = append(md, push.LabelAdapter{Name: "level", Value: e.level})
				}
				if e.logger != "" {
					md = append(md, push.LabelAdapter{Name: "logger", Value: e.logger})
				}
				if e.thread != "" {
					md = append(md, push.LabelAdapter{Name: "thread", Value: e.thread})
				}
				if e.ns != "" {
					md = append(md, push.LabelAdapter{Name: "resource_namespace", Value: e.ns})
				}
				if e.name != "" {
					md = append(md, push.LabelAdapter{Name: "resource_name", Value: e.name})
				}
				st.Entries = append(st.Entries, push.Entry{Timestamp: time.Unix(0, e.ts), Line: e.line, StructuredMetadata: md})
			}
			req.Streams = append(req.Streams, st)
		}
		want, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d: encoder output differs from push.PushRequest.Marshal (%d vs %d bytes)", round, len(got), len(want))
		}
		var back push.PushRequest
		if err := back.Unmarshal(got); err != nil {
			t.Fatal(err)
		}
		if len(back.Streams) != len(b.streams) {
			t.Fatalf("decoded %d streams", len(back.Streams))
		}
	}
}

// A request of many chunks (snappyChunk) compresses into one valid snappy
// block. While entries are added, a batch holds them compressed plus less
// than a chunk; its buffers grow with the compressed size, not the worst
// case.
func TestEncoderChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	st := NewStream(`{filename="a.log"}`)
	b := &Batch{}
	var enc encoder
	for _, size := range []int{1, 100, snappyChunk - 7, snappyChunk, 3*snappyChunk + 1, 5 << 20} {
		b.reset()
		var want []byte // the entries; the decoded request ends with them
		for len(b.marks) == 0 || len(want) < size {
			var line []byte
			if rng.IntN(50) == 0 { // incompressible
				line = make([]byte, 1+rng.IntN(3000))
				for i := range line {
					line[i] = byte(rng.Uint32())
				}
			} else {
				line = fmt.Appendf(nil, "2024-05-01 12:00:%02d,%03d INFO  org.apache.flink.runtime.taskexecutor.TaskExecutor [] - Event %d", rng.IntN(60), rng.IntN(1000), rng.IntN(1e6))
			}
			want = appendEntry(want, int64(len(b.marks)), line, &Meta{Level: "info"})
			enc.fold(b, b.add(st, int64(len(b.marks)), line, &Meta{Level: "info"}, positions.Mark{}))
			if raw := b.ents.raw[0]; len(raw) >= snappyChunk {
				t.Fatalf("%d bytes: %d not compressed after fold, want less than a chunk", size, len(raw))
			}
		}
		if size > snappyChunk {
			if z := b.ents.z[0]; cap(z) > len(want)/2 {
				t.Errorf("%d bytes: compressed entries buffer %d bytes for %d compressed, %d encoded", size, cap(z), len(z), len(want))
			}
		}
		body := enc.encode(b)
		got, err := snappy.Decode(nil, body)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if !bytes.HasSuffix(got, want) || len(got) > len(want)+len(st.Labels)+32 {
			t.Fatalf("%d bytes: decoded %d bytes, not the request", size, len(got))
		}
		if size > snappyChunk && cap(body) > len(got)/2 {
			t.Errorf("%d bytes: output buffer %d bytes for %d compressed, %d decoded", size, cap(body), len(body), len(got))
		}
	}
}
