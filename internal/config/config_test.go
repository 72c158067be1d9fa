package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Every file in testdata/bad must fail with exactly this message: the key
// (and line) it names is what a user reads at 3 a.m.
var badConfigs = map[string]string{
	"bad-dogstatsd-address.yaml":         `line 2: dogstatsd.address: invalid address "localhost" (want host:port or unix:///path)`,
	"bad-dogstatsd-uds.yaml":             `line 2: dogstatsd.address: invalid address "unix://relative/dsd.socket" (want unix:///absolute/path)`,
	"bad-duration.yaml":                  `line 2: flink.scrape_interval: invalid duration "15x"`,
	"bad-glob.yaml":                      `line 3: logs.paths[0]: invalid glob "/opt/flink/log/[.log"`,
	"bad-listen-address.yaml":            `line 2: web.listen_address: invalid address "9250" (want host:port or :port, port 0-65535)`,
	"bad-log-level.yaml":                 `line 2: log.level: must be one of debug, info, warn, error, got "verbose"`,
	"bad-loki-url.yaml":                  `line 2: loki.url: invalid URL "ftp://loki:3100" (want http:// or https:// with a host)`,
	"bad-multiline-mode.yaml":            `line 3: logs.multiline.mode: must be one of log4j, json, got "xml"`,
	"bad-proxy-url.yaml":                 `line 3: loki.proxy_url: invalid URL "proxy:3128" (want http:// or https:// with a host)`,
	"bad-redaction-regex.yaml":           "line 5: logs.redaction.rules[0].regex: invalid regular expression \"tok(en\": missing closing ): `tok(en`",
	"bad-regex.yaml":                     "line 3: logs.multiline.start_pattern: invalid regular expression \"^(\\\\d{4}\": missing closing ): `^(\\d{4}`",
	"bad-rest-url.yaml":                  `line 2: flink.rest_url: invalid URL "localhost:8081" (want http:// or https:// with a host)`,
	"bad-size.yaml":                      `line 2: logs.max_buffer_bytes: invalid size "64XB" (want e.g. 64MiB, 1MB or a number of bytes)`,
	"bad-telemetry-path.yaml":            `line 2: web.telemetry_path: must be a path such as /metrics, not / or another endpoint's, got "/healthz"`,
	"basic-auth-no-password.yaml":        `line 3: loki.basic_auth: username and password_file must be set together`,
	"buffer-too-small.yaml":              `line 2: logs.max_buffer_bytes: 1048576 is less than loki.batch_bytes plus one maximal event (1572960)`,
	"close-inactive-short.yaml":          `line 2: logs.close_inactive: must be at least 1s, got 10ms`,
	"duplicate-header.yaml":              `line 3: loki.headers: mapping key "X-Scope-OrgID" already defined at line 3`,
	"duplicate-key.yaml":                 `line 4: flink.rest_url: duplicate key (first set at line 2)`,
	"duration-not-scalar.yaml":           `line 2: flink.scrape_timeout: expected a duration such as "15s"`,
	"external-label-dunder.yaml":         `line 3: loki.external_labels: "__tenant": names starting with __ are reserved`,
	"external-label-name.yaml":           `line 3: loki.external_labels: invalid label name "team-name"`,
	"external-label-reserved.yaml":       `line 3: loki.external_labels: "pod" is set by the agent`,
	"external-labels-too-many.yaml":      `line 2: loki.external_labels: 10 labels and the agent's 6 make 16, more than Loki's default limit of 15 per stream`,
	"flink-bearer-and-basic.yaml":        `line 5: flink.bearer_token_file: cannot be used together with flink.basic_auth`,
	"header-bad-name.yaml":               `line 3: loki.headers: invalid header name "X A"`,
	"header-crlf.yaml":                   `line 4: loki.headers: the value of X-Scope-OrgID holds a control character (CR, LF, NUL, …)`,
	"header-set-by-agent.yaml":           `line 3: loki.headers: content-type is set by the agent`,
	"listen-port-range.yaml":             `line 2: web.listen_address: invalid address "127.0.0.1:99999" (want host:port or :port, port 0-65535)`,
	"max-open-files-zero.yaml":           `line 2: logs.max_open_files: must be between 1 and 1048576, got 0`,
	"negative-shutdown-timeout.yaml":     `line 2: shutdown.timeout: must be at least 100ms, got -5s`,
	"not-yaml.yaml":                      `invalid YAML: line 2: found unexpected end of stream`,
	"pagerduty-negative-failures.yaml":   `line 2: pagerduty.consecutive_failures: must be at least 1`,
	"pagerduty-runbook-base-url.yaml":    `line 2: pagerduty.runbook_base_url: invalid URL "wiki/runbooks" (want http:// or https:// with a host)`,
	"pagerduty-zero-failures.yaml":       `line 3: pagerduty.consecutive_failures: must be at least 1`,
	"paths-not-list.yaml":                `line 2: logs.paths: expected a list`,
	"poll-interval-1ns.yaml":             `line 2: logs.poll_interval: must be at least 10ms, got 1ns`,
	"redaction-regex-empty.yaml":         `line 5: logs.redaction.rules[0].regex: must be set`,
	"redaction-regex-matches-empty.yaml": `line 5: logs.redaction.rules[0].regex: "x*" matches the empty string: it would put the replacement between every two characters of every line`,
	"retries-not-int.yaml":               "line 2: loki.max_retries: cannot unmarshal !!str `many` into int",
	"scrape-concurrency-zero.yaml":       `line 2: flink.scrape_concurrency: must be between 1 and 64, got 0`,
	"scrape-interval-1ns.yaml":           `line 2: flink.scrape_interval: must be at least 1s, got 1ns`,
	"second-document.yaml":               `line 4: (top level): a second YAML document: one file holds one configuration`,
	"section-not-mapping.yaml":           `line 1: flink: expected a mapping`,
	"stall-timeout-short.yaml":           `line 2: logs.stall_timeout: must be at least 1s and longer than logs.poll_interval (1s), got 500ms`,
	"stuck-ratio-nan.yaml":               `line 2: flink.stuck_ratio: must be in (0, 1], got NaN`,
	"stuck-ratio-range.yaml":             `line 2: flink.stuck_ratio: must be in (0, 1], got 1.5`,
	"tls-cert-without-key.yaml":          `line 3: flink.tls: cert_file and key_file must be set together`,
	"traces-endpoint.yaml":               `line 2: traces.otlp_endpoint: invalid URL "collector:4317" (want http:// or https:// with a host)`,
	"traces-header-twice.yaml":           `line 5: traces.header_files: header "X-Honeycomb-Team" is in traces.headers too`,
	"traces-protocol.yaml":               `line 2: traces.otlp_protocol: must be one of grpc, http/protobuf, got "http/json"`,
	"traces-sample-ratio.yaml":           `line 2: traces.sample_ratio: must be in [0, 1], got 1.5`,
	"unknown-key.yaml":                   `line 2: flink.rest_urll: unknown key (valid: rest_url, scrape_interval, scrape_timeout, scrape_concurrency, max_response_bytes, tls, basic_auth, bearer_token_file, proxy_url, stuck_ratio, config_lint_interval, job_name_grace)`,
	"job-name-grace-negative.yaml":       `line 2: flink.job_name_grace: must not be negative (0: two scrape intervals)`,
}

// LoadAndValidate is what check-config does.
func loadAndValidate(path string) error {
	c, err := Load(path)
	if err != nil {
		return err
	}
	return c.Validate()
}

func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(badConfigs) {
		t.Errorf("%d files in testdata/bad, %d in the table: keep them in step", len(files), len(badConfigs))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			want, ok := badConfigs[name]
			if !ok {
				t.Fatalf("no expected message for %s", name)
			}
			err := loadAndValidate(f)
			if err == nil {
				t.Fatalf("accepted, want %q", want)
			}
			if err.Error() != want {
				t.Errorf("got  %q\nwant %q", err.Error(), want)
			}
		})
	}
}

func TestExampleConfigIsValidAndComplete(t *testing.T) {
	c, err := Load("../../examples/flink-agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// The example is the configuration reference: it must set every key.
	for _, key := range allKeys(reflect.TypeOf(Config{}), "") {
		if _, ok := c.lines[key]; !ok {
			t.Errorf("examples/flink-agent.yaml does not document %s", key)
		}
	}
}

// allKeys lists the dotted keys of a config struct, not descending into
// lists or maps.
func allKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag == "" {
			continue
		}
		key := join(prefix, tag)
		keys = append(keys, key)
		ft := t.Field(i).Type
		if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(unmarshalerType) {
			keys = append(keys, allKeys(ft, key)...)
		}
	}
	return keys
}

func TestDefaultsAreValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// flink.job_name_grace follows the scrape interval unless it is set.
func TestJobNameGraceDefault(t *testing.T) {
	c := Default()
	c.Flink.ScrapeInterval = Duration(20 * time.Second)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := c.Flink.JobNameGrace.D(); got != 40*time.Second {
		t.Errorf("unset job_name_grace: %v, want two scrape intervals (40s)", got)
	}
	c.Flink.JobNameGrace = Duration(5 * time.Second)
	if err := c.Validate(); err != nil || c.Flink.JobNameGrace.D() != 5*time.Second {
		t.Errorf("set job_name_grace: %v (%v), want 5s kept", c.Flink.JobNameGrace.D(), err)
	}
}

func TestEnvExpansion(t *testing.T) {
	env := map[string]string{"LOKI": "http://loki:3100", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	raw := []byte(`
loki:
  url: ${LOKI}
  tenant_id: ${TENANT:-team-a}
  headers:
    X-Cost: $${not-expanded}
flink:
  rest_url: "${EMPTY}"
`)
	c := Default()
	if err := Decode(raw, &c, lookup); err != nil {
		t.Fatal(err)
	}
	if c.Loki.URL != "http://loki:3100" || c.Loki.TenantID != "team-a" || c.Flink.RestURL != "" {
		t.Errorf("got loki.url=%q tenant=%q rest_url=%q", c.Loki.URL, c.Loki.TenantID, c.Flink.RestURL)
	}
	if got := c.Loki.Headers["X-Cost"]; got != "${not-expanded}" {
		t.Errorf("$$ escape: got %q", got)
	}
}

func TestFileOverridesDefaultsOnlyWhereSet(t *testing.T) {
	c := Default()
	if err := Decode([]byte("flink:\n  scrape_interval: 30s\n"), &c, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	if c.Flink.ScrapeInterval.D() != 30*time.Second {
		t.Errorf("scrape_interval = %v", c.Flink.ScrapeInterval.D())
	}
	if c.Flink.RestURL != "http://localhost:8081" || c.Flink.ScrapeTimeout.D() != 10*time.Second {
		t.Errorf("unset keys lost their defaults: %+v", c.Flink)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"64MiB": 64 << 20, "1MB": 1000000, "256KiB": 256 << 10, "512": 512, "2GiB": 2 << 30, "10B": 10} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("%s: got %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "1TiB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
