package otlp

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/testbed"
)

// receiver is an OTLP/HTTP endpoint that answers with the codes it is
// given, then 200, and keeps the headers of each request.
type receiver struct {
	mu      sync.Mutex
	codes   []int
	hold    chan struct{} // when set, requests wait for it
	headers []http.Header
	ok      atomic.Int64
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	r.mu.Lock()
	r.headers = append(r.headers, req.Header.Clone())
	code := http.StatusOK
	if len(r.codes) > 0 {
		code, r.codes = r.codes[0], r.codes[1:]
	}
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if code == http.StatusOK {
		r.ok.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	w.WriteHeader(code)
}

func newProvider(t *testing.T, url string, mod func(*config.Traces)) (*Provider, *prometheus.Registry, *[]int) {
	t.Helper()
	tr := config.Default().Traces
	tr.OTLPEndpoint, tr.OTLPProtocol = url, config.ProtocolHTTP
	if mod != nil {
		mod(&tr)
	}
	reg := prometheus.NewPedanticRegistry()
	var exported []int
	var mu sync.Mutex
	p, err := New(Options{Traces: tr, Registerer: reg, OnExported: func(s []sdktrace.ReadOnlySpan) {
		mu.Lock()
		exported = append(exported, len(s))
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	return p, reg, &exported
}

func value(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	v, err := testbed.GatherValue(reg, name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func endSpans(p *Provider, n int) {
	tr := p.Tracer("test")
	for i := 0; i < n; i++ {
		_, s := tr.Start(context.Background(), "span")
		s.End()
	}
}

// A receiver answering 503 twice is retried, counted, and gets the batch;
// one answering 400 gets no retry: the batch is dropped and counted.
func TestRetriesAndPermanentRefusals(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		codes                   []int
		retries, failed, export float64
	}{
		{"unavailable twice", []int{503, 503}, 2, 0, 3},
		{"bad request", []int{400}, 0, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := &receiver{codes: tc.codes}
			srv := httptest.NewServer(rcv)
			defer srv.Close()
			p, reg, exported := newProvider(t, srv.URL, nil)
			endSpans(p, 3)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// Shutdown flushes: one attempt once it started, so wait for
			// the retries first.
			for value(t, reg, "flink_agent_otlp_batches_total", "result", "success")+value(t, reg, "flink_agent_otlp_batches_total", "result", "failed") == 0 {
				if err := p.tp.ForceFlush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if r := value(t, reg, "flink_agent_otlp_batches_total", "result", "retry"); r != tc.retries {
				t.Errorf("retries %v, want %v", r, tc.retries)
			}
			if f := value(t, reg, "flink_agent_otlp_batches_total", "result", "failed"); f != tc.failed {
				t.Errorf("failed batches %v, want %v", f, tc.failed)
			}
			if e := value(t, reg, "flink_agent_otlp_spans_exported_total"); e != tc.export {
				t.Errorf("exported %v, want %v (hook saw %v)", e, tc.export, *exported)
			}
			if d := value(t, reg, "flink_agent_otlp_spans_dropped_total", "reason", "export_failed"); d != 3-tc.export {
				t.Errorf("dropped %v, want %v", d, 3-tc.export)
			}
		})
	}
}

// A receiver that does not answer never blocks the agent: ending spans
// returns at once, what does not fit traces.queue_size is dropped and
// counted, and nothing is lost from the count.
func TestQueueBoundedWhileReceiverHangs(t *testing.T) {
	rcv := &receiver{hold: make(chan struct{})}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	p, reg, _ := newProvider(t, srv.URL, func(tr *config.Traces) { tr.QueueSize = 16 })
	start := time.Now()
	endSpans(p, 1000)
	if d := time.Since(start); d > time.Second {
		t.Errorf("ending 1000 spans took %s with the receiver hanging", d)
	}
	queued := value(t, reg, "flink_agent_otlp_queued_spans")
	dropped := value(t, reg, "flink_agent_otlp_spans_dropped_total", "reason", "queue_full")
	if queued > 16 || dropped < 1000-16-16 {
		t.Errorf("queued %v (max 16), dropped %v", queued, dropped)
	}
	close(rcv.hold)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	exported := value(t, reg, "flink_agent_otlp_spans_exported_total")
	all := exported + value(t, reg, "flink_agent_otlp_spans_dropped_total", "reason", "queue_full") +
		value(t, reg, "flink_agent_otlp_spans_dropped_total", "reason", "export_failed") +
		value(t, reg, "flink_agent_otlp_spans_dropped_total", "reason", "shutdown")
	if all != 1000 || exported == 0 {
		t.Errorf("exported %v, all accounted %v, want 1000", exported, all)
	}
}

// Headers from traces.headers and from files (re-read at each export, so
// a rotated Secret is picked up), Authorization included.
func TestHeaderFiles(t *testing.T) {
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _, _ := newProvider(t, srv.URL, func(tr *config.Traces) {
		tr.Headers = map[string]string{"X-Scope-OrgID": "tenant-1"}
		tr.HeaderFiles = map[string]string{"Authorization": key}
	})
	ctx := context.Background()
	endSpans(p, 1)
	if err := p.tp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte("second"), 0o600); err != nil {
		t.Fatal(err)
	}
	endSpans(p, 1)
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.headers) != 2 || rcv.headers[0].Get("Authorization") != "first" || rcv.headers[1].Get("Authorization") != "second" ||
		rcv.headers[0].Get("X-Scope-OrgID") != "tenant-1" {
		t.Errorf("headers %v", rcv.headers)
	}
	// A header file that cannot be read is a startup error naming it.
	tr := config.Default().Traces
	tr.OTLPEndpoint, tr.HeaderFiles = srv.URL, map[string]string{"Authorization": filepath.Join(t.TempDir(), "missing")}
	if _, err := New(Options{Traces: tr, Registerer: prometheus.NewRegistry()}); err == nil {
		t.Error("an unreadable header file was accepted")
	}
}
