package testbed

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// OtelCol is a real OpenTelemetry Collector (otelcol-otlp, built from Go
// modules by `scripts/tools.sh otelcol`): the OTLP receiver on gRPC and
// HTTP, on loopback, and the file exporter, whose JSON lines Spans reads
// back. Stop and Start again keep its ports (an outage, then recovery).
type OtelCol struct {
	Proc     *Proc
	Dir      string
	grpcPort int
	httpPort int
	bin      string
	starts   int
}

// otelColConfig: the receiver, the file exporter flushing at once, and no
// telemetry of its own (nothing else listens).
const otelColConfig = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[1]d
      http:
        endpoint: 127.0.0.1:%[2]d
exporters:
  file:
    path: %[3]s
    flush_interval: 100ms
service:
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
`

// StartOtelCol starts a collector with its files under dir and waits until
// both receivers accept connections.
func StartOtelCol(ctx context.Context, dir string) (*OtelCol, error) {
	bin, err := Tool("otelcol-otlp")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c := &OtelCol{Dir: dir, bin: bin}
	if c.grpcPort, err = FreePort(); err != nil {
		return nil, err
	}
	if c.httpPort, err = FreePort(); err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Start starts the collector again after Stop, on the same ports, writing
// to a new file.
func (c *OtelCol) Start(ctx context.Context) error {
	c.starts++
	out := filepath.Join(c.Dir, "traces-"+strconv.Itoa(c.starts)+".json")
	cfg := filepath.Join(c.Dir, "otelcol.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(otelColConfig, c.grpcPort, c.httpPort, out)), 0o644); err != nil {
		return err
	}
	var err error
	if c.Proc, err = StartProc("otelcol-"+strconv.Itoa(c.starts), c.Dir, nil, c.bin, "--config", "file:"+cfg); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err = WaitFor(wctx, c.Proc, 100*time.Millisecond, func(ctx context.Context) error {
		for _, p := range []int{c.grpcPort, c.httpPort} {
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", Addr(p))
			if err != nil {
				return err
			}
			_ = conn.Close()
		}
		return nil
	})
	if err != nil {
		c.Proc.Kill()
	}
	return err
}

// Stop stops the collector (SIGTERM: it flushes its file first).
func (c *OtelCol) Stop() error { return c.Proc.Stop(10 * time.Second) }

// GRPCURL is the OTLP/gRPC endpoint, http://127.0.0.1:port.
func (c *OtelCol) GRPCURL() string { return "http://" + Addr(c.grpcPort) }

// HTTPURL is the OTLP/HTTP base URL, http://127.0.0.1:port.
func (c *OtelCol) HTTPURL() string { return "http://" + Addr(c.httpPort) }

// Span is one span the collector received, with its resource.
type Span struct {
	TraceID, SpanID, ParentSpanID string
	Name                          string
	Start, End                    time.Time
	Attrs                         map[string]any
	Events                        []SpanEvent
	StatusCode                    string // "", "STATUS_CODE_OK", "STATUS_CODE_ERROR" as OTLP/JSON writes them
	StatusMessage                 string
	Resource                      map[string]any
}

// SpanEvent is a span event.
type SpanEvent struct {
	Name  string
	Time  time.Time
	Attrs map[string]any
}

// otlpJSON is the OTLP/JSON encoding the file exporter writes: ids in hex,
// times as decimal strings of nanoseconds, enums as numbers.
type otlpJSON struct {
	ResourceSpans []struct {
		Resource struct {
			Attributes []otlpKV `json:"attributes"`
		} `json:"resource"`
		ScopeSpans []struct {
			Spans []struct {
				TraceID      string   `json:"traceId"`
				SpanID       string   `json:"spanId"`
				ParentSpanID string   `json:"parentSpanId"`
				Name         string   `json:"name"`
				Start        string   `json:"startTimeUnixNano"`
				End          string   `json:"endTimeUnixNano"`
				Attributes   []otlpKV `json:"attributes"`
				Events       []struct {
					Name       string   `json:"name"`
					Time       string   `json:"timeUnixNano"`
					Attributes []otlpKV `json:"attributes"`
				} `json:"events"`
				Status struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"status"`
			} `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
}

type otlpKV struct {
	Key   string `json:"key"`
	Value struct {
		String *string  `json:"stringValue"`
		Int    *string  `json:"intValue"` // int64 is a string in OTLP/JSON
		Bool   *bool    `json:"boolValue"`
		Double *float64 `json:"doubleValue"`
	} `json:"value"`
}

func attrMap(kvs []otlpKV) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		v := kv.Value
		switch {
		case v.String != nil:
			m[kv.Key] = *v.String
		case v.Int != nil:
			n, _ := strconv.ParseInt(*v.Int, 10, 64)
			m[kv.Key] = n
		case v.Bool != nil:
			m[kv.Key] = *v.Bool
		case v.Double != nil:
			m[kv.Key] = *v.Double
		}
	}
	return m
}

func nanos(s string) time.Time {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.Unix(0, n)
}

var statusCodes = map[int]string{1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"}

// Spans returns every span received so far, across restarts, ordered by
// start time.
func (c *OtelCol) Spans() ([]Span, error) {
	files, err := filepath.Glob(filepath.Join(c.Dir, "traces-*.json"))
	if err != nil {
		return nil, err
	}
	var out []Span
	for _, f := range files {
		fh, err := os.Open(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
		for sc.Scan() {
			var doc otlpJSON
			if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
				continue // a line the collector is still writing
			}
			for _, rs := range doc.ResourceSpans {
				res := attrMap(rs.Resource.Attributes)
				for _, ss := range rs.ScopeSpans {
					for _, s := range ss.Spans {
						sp := Span{TraceID: s.TraceID, SpanID: s.SpanID, ParentSpanID: s.ParentSpanID, Name: s.Name,
							Start: nanos(s.Start), End: nanos(s.End), Attrs: attrMap(s.Attributes),
							StatusCode: statusCodes[s.Status.Code], StatusMessage: s.Status.Message, Resource: res}
						for _, e := range s.Events {
							sp.Events = append(sp.Events, SpanEvent{Name: e.Name, Time: nanos(e.Time), Attrs: attrMap(e.Attributes)})
						}
						out = append(out, sp)
					}
				}
			}
		}
		err = sc.Err()
		_ = fh.Close()
		if err != nil {
			return nil, err
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Start.Before(out[b].Start) })
	return out, nil
}
