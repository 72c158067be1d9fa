package config

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Traces exports every checkpoint as an OpenTelemetry trace over OTLP. It is
// off while OTLPEndpoint is empty, after the standard OTEL_* variables had
// their say (ResolveEnv).
type Traces struct {
	// OTLPEndpoint is the OTLP receiver, http:// or https:// (TLS). For
	// http/protobuf, /v1/traces is appended when the URL has no path.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// OTLPProtocol is grpc or http/protobuf; empty: the OTEL_* variables,
	// else http/protobuf (the OpenTelemetry default).
	OTLPProtocol string            `yaml:"otlp_protocol"`
	Timeout      Duration          `yaml:"timeout"`
	Headers      map[string]string `yaml:"headers"`
	// HeaderFiles maps a header to a file holding its value (an API key in
	// a mounted Secret), re-read at each export.
	HeaderFiles map[string]string `yaml:"header_files"`
	TLS         TLS               `yaml:"tls"`
	// ResourceAttributes are added to the resource (service.name,
	// k8s.pod.name, … come from the identity); OTEL_RESOURCE_ATTRIBUTES
	// and OTEL_SERVICE_NAME add to and override them.
	ResourceAttributes map[string]string `yaml:"resource_attributes"`
	// QueueSize bounds the spans waiting for export; beyond it spans are
	// dropped and counted, never waited for.
	QueueSize int `yaml:"queue_size"`
	// SampleRatio of healthy checkpoints whose per-vertex details are read
	// (failed and slow ones always are).
	SampleRatio float64 `yaml:"sample_ratio"`
	// SlowRatio: a checkpoint longer than this share of the checkpoint
	// interval is slow.
	SlowRatio float64 `yaml:"slow_ratio"`
	// MaxDetailRequestsPerScrape bounds the REST requests a scrape makes
	// for traces: sampled checkpoints' details and subtask details.
	MaxDetailRequestsPerScrape int `yaml:"max_detail_requests_per_scrape"`
	// SlowestSubtasks is how many subtasks of the slowest vertices a failed
	// or slow checkpoint's trace shows (0: none, and no subtask requests).
	SlowestSubtasks int `yaml:"slowest_subtasks"`

	// source names the OTEL_* variable a value came from, by key, for
	// error messages; envErr is a malformed variable; disabled is
	// OTEL_SDK_DISABLED=true.
	source   map[string]string
	envErr   *Error
	disabled bool
}

// Enabled reports whether checkpoint traces are exported.
func (t Traces) Enabled() bool { return t.OTLPEndpoint != "" && !t.disabled }

// Protocols of OTEL_EXPORTER_OTLP_PROTOCOL that the agent speaks.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

func defaultTraces() Traces {
	return Traces{
		Timeout:                    Duration(10 * time.Second),
		QueueSize:                  2048,
		SampleRatio:                0.1,
		SlowRatio:                  0.5,
		MaxDetailRequestsPerScrape: 4,
		SlowestSubtasks:            5,
	}
}

// ResolveEnv fills the traces keys that the file and the flags left unset
// from the standard OpenTelemetry variables, the signal's own first:
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is) or
// OTEL_EXPORTER_OTLP_ENDPOINT, …_PROTOCOL, …_HEADERS (merged under
// traces.headers), OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME (over
// traces.resource_attributes), and OTEL_SDK_DISABLED. Validate checks what
// came from them, naming the variable.
func (c *Config) ResolveEnv(lookup func(string) (string, bool)) {
	t := &c.Traces
	t.source = map[string]string{}
	get := func(names ...string) (string, string) {
		for _, n := range names {
			if v, ok := lookup(n); ok && strings.TrimSpace(v) != "" {
				return strings.TrimSpace(v), n
			}
		}
		return "", ""
	}
	if t.OTLPEndpoint == "" {
		if v, n := get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); n != "" {
			t.OTLPEndpoint, t.source["traces.otlp_endpoint"] = v, n
		} else if v, n := get("OTEL_EXPORTER_OTLP_ENDPOINT"); n != "" {
			// The generic endpoint is a base URL: the signal's path goes
			// after any path it has.
			t.OTLPEndpoint, t.source["traces.otlp_endpoint"] = v, n
			if u, err := url.Parse(v); err == nil && strings.Trim(u.Path, "/") != "" {
				t.OTLPEndpoint = strings.TrimRight(v, "/") + "/v1/traces"
			}
		}
	}
	if t.OTLPProtocol == "" {
		t.OTLPProtocol, t.source["traces.otlp_protocol"] = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if v, n := get("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"); n != "" {
		t.source["traces.headers"] = n
		t.mergeEnv(&t.Headers, v, n, "traces.headers", false)
	}
	if v, n := get("OTEL_RESOURCE_ATTRIBUTES"); n != "" {
		t.source["traces.resource_attributes"] = n
		t.mergeEnv(&t.ResourceAttributes, v, n, "traces.resource_attributes", true)
	}
	if v, n := get("OTEL_SERVICE_NAME"); n != "" {
		if t.ResourceAttributes == nil {
			t.ResourceAttributes = map[string]string{}
		}
		t.ResourceAttributes["service.name"] = v
	}
	if v, _ := get("OTEL_SDK_DISABLED"); strings.EqualFold(v, "true") {
		t.disabled = true
	}
}

// mergeEnv parses a "k=v,k2=v2" variable (values percent-encoded) into m:
// the variable wins over the file when override is set, else the file does.
// A malformed variable is kept aside for Validate to report.
func (t *Traces) mergeEnv(m *map[string]string, v, name, key string, override bool) {
	kv, err := ParseKeyValues(v)
	if err != nil {
		if t.envErr == nil {
			t.envErr = &Error{Key: name + " (" + key + ")", Msg: err.Error()}
		}
		return
	}
	if *m == nil {
		*m = map[string]string{}
	}
	for k, val := range kv {
		if _, set := (*m)[k]; !set || override {
			(*m)[k] = val
		}
	}
}

// ParseKeyValues parses the OpenTelemetry list format of
// OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES:
// "key1=value1,key2=value2", values percent-encoded.
func ParseKeyValues(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", pair)
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%q: invalid percent-encoding", pair)
		}
		out[k] = val
	}
	return out, nil
}

// keyOf names where a traces value came from: the key, or the variable.
func (t *Traces) keyOf(key string) string {
	if n := t.source[key]; n != "" {
		return n + " (" + key + ")"
	}
	return key
}

func (t *Traces) validate() *Error {
	if t.envErr != nil {
		return t.envErr
	}
	if e := optionalURL(t.keyOf("traces.otlp_endpoint"), t.OTLPEndpoint); e != nil {
		return e
	}
	if t.OTLPProtocol != "" {
		if e := oneOf(t.keyOf("traces.otlp_protocol"), t.OTLPProtocol, ProtocolGRPC, ProtocolHTTP); e != nil {
			return e
		}
	}
	if e := minimum("traces.timeout", t.Timeout, 100*time.Millisecond); e != nil {
		return e
	}
	if e := t.TLS.validate("traces.tls"); e != nil {
		return e
	}
	for _, k := range sortedKeys(t.Headers) {
		if e := header(t.keyOf("traces.headers"), k, t.Headers[k]); e != nil {
			return e
		}
	}
	for _, k := range sortedKeys(t.HeaderFiles) {
		if e := header("traces.header_files", k, ""); e != nil {
			return e
		}
		if t.HeaderFiles[k] == "" {
			return &Error{Key: "traces.header_files", Msg: fmt.Sprintf("empty file name for header %q", k)}
		}
		if _, dup := t.Headers[k]; dup || hasHeaderFold(t.Headers, k) {
			return &Error{Key: "traces.header_files", Msg: fmt.Sprintf("header %q is in traces.headers too", k)}
		}
	}
	for _, k := range sortedKeys(t.ResourceAttributes) {
		if k == "" {
			return &Error{Key: t.keyOf("traces.resource_attributes"), Msg: "empty attribute name"}
		}
	}
	if t.QueueSize < 1 || t.QueueSize > 1<<20 {
		return &Error{Key: "traces.queue_size", Msg: fmt.Sprintf("must be between 1 and %d, got %d", 1<<20, t.QueueSize)}
	}
	if !(t.SampleRatio >= 0 && t.SampleRatio <= 1) { // NaN too
		return &Error{Key: "traces.sample_ratio", Msg: fmt.Sprintf("must be in [0, 1], got %v", t.SampleRatio)}
	}
	if !(t.SlowRatio > 0) || math.IsInf(t.SlowRatio, 1) {
		return &Error{Key: "traces.slow_ratio", Msg: fmt.Sprintf("must be positive, got %v", t.SlowRatio)}
	}
	if t.MaxDetailRequestsPerScrape < 0 || t.MaxDetailRequestsPerScrape > 100 {
		return &Error{Key: "traces.max_detail_requests_per_scrape", Msg: fmt.Sprintf("must be between 0 and 100, got %d", t.MaxDetailRequestsPerScrape)}
	}
	if t.SlowestSubtasks < 0 || t.SlowestSubtasks > 100 {
		return &Error{Key: "traces.slowest_subtasks", Msg: fmt.Sprintf("must be between 0 and 100, got %d", t.SlowestSubtasks)}
	}
	return nil
}

func hasHeaderFold(m map[string]string, k string) bool {
	for h := range m {
		if http.CanonicalHeaderKey(h) == http.CanonicalHeaderKey(k) {
			return true
		}
	}
	return false
}

// Protocol is the OTLP protocol in effect.
func (t Traces) Protocol() string {
	if t.OTLPProtocol == "" {
		return ProtocolHTTP
	}
	return t.OTLPProtocol
}

// URL is the endpoint the exporter sends to: for http/protobuf with
// /v1/traces when the configured URL has no path.
func (t Traces) URL() string {
	u, err := url.Parse(t.OTLPEndpoint)
	if err != nil || t.Protocol() != ProtocolHTTP || strings.Trim(u.Path, "/") != "" {
		return t.OTLPEndpoint
	}
	u.Path = "/v1/traces"
	return u.String()
}
