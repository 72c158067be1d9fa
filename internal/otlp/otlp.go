// Package otlp sends the agent's spans to an OTLP receiver, over gRPC or
// HTTP/protobuf, with the OpenTelemetry Go SDK: the SDK's batch span
// processor behind a bounded queue, failed exports retried with backoff, and
// every span given up on counted. The receiver being down never slows the
// agent: ending a span only enqueues it, or drops and counts it.
package otlp

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/httpclient"
	"github.com/flink-agent/flink-agent/internal/identity"
)

// Options configure a Provider.
type Options struct {
	Traces   config.Traces // validated and enabled
	Identity identity.Identity
	Version  string // the agent's, service.version
	// IDGenerator makes the trace and span ids (deterministic ones for
	// checkpoints); nil: the SDK's random ids.
	IDGenerator sdktrace.IDGenerator
	Registerer  prometheus.Registerer // required
	Logger      *slog.Logger
	// OnExported, when set, is called with every batch the receiver
	// accepted, on the export goroutine.
	OnExported func([]sdktrace.ReadOnlySpan)
	UserAgent  string
}

// Provider is a TracerProvider exporting over OTLP.
type Provider struct {
	tp  *sdktrace.TracerProvider
	exp *exporter
}

// New builds the exporter and the provider. It fails on unreadable TLS or
// header files; it never contacts the receiver (that happens at the first
// export, and failures then are retried, counted and logged).
func New(o Options) (*Provider, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	t := o.Traces
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	headers := headerFiles(t.HeaderFiles)
	if err := headers.check(); err != nil {
		return nil, err
	}
	var client sdktrace.SpanExporter
	switch t.Protocol() {
	case config.ProtocolGRPC:
		client, err = grpcExporter(t, headers)
	default:
		client, err = httpExporter(t, headers, o.UserAgent)
	}
	if err != nil {
		return nil, err
	}
	res, err := newResource(o)
	if err != nil {
		return nil, err
	}
	g := &gate{max: int64(t.QueueSize)}
	exp := newExporter(client, g, m, o.Logger, o.OnExported, t.Timeout.D())
	// The SDK's processor keeps what it drops to itself: the gate in front
	// of it never lets its queue fill, and counts what it turns away. The
	// processor's own export timeout is off: the exporter bounds its
	// retries itself.
	bsp := sdktrace.NewBatchSpanProcessor(exp, sdktrace.WithMaxQueueSize(t.QueueSize),
		sdktrace.WithMaxExportBatchSize(min(512, t.QueueSize)), sdktrace.WithExportTimeout(0))
	g.next = bsp
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSpanProcessor(g),
		sdktrace.WithSampler(sdktrace.AlwaysSample())}
	if o.IDGenerator != nil {
		opts = append(opts, sdktrace.WithIDGenerator(o.IDGenerator))
	}
	return &Provider{tp: sdktrace.NewTracerProvider(opts...), exp: exp}, nil
}

// Tracer returns a tracer of the provider.
func (p *Provider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return p.tp.Tracer(name, opts...)
}

// Shutdown exports what is queued, one attempt per batch without further
// retries, until ctx ends; what is left then is dropped and counted.
func (p *Provider) Shutdown(ctx context.Context) error {
	p.exp.stopping(ctx)
	err := p.tp.Shutdown(ctx)
	if n := p.exp.m.inflight.Load(); n > 0 {
		p.exp.m.dropped.WithLabelValues(reasonShutdown).Add(float64(n))
	}
	return err
}

func grpcExporter(t config.Traces, h headerFiles) (sdktrace.SpanExporter, error) {
	opts := []otlptracegrpc.Option{
		otlptracegrpc.WithEndpointURL(t.URL()),
		otlptracegrpc.WithTimeout(t.Timeout.D()),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}), // the exporter wrapper retries, counted
		otlptracegrpc.WithHeaders(t.Headers),
	}
	if strings.HasPrefix(t.OTLPEndpoint, "https://") {
		tlsCfg, err := httpclient.TLS("traces", t.HTTPClientConfig())
		if err != nil {
			return nil, err
		}
		opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsCfg)))
	}
	if len(h) > 0 {
		opts = append(opts, otlptracegrpc.WithDialOption(grpc.WithPerRPCCredentials(h)))
	}
	return otlptracegrpc.New(context.Background(), opts...)
}

func httpExporter(t config.Traces, h headerFiles, userAgent string) (sdktrace.SpanExporter, error) {
	hc, err := httpclient.New("traces", t.HTTPClientConfig(), 0, userAgent)
	if err != nil {
		return nil, err
	}
	hc.Transport = &statusTransport{next: h.roundTripper(hc.Transport)}
	return otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(t.URL()),
		otlptracehttp.WithHTTPClient(hc),
		otlptracehttp.WithTimeout(t.Timeout.D()),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
		otlptracehttp.WithHeaders(t.Headers),
	)
}

// newResource describes the agent: service.name flink-agent, its version,
// the pod, namespace and Flink cluster it runs beside, then the configured
// attributes (OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME included).
func newResource(o Options) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{attribute.String("service.name", "flink-agent")}
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, attribute.String(k, v))
		}
	}
	add("service.version", o.Version)
	add("service.instance.id", o.Identity.Pod)
	add("k8s.pod.name", o.Identity.Pod)
	add("k8s.namespace.name", o.Identity.Namespace)
	add("flink.cluster.name", o.Identity.Cluster)
	add("flink.component", o.Identity.Component)
	for _, k := range slices.Sorted(maps.Keys(o.Traces.ResourceAttributes)) {
		add(k, o.Traces.ResourceAttributes[k])
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		return nil, fmt.Errorf("traces: resource: %w", err)
	}
	return res, nil
}

// headerFiles maps headers to the files holding their values, read at each
// export so that a rotated Secret is picked up.
type headerFiles map[string]string

func (h headerFiles) check() error {
	_, err := h.read()
	return err
}

func (h headerFiles) read() (map[string]string, error) {
	out := make(map[string]string, len(h))
	for name, path := range h {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("traces.header_files: %s: %w", name, err)
		}
		out[name] = strings.TrimSpace(string(b))
	}
	return out, nil
}

// GetRequestMetadata makes headerFiles gRPC per-RPC credentials.
func (h headerFiles) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	m, err := h.read()
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v // gRPC metadata keys are lower case
	}
	return out, nil
}

// RequireTransportSecurity lets header files go over plain connections too,
// as traces.headers do: the receiver's URL says which.
func (headerFiles) RequireTransportSecurity() bool { return false }

func (h headerFiles) roundTripper(next http.RoundTripper) http.RoundTripper {
	if len(h) == 0 {
		return next
	}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		m, err := h.read()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		for k, v := range m {
			req.Header.Set(k, v)
		}
		return next.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// statusTransport records the HTTP status of an export attempt in its
// context, so that the exporter can tell a permanent refusal (400, 401) from
// a passing one (429, 5xx) without parsing the SDK's error text.
type statusTransport struct{ next http.RoundTripper }

type statusKey struct{}

func (t *statusTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if s, ok := req.Context().Value(statusKey{}).(*atomic.Int32); ok && resp != nil {
		s.Store(int32(resp.StatusCode))
	}
	return resp, err
}
