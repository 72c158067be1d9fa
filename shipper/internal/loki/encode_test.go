package loki

import (
	"bytes"
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
// entries with and without metadata, times before 1970 and with 0 ns.
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
			b.add(e.g, e.ts, []byte(e.line), &Meta{Level: e.level, Logger: e.logger, Thread: e.thread, ResourceNamespace: e.ns, ResourceName: e.name}, positions.Mark{})
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
