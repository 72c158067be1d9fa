package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	promconfig "github.com/prometheus/common/config"
)

// Validate checks what decoding cannot: ranges, URLs, addresses and
// combinations. The first problem is returned as an *Error naming its key.
func (c *Config) Validate() error {
	checks := []func() *Error{
		func() *Error { return optionalURL("flink.rest_url", c.Flink.RestURL) },
		func() *Error { return positive("flink.scrape_interval", c.Flink.ScrapeInterval) },
		func() *Error { return positive("flink.scrape_timeout", c.Flink.ScrapeTimeout) },
		func() *Error { return between("flink.scrape_concurrency", c.Flink.ScrapeConcurrency, 1, 64) },
		func() *Error { return atLeast("flink.max_response_bytes", c.Flink.MaxResponseBytes, 1<<10) },
		func() *Error {
			if c.Flink.StuckRatio <= 0 || c.Flink.StuckRatio > 1 {
				return &Error{Key: "flink.stuck_ratio", Msg: fmt.Sprintf("must be in (0, 1], got %v", c.Flink.StuckRatio)}
			}
			return nil
		},
		func() *Error { return positive("flink.config_lint_interval", c.Flink.ConfigLintInterval) },
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
		func() *Error {
			if _, _, err := net.SplitHostPort(c.Web.ListenAddress); err != nil {
				return &Error{Key: "web.listen_address", Msg: fmt.Sprintf("invalid address %q (want host:port or :port)", c.Web.ListenAddress)}
			}
			return nil
		},
		func() *Error {
			p := c.Web.TelemetryPath
			if !strings.HasPrefix(p, "/") || p == "/" || p == "/healthz" || p == "/readyz" || strings.HasPrefix(p, "/debug/") {
				return &Error{Key: "web.telemetry_path", Msg: fmt.Sprintf("must be a path such as /metrics, not / or another endpoint's, got %q", p)}
			}
			return nil
		},
		func() *Error { return oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error") },
		func() *Error { return oneOf("log.format", c.Log.Format, "logfmt", "json") },
		func() *Error { return positive("shutdown.timeout", c.Shutdown.Timeout) },
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
	if e := positive("logs.sync_period", l.SyncPeriod); e != nil {
		return e
	}
	if e := positive("logs.poll_interval", l.PollInterval); e != nil {
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
	if e := positive("logs.multiline.idle_timeout", l.Multiline.IdleTimeout); e != nil {
		return e
	}
	if e := atLeast("logs.multiline.max_event_bytes", l.Multiline.MaxEventBytes, 1<<10); e != nil {
		return e
	}
	if e := positive("logs.throttle_window", l.ThrottleWindow); e != nil {
		return e
	}
	for i, r := range l.Redaction.Rules {
		key := fmt.Sprintf("logs.redaction.rules[%d]", i)
		if r.Name == "" {
			return &Error{Key: key + ".name", Msg: "must be set"}
		}
		if r.Regex.Regexp == nil {
			return &Error{Key: key + ".regex", Msg: "must be set"}
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
		key string
		v   Duration
	}{{"loki.batch_wait", l.BatchWait}, {"loki.timeout", l.Timeout}, {"loki.min_backoff", l.MinBackoff}} {
		if e := positive(d.key, d.v); e != nil {
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
	names := make([]string, 0, len(l.ExternalLabels))
	for k := range l.ExternalLabels {
		names = append(names, k)
	}
	sort.Strings(names) // the first bad one, the same every time
	for _, k := range names {
		if !labelName.MatchString(k) {
			return &Error{Key: "loki.external_labels", Msg: fmt.Sprintf("invalid label name %q", k)}
		}
		if slices.Contains(lokiBuiltinLabels, k) {
			return &Error{Key: "loki.external_labels", Msg: fmt.Sprintf("%q is set by the agent", k)}
		}
	}
	return clientChecks("loki", l.BasicAuth, l.BearerTokenFile, l.ProxyURL, l.HTTPClientConfig())
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
	if p.RoutingKeyFile == "" {
		return nil
	}
	if p.URL == "" {
		return &Error{Key: "pagerduty.url", Msg: "must be set when pagerduty.routing_key_file is"}
	}
	if e := optionalURL("pagerduty.url", p.URL); e != nil {
		return e
	}
	if p.ConsecutiveFailures < 1 {
		return &Error{Key: "pagerduty.consecutive_failures", Msg: "must be at least 1"}
	}
	return positive("pagerduty.throttle_sustained", p.ThrottleSustained)
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

func positive(key string, d Duration) *Error {
	if d <= 0 {
		return &Error{Key: key, Msg: "must be a positive duration"}
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
