package config

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	promconfig "github.com/prometheus/common/config"
)

// Validate checks what decoding cannot: ranges, URLs, addresses and
// combinations, and sets the defaults that follow from other keys
// (flink.job_name_grace). The first problem is returned as an *Error naming
// its key.
func (c *Config) Validate() error {
	checks := []func() *Error{
		func() *Error { return optionalURL("flink.rest_url", c.Flink.RestURL) },
		func() *Error { return minimum("flink.scrape_interval", c.Flink.ScrapeInterval, time.Second) },
		func() *Error { return minimum("flink.scrape_timeout", c.Flink.ScrapeTimeout, 100*time.Millisecond) },
		func() *Error { return between("flink.scrape_concurrency", c.Flink.ScrapeConcurrency, 1, 64) },
		func() *Error { return atLeast("flink.max_response_bytes", c.Flink.MaxResponseBytes, 1<<10) },
		func() *Error {
			if !(c.Flink.StuckRatio > 0 && c.Flink.StuckRatio <= 1) { // NaN too
				return &Error{Key: "flink.stuck_ratio", Msg: fmt.Sprintf("must be in (0, 1], got %v", c.Flink.StuckRatio)}
			}
			return nil
		},
		func() *Error { return minimum("flink.config_lint_interval", c.Flink.ConfigLintInterval, time.Second) },
		func() *Error {
			switch {
			case c.Flink.JobNameGrace < 0:
				return &Error{Key: "flink.job_name_grace", Msg: "must not be negative (0: two scrape intervals)"}
			case c.Flink.JobNameGrace == 0:
				c.Flink.JobNameGrace = 2 * c.Flink.ScrapeInterval
			}
			return nil
		},
		func() *Error { return c.Flink.TLS.validate("flink.tls") },
		func() *Error { return c.Flink.BasicAuth.validate("flink.basic_auth") },
		func() *Error {
			return clientChecks("flink", c.Flink.BasicAuth, c.Flink.BearerTokenFile, c.Flink.ProxyURL, c.Flink.HTTPClientConfig())
		},
		c.Logs.validate,
		c.Loki.validate,
		c.shipperBuffer,
		func() *Error { return dogstatsdAddress("dogstatsd.address", c.DogStatsD.Address) },
		c.PagerDuty.validate,
		c.Traces.validate,
		func() *Error { return listenAddress("web.listen_address", c.Web.ListenAddress) },
		func() *Error {
			p := c.Web.TelemetryPath
			if !strings.HasPrefix(p, "/") || p == "/" || p == "/healthz" || p == "/readyz" || strings.HasPrefix(p, "/debug/") {
				return &Error{Key: "web.telemetry_path", Msg: fmt.Sprintf("must be a path such as /metrics, not / or another endpoint's, got %q", p)}
			}
			return nil
		},
		func() *Error { return oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error") },
		func() *Error { return oneOf("log.format", c.Log.Format, "logfmt", "json") },
		func() *Error { return minimum("shutdown.timeout", c.Shutdown.Timeout, 100*time.Millisecond) },
	}
	for _, check := range checks {
		if err := check(); err != nil {
			err.Line = c.lines[err.Key]
			return err
		}
	}
	return nil
}

func (l *Logs) validate() *Error {
	for i, p := range l.Paths {
		key := fmt.Sprintf("logs.paths[%d]", i)
		if p == "" {
			return &Error{Key: key, Msg: "empty path"}
		}
		if _, err := filepath.Match(p, ""); err != nil {
			return &Error{Key: key, Msg: fmt.Sprintf("invalid glob %q", p)}
		}
	}
	if len(l.Paths) > 0 && l.PositionsFile == "" {
		return &Error{Key: "logs.positions_file", Msg: "must be set when logs.paths is"}
	}
	if e := minimum("logs.sync_period", l.SyncPeriod, 100*time.Millisecond); e != nil {
		return e
	}
	if e := minimum("logs.poll_interval", l.PollInterval, 10*time.Millisecond); e != nil {
		return e
	}
	if l.StallTimeout.D() < time.Second || l.StallTimeout <= l.PollInterval {
		return &Error{Key: "logs.stall_timeout", Msg: fmt.Sprintf("must be at least 1s and longer than logs.poll_interval (%v), got %v", l.PollInterval.D(), l.StallTimeout.D())}
	}
	if l.CloseInactive.D() < time.Second {
		return &Error{Key: "logs.close_inactive", Msg: fmt.Sprintf("must be at least 1s, got %v", l.CloseInactive.D())}
	}
	if l.MaxOpenFiles < 1 || l.MaxOpenFiles > 1<<20 {
		return &Error{Key: "logs.max_open_files", Msg: fmt.Sprintf("must be between 1 and %d, got %d", 1<<20, l.MaxOpenFiles)}
	}
	if e := atLeast("logs.max_buffer_bytes", l.MaxBufferBytes, 1<<20); e != nil {
		return e
	}
	if e := oneOf("logs.multiline.mode", l.Multiline.Mode, "log4j", "json"); e != nil {
		return e
	}
	if l.Multiline.Mode == "log4j" && l.Multiline.StartPattern.Regexp == nil {
		return &Error{Key: "logs.multiline.start_pattern", Msg: "must be set in log4j mode"}
	}
	if e := minimum("logs.multiline.idle_timeout", l.Multiline.IdleTimeout, time.Millisecond); e != nil {
		return e
	}
	if e := atLeast("logs.multiline.max_event_bytes", l.Multiline.MaxEventBytes, 1<<10); e != nil {
		return e
	}
	if e := minimum("logs.throttle_window", l.ThrottleWindow, time.Second); e != nil {
		return e
	}
	for i, r := range l.Redaction.Rules {
		key := fmt.Sprintf("logs.redaction.rules[%d]", i)
		if r.Name == "" {
			return &Error{Key: key + ".name", Msg: "must be set"}
		}
		if r.Regex.Regexp == nil || r.Regex.String() == "" {
			return &Error{Key: key + ".regex", Msg: "must be set"}
		}
		if r.Regex.MatchString("") {
			return &Error{Key: key + ".regex", Msg: fmt.Sprintf("%q matches the empty string: it would put the replacement between every two characters of every line", r.Regex.String())}
		}
	}
	return nil
}

func (l *Loki) validate() *Error {
	if e := optionalURL("loki.url", l.URL); e != nil {
		return e
	}
	if e := atLeast("loki.batch_bytes", l.BatchBytes, 1<<10); e != nil {
		return e
	}
	for _, d := range []struct {
		key      string
		v        Duration
		smallest time.Duration
	}{{"loki.batch_wait", l.BatchWait, time.Millisecond}, {"loki.timeout", l.Timeout, 100 * time.Millisecond}, {"loki.min_backoff", l.MinBackoff, 10 * time.Millisecond}} {
		if e := minimum(d.key, d.v, d.smallest); e != nil {
			return e
		}
	}
	if l.MaxBackoff < l.MinBackoff {
		return &Error{Key: "loki.max_backoff", Msg: "must not be less than loki.min_backoff"}
	}
	if l.MaxRetries < 0 {
		return &Error{Key: "loki.max_retries", Msg: "must be 0 (retry until delivered) or more"}
	}
	if e := l.BasicAuth.validate("loki.basic_auth"); e != nil {
		return e
	}
	if e := l.TLS.validate("loki.tls"); e != nil {
		return e
	}
	if e := l.validateHeaders(); e != nil {
		return e
	}
	if e := l.validateLabels(); e != nil {
		return e
	}
	return clientChecks("loki", l.BasicAuth, l.BearerTokenFile, l.ProxyURL, l.HTTPClientConfig())
}

// validateHeaders: loki.headers must be headers — a CR or LF in a value
// would split the request, and the ones the push sets itself cannot be
// replaced.
func (l *Loki) validateHeaders() *Error {
	for _, k := range sortedKeys(l.Headers) {
		if e := header("loki.headers", k, l.Headers[k]); e != nil {
			return e
		}
		if slices.Contains(lokiOwnHeaders, http.CanonicalHeaderKey(k)) {
			return &Error{Key: "loki.headers", Msg: fmt.Sprintf("%s is set by the agent", k)}
		}
	}
	return nil
}

// header: a header name and value a request can carry (a CR or LF in a
// value would split it).
func header(key, name, value string) *Error {
	switch {
	case !httpguts.ValidHeaderFieldName(name):
		return &Error{Key: key, Msg: fmt.Sprintf("invalid header name %q", name)}
	case !httpguts.ValidHeaderFieldValue(value):
		return &Error{Key: key, Msg: fmt.Sprintf("the value of %s holds a control character (CR, LF, NUL, …)", name)}
	}
	return nil
}

// lokiOwnHeaders are the headers every push sets: replacing them breaks it.
var lokiOwnHeaders = []string{"Content-Type", "Content-Encoding", "Content-Length", "Host", "Transfer-Encoding"}

// validateLabels: loki.external_labels must be labels Loki accepts with its
// default limits (at most 15 per stream, names up to 1024 and values up to
// 2048 bytes, no reserved __ names).
func (l *Loki) validateLabels() *Error {
	for _, k := range sortedKeys(l.ExternalLabels) {
		v := l.ExternalLabels[k]
		switch {
		case !labelName.MatchString(k) || len(k) > 1024:
			return &Error{Key: "loki.external_labels", Msg: fmt.Sprintf("invalid label name %q", k)}
		case strings.HasPrefix(k, "__"):
			return &Error{Key: "loki.external_labels", Msg: fmt.Sprintf("%q: names starting with __ are reserved", k)}
		case slices.Contains(lokiBuiltinLabels, k):
			return &Error{Key: "loki.external_labels", Msg: fmt.Sprintf("%q is set by the agent", k)}
		case !utf8.ValidString(v) || len(v) > 2048:
			return &Error{Key: "loki.external_labels", Msg: fmt.Sprintf("the value of %q is not UTF-8 of at most 2048 bytes", k)}
		}
	}
	if n := len(l.ExternalLabels) + len(lokiBuiltinLabels); n > 15 {
		return &Error{Key: "loki.external_labels", Msg: fmt.Sprintf("%d labels and the agent's %d make %d, more than Loki's default limit of 15 per stream",
			len(l.ExternalLabels), len(lokiBuiltinLabels), n)}
	}
	return nil
}

// sortedKeys: the first bad one, the same every time.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lokiBuiltinLabels are the stream labels the shipper sets itself;
// loki.external_labels cannot replace them.
var lokiBuiltinLabels = []string{"cluster", "namespace", "pod", "component", "container", "filename"}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// shipperBuffer: the shipper's memory budget must hold a full batch and
// one more event of the largest size, each entry counted with 96 bytes of
// overhead (shipper/internal/loki.EntryOverhead); less could stall it.
func (c *Config) shipperBuffer() *Error {
	need := c.Loki.BatchBytes + c.Logs.Multiline.MaxEventBytes + 96
	if c.Logs.MaxBufferBytes < need {
		return &Error{Key: "logs.max_buffer_bytes", Msg: fmt.Sprintf("%d is less than loki.batch_bytes plus one maximal event (%d)", c.Logs.MaxBufferBytes, need)}
	}
	return nil
}

// clientChecks are the checks of a section's HTTP client keys, then
// prometheus/common's own of the HTTPClientConfig they map to.
func clientChecks(section string, b BasicAuth, bearerFile, proxy string, hc promconfig.HTTPClientConfig) *Error {
	if bearerFile != "" && b.Username != "" {
		return &Error{Key: section + ".bearer_token_file", Msg: "cannot be used together with " + section + ".basic_auth"}
	}
	if e := optionalURL(section+".proxy_url", proxy); e != nil {
		return e
	}
	if err := hc.Validate(); err != nil {
		return &Error{Key: section, Msg: err.Error()}
	}
	return nil
}

func (p *PagerDuty) validate() *Error {
	if p.ConsecutiveFailures < 1 { // wrong whether paging is on or not
		return &Error{Key: "pagerduty.consecutive_failures", Msg: "must be at least 1"}
	}
	if e := minimum("pagerduty.throttle_sustained", p.ThrottleSustained, time.Second); e != nil {
		return e
	}
	if e := optionalURL("pagerduty.runbook_base_url", p.RunbookBaseURL); e != nil {
		return e
	}
	if p.RoutingKeyFile == "" {
		return nil
	}
	if p.URL == "" {
		return &Error{Key: "pagerduty.url", Msg: "must be set when pagerduty.routing_key_file is"}
	}
	return optionalURL("pagerduty.url", p.URL)
}

func (t TLS) validate(key string) *Error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return &Error{Key: key, Msg: "cert_file and key_file must be set together"}
	}
	return nil
}

func (b BasicAuth) validate(key string) *Error {
	if (b.Username == "") != (b.PasswordFile == "") {
		return &Error{Key: key, Msg: "username and password_file must be set together"}
	}
	return nil
}

func optionalURL(key, s string) *Error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &Error{Key: key, Msg: fmt.Sprintf("invalid URL %q (want http:// or https:// with a host)", s)}
	}
	return nil
}

func dogstatsdAddress(key, s string) *Error {
	if s == "" {
		return nil
	}
	if path, ok := strings.CutPrefix(s, "unix://"); ok {
		if !strings.HasPrefix(path, "/") {
			return &Error{Key: key, Msg: fmt.Sprintf("invalid address %q (want unix:///absolute/path)", s)}
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return &Error{Key: key, Msg: fmt.Sprintf("invalid address %q (want host:port or unix:///path)", s)}
	}
	return nil
}

// minimum: a duration below smallest is a mistake — 1ns intervals spin a
// core — or not a duration at all.
func minimum(key string, d Duration, smallest time.Duration) *Error {
	if d.D() < smallest {
		return &Error{Key: key, Msg: fmt.Sprintf("must be at least %v, got %v", smallest, d.D())}
	}
	return nil
}

// listenAddress is host:port with a port number a socket can have (a
// service name is not resolved at startup: refused too).
func listenAddress(key, addr string) *Error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return &Error{Key: key, Msg: fmt.Sprintf("invalid address %q (want host:port or :port, port 0-65535)", addr)}
	}
	return nil
}

func between(key string, v, lo, hi int) *Error {
	if v < lo || v > hi {
		return &Error{Key: key, Msg: fmt.Sprintf("must be between %d and %d, got %d", lo, hi, v)}
	}
	return nil
}

func atLeast(key string, b, least ByteSize) *Error {
	if b < least {
		return &Error{Key: key, Msg: fmt.Sprintf("must be at least %d bytes", least)}
	}
	return nil
}

func oneOf(key, v string, allowed ...string) *Error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return &Error{Key: key, Msg: fmt.Sprintf("must be one of %s, got %q", strings.Join(allowed, ", "), v)}
}
