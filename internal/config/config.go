// Package config holds flink-agent's configuration: the YAML file, its
// defaults, and the validation that makes a bad setting a startup error
// naming its key (exit code 2) instead of a surprise at 3 a.m.
package config

import (
	"time"
)

// Config is the whole configuration. YAML keys mirror the flags: the flag
// --flink.rest-url is the key flink.rest_url.
type Config struct {
	Flink     Flink     `yaml:"flink"`
	Logs      Logs      `yaml:"logs"`
	Loki      Loki      `yaml:"loki"`
	DogStatsD DogStatsD `yaml:"dogstatsd"`
	PagerDuty PagerDuty `yaml:"pagerduty"`
	Traces    Traces    `yaml:"traces"`
	Web       Web       `yaml:"web"`
	Log       Log       `yaml:"log"`
	Shutdown  Shutdown  `yaml:"shutdown"`

	// lines maps dotted keys to where the file set them, so that Validate
	// can point at the line too.
	lines map[string]int
}

// Flink is the REST scrape of the JobManager. An empty RestURL disables it,
// which is how TaskManager sidecars run.
type Flink struct {
	RestURL        string   `yaml:"rest_url"`
	ScrapeInterval Duration `yaml:"scrape_interval"`
	ScrapeTimeout  Duration `yaml:"scrape_timeout"`
	// ScrapeConcurrency is how many jobs one scrape reads at a time.
	ScrapeConcurrency int       `yaml:"scrape_concurrency"`
	MaxResponseBytes  ByteSize  `yaml:"max_response_bytes"`
	TLS               TLS       `yaml:"tls"`
	BasicAuth         BasicAuth `yaml:"basic_auth"`
	BearerTokenFile   string    `yaml:"bearer_token_file"`
	// ProxyURL is an HTTP proxy; empty: HTTP_PROXY/HTTPS_PROXY/NO_PROXY.
	ProxyURL string `yaml:"proxy_url"`
	// StuckRatio of the checkpoint timeout after which an in-progress
	// checkpoint counts as stuck.
	StuckRatio float64 `yaml:"stuck_ratio"`
	// ConfigLintInterval is how often /jobmanager/config is re-read for
	// the S3 entropy-injection lint.
	ConfigLintInterval Duration `yaml:"config_lint_interval"`
	// JobNameGrace is how long checkpoint events from the JobManager log
	// wait for their job's name (from REST or a job-state line) before they
	// are published with the job id as job_name; none while REST is down or
	// disabled. Unset: two scrape intervals (set by Validate).
	JobNameGrace Duration `yaml:"job_name_grace"`
}

// Logs is the tailer: which files, where positions are kept, how lines
// become events.
type Logs struct {
	Paths         []string `yaml:"paths"`
	PositionsFile string   `yaml:"positions_file"`
	SyncPeriod    Duration `yaml:"sync_period"`
	PollInterval  Duration `yaml:"poll_interval"`
	// StallTimeout: /healthz fails when reading made no progress for this
	// long while files have unread bytes.
	StallTimeout Duration `yaml:"stall_timeout"`
	// CloseInactive: a file read to its end is closed after this long
	// without new data, and reopened when it grows.
	CloseInactive Duration `yaml:"close_inactive"`
	// MaxOpenFiles bounds the descriptors held for tailing; at the limit
	// files take turns.
	MaxOpenFiles   int       `yaml:"max_open_files"`
	MaxBufferBytes ByteSize  `yaml:"max_buffer_bytes"`
	Container      string    `yaml:"container"`
	Multiline      Multiline `yaml:"multiline"`
	Redaction      Redaction `yaml:"redaction"`
	// ThrottleWindow is how far apart an S3 throttling event and a failed
	// checkpoint may be for the failure to be attributed to throttling.
	ThrottleWindow Duration `yaml:"throttle_window"`
}

// Multiline groups a log4j record and its stack trace into one event.
type Multiline struct {
	Mode          string   `yaml:"mode"` // log4j | json
	StartPattern  Regexp   `yaml:"start_pattern"`
	IdleTimeout   Duration `yaml:"idle_timeout"`
	MaxEventBytes ByteSize `yaml:"max_event_bytes"`
}

// Redaction removes secrets before anything leaves the pod.
type Redaction struct {
	// DisableBuiltin turns off the built-in rules (AWS keys, passwords, …).
	DisableBuiltin bool            `yaml:"disable_builtin"`
	Rules          []RedactionRule `yaml:"rules"`
}

// RedactionRule replaces every match of Regex with Replacement.
type RedactionRule struct {
	Name        string `yaml:"name"`
	Regex       Regexp `yaml:"regex"`
	Replacement string `yaml:"replacement"`
}

// Loki is the push client. An empty URL disables shipping (the tailer still
// runs for log metrics).
type Loki struct {
	URL             string            `yaml:"url"`
	TenantID        string            `yaml:"tenant_id"`
	BatchBytes      ByteSize          `yaml:"batch_bytes"`
	BatchWait       Duration          `yaml:"batch_wait"`
	Timeout         Duration          `yaml:"timeout"`
	MinBackoff      Duration          `yaml:"min_backoff"`
	MaxBackoff      Duration          `yaml:"max_backoff"`
	MaxRetries      int               `yaml:"max_retries"` // 0: retry until delivered
	BasicAuth       BasicAuth         `yaml:"basic_auth"`
	BearerTokenFile string            `yaml:"bearer_token_file"`
	ProxyURL        string            `yaml:"proxy_url"`
	TLS             TLS               `yaml:"tls"`
	Headers         map[string]string `yaml:"headers"`
	ExternalLabels  map[string]string `yaml:"external_labels"`
}

// DogStatsD is the Datadog metrics and events client. An empty Address
// disables it; "unix:///path" selects a Unix domain socket.
type DogStatsD struct {
	Address string   `yaml:"address"`
	Tags    []string `yaml:"tags"`
	Events  bool     `yaml:"events"`
}

// PagerDuty pages directly through the Events API v2 when RoutingKeyFile is
// set. The primary path is alert rules through Alertmanager or Datadog.
type PagerDuty struct {
	RoutingKeyFile      string   `yaml:"routing_key_file"`
	URL                 string   `yaml:"url"`
	ConsecutiveFailures int      `yaml:"consecutive_failures"`
	ThrottleSustained   Duration `yaml:"throttle_sustained"`
	// RunbookBaseURL is where the runbooks of docs/runbooks are served; each
	// trigger links its condition's page under it, as the alert rules'
	// runbook_url does. Empty: no links.
	RunbookBaseURL string `yaml:"runbook_base_url"`
}

// Web is the agent's own HTTP endpoint.
type Web struct {
	ListenAddress string `yaml:"listen_address"`
	// ConfigFile is an exporter-toolkit web configuration (TLS, basic
	// auth), as every Prometheus exporter takes with --web.config.file.
	ConfigFile    string `yaml:"config_file"`
	TelemetryPath string `yaml:"telemetry_path"`
	EnablePprof   bool   `yaml:"enable_pprof"`
}

// Log is the agent's own logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Shutdown bounds the drain on SIGTERM.
type Shutdown struct {
	Timeout Duration `yaml:"timeout"`
}

// TLS is client TLS (optionally mutual).
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// BasicAuth reads its password from a file so that it can come from a
// mounted Secret.
type BasicAuth struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// Default returns the configuration used when neither file nor flag says
// otherwise.
func Default() Config {
	return Config{
		Flink: Flink{
			RestURL: "http://localhost:8081",
			// Flink serves REST metrics from a cache refreshed every
			// metrics.fetcher.update-interval (10 s): scraping faster
			// only re-reads the same numbers.
			ScrapeInterval:     Duration(15 * time.Second),
			ScrapeTimeout:      Duration(10 * time.Second),
			ScrapeConcurrency:  4,
			MaxResponseBytes:   16 << 20,
			StuckRatio:         0.8,
			ConfigLintInterval: Duration(10 * time.Minute),
		},
		Logs: Logs{
			Paths:          []string{"/opt/flink/log/*.log"},
			PositionsFile:  "/var/lib/flink-agent/positions.json",
			SyncPeriod:     Duration(10 * time.Second),
			PollInterval:   Duration(1 * time.Second),
			StallTimeout:   Duration(60 * time.Second),
			CloseInactive:  Duration(5 * time.Minute),
			MaxOpenFiles:   1000,
			MaxBufferBytes: 64 << 20,
			Container:      "flink-main-container",
			Multiline: Multiline{
				Mode:          "log4j",
				StartPattern:  MustRegexp(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}`),
				IdleTimeout:   Duration(500 * time.Millisecond),
				MaxEventBytes: 256 << 10,
			},
			ThrottleWindow: Duration(2 * time.Minute),
		},
		Loki: Loki{
			BatchBytes: 1 << 20,
			BatchWait:  Duration(time.Second),
			Timeout:    Duration(10 * time.Second),
			MinBackoff: Duration(500 * time.Millisecond),
			MaxBackoff: Duration(5 * time.Minute),
		},
		DogStatsD: DogStatsD{Address: "localhost:8125", Events: true},
		PagerDuty: PagerDuty{
			URL:                 "https://events.pagerduty.com/v2/enqueue",
			ConsecutiveFailures: 3,
			ThrottleSustained:   Duration(5 * time.Minute),
			RunbookBaseURL:      "https://github.com/flink-agent/flink-agent/blob/main/docs/runbooks/",
		},
		Traces:   defaultTraces(),
		Web:      Web{ListenAddress: ":9250", TelemetryPath: "/metrics"},
		Log:      Log{Level: "info", Format: "logfmt"},
		Shutdown: Shutdown{Timeout: Duration(20 * time.Second)},
	}
}
