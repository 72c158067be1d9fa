package config

import (
	"testing"
)

// The standard OpenTelemetry variables fill the traces keys the file left
// unset, the signal's own variable first; the file wins where it speaks; a
// bad variable is a configuration error naming it.
func TestTracesFromEnvironment(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	for _, tc := range []struct {
		name, file string
		env        func(string) (string, bool)
		url, proto string
		enabled    bool
		headers    map[string]string
		attrs      map[string]string
		err        string
	}{
		{name: "nothing: off", env: env(), enabled: false, proto: ProtocolHTTP},
		{name: "generic endpoint, default protocol", env: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318"),
			enabled: true, url: "http://otel:4318/v1/traces", proto: ProtocolHTTP},
		{name: "generic endpoint with a path", env: env("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otel/otlp/"),
			enabled: true, url: "https://otel/otlp/v1/traces", proto: ProtocolHTTP},
		{name: "the signal's endpoint first, as is", env: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/custom", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
			enabled: true, url: "http://b:4318/custom", proto: ProtocolHTTP},
		{name: "grpc", env: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4317", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
			enabled: true, url: "http://otel:4317", proto: ProtocolGRPC},
		{name: "the file wins", file: "traces:\n  otlp_endpoint: http://file:4317\n  otlp_protocol: grpc\n  headers: {a: file}\n  resource_attributes: {team: file, service.name: x}\n",
			env: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf",
				"OTEL_EXPORTER_OTLP_HEADERS", "a=env,b=x%20y", "OTEL_RESOURCE_ATTRIBUTES", "team=env,env=prod", "OTEL_SERVICE_NAME", "svc"),
			enabled: true, url: "http://file:4317", proto: ProtocolGRPC,
			headers: map[string]string{"a": "file", "b": "x y"},
			// the variables describe the process: they override the file's attributes
			attrs: map[string]string{"team": "env", "env": "prod", "service.name": "svc"}},
		{name: "sdk disabled", env: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318", "OTEL_SDK_DISABLED", "true"),
			enabled: false, url: "http://otel:4318/v1/traces", proto: ProtocolHTTP},
		{name: "bad protocol", env: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
			err: `OTEL_EXPORTER_OTLP_PROTOCOL (traces.otlp_protocol): must be one of grpc, http/protobuf, got "http/json"`},
		{name: "bad endpoint", env: env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "otel:4317"),
			err: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (traces.otlp_endpoint): invalid URL "otel:4317" (want http:// or https:// with a host)`},
		{name: "bad headers", env: env("OTEL_EXPORTER_OTLP_HEADERS", "api-key"),
			err: `OTEL_EXPORTER_OTLP_HEADERS (traces.headers): "api-key" is not key=value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			if err := Decode([]byte(tc.file), &c, env()); err != nil {
				t.Fatal(err)
			}
			c.ResolveEnv(tc.env)
			err := c.Validate()
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tr := c.Traces
			if tr.Enabled() != tc.enabled || (tc.url != "" && tr.URL() != tc.url) || tr.Protocol() != tc.proto {
				t.Errorf("enabled %v url %q protocol %q; want %v %q %q", tr.Enabled(), tr.URL(), tr.Protocol(), tc.enabled, tc.url, tc.proto)
			}
			for k, v := range tc.headers {
				if tr.Headers[k] != v {
					t.Errorf("header %s = %q, want %q (all: %v)", k, tr.Headers[k], v, tr.Headers)
				}
			}
			for k, v := range tc.attrs {
				if tr.ResourceAttributes[k] != v {
					t.Errorf("attribute %s = %q, want %q (all: %v)", k, tr.ResourceAttributes[k], v, tr.ResourceAttributes)
				}
			}
		})
	}
}
