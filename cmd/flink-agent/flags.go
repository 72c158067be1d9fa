package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/flink-agent/flink-agent/internal/config"
)

// options are the parsed command line. Flags override the config file; a
// flag left unset keeps the file's (or the default) value.
type options struct {
	command    string // "" (run) or "check-config"
	version    bool
	configFile string
	set        map[string]bool // flags given on the command line
	values     flagValues
}

type flagValues struct {
	restURL, positions, lokiURL, dogstatsd, listen, level, format, pagerdutyKey string
	webConfig, telemetryPath, otlpEndpoint                                      string
	scrapeInterval, shutdownTimeout                                             time.Duration
	logPaths                                                                    stringList
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

const usageHead = `Usage: flink-agent [check-config] [flags]

The observability sidecar for Apache Flink pods: scrapes the JobManager's
REST API, ships log files to Loki, emits Prometheus and DogStatsD metrics.

Commands:
  check-config   validate the configuration and exit (0 valid, 2 invalid)
  webhook        the sidecar-injecting admission webhook (flink-agent webhook --help)

Flags (each overrides the config file key shown in brackets):
`

func parseArgs(args []string, stderr io.Writer) (*options, error) {
	d := config.Default()
	o := &options{set: map[string]bool{}}
	fs := flag.NewFlagSet("flink-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	v := &o.values
	fs.BoolVar(&o.version, "version", false, "print version, commit and Go version, and exit")
	fs.StringVar(&o.configFile, "config.file", "", "YAML configuration file")
	fs.StringVar(&v.restURL, "flink.rest-url", d.Flink.RestURL, "Flink REST API; empty disables scraping (TaskManager sidecars) [flink.rest_url]")
	fs.DurationVar(&v.scrapeInterval, "flink.scrape-interval", d.Flink.ScrapeInterval.D(), "REST scrape interval [flink.scrape_interval]")
	fs.Var(&v.logPaths, "logs.path", "log file glob, repeatable (default "+strings.Join(d.Logs.Paths, ",")+") [logs.paths]")
	fs.StringVar(&v.positions, "logs.positions-file", d.Logs.PositionsFile, "where read positions are saved [logs.positions_file]")
	fs.StringVar(&v.lokiURL, "loki.url", d.Loki.URL, "Loki base URL, e.g. http://loki:3100; empty disables shipping [loki.url]")
	fs.StringVar(&v.dogstatsd, "dogstatsd.address", d.DogStatsD.Address, "DogStatsD host:port or unix:///path; empty disables [dogstatsd.address]")
	fs.StringVar(&v.pagerdutyKey, "pagerduty.routing-key-file", d.PagerDuty.RoutingKeyFile, "file holding a PagerDuty Events API v2 routing key; set to page directly [pagerduty.routing_key_file]")
	fs.StringVar(&v.otlpEndpoint, "traces.otlp-endpoint", d.Traces.OTLPEndpoint, "OTLP receiver for checkpoint traces, http(s)://host:port; empty: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, else off [traces.otlp_endpoint]")
	fs.StringVar(&v.listen, "web.listen-address", d.Web.ListenAddress, "address for /metrics, /healthz, /readyz [web.listen_address]")
	fs.StringVar(&v.webConfig, "web.config.file", d.Web.ConfigFile, "exporter-toolkit web configuration file: TLS, and basic auth except for /healthz and /readyz [web.config_file]")
	fs.StringVar(&v.telemetryPath, "web.telemetry-path", d.Web.TelemetryPath, "path of the metrics endpoint [web.telemetry_path]")
	fs.StringVar(&v.level, "log.level", d.Log.Level, "debug, info, warn or error [log.level]")
	fs.StringVar(&v.format, "log.format", d.Log.Format, "logfmt or json [log.format]")
	fs.DurationVar(&v.shutdownTimeout, "shutdown.timeout", d.Shutdown.Timeout.D(), "how long to drain on SIGTERM [shutdown.timeout]")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "false" {
				def = fmt.Sprintf(" (default %q)", f.DefValue)
			}
			fmt.Fprintf(fs.Output(), "  --%s\n        %s%s\n", f.Name, f.Usage, def)
		})
	}

	if len(args) > 0 && args[0] == "check-config" {
		o.command, args = "check-config", args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if rest := fs.Args(); len(rest) > 0 {
		if rest[0] != "check-config" || o.command != "" || len(rest) > 1 {
			return nil, fmt.Errorf("unexpected argument %q (see --help)", rest[0])
		}
		o.command = "check-config"
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, nil
}

// load reads the config file (if any), applies the flags that were set, and
// validates the result.
func (o *options) load() (config.Config, error) {
	cfg := config.Default()
	if o.configFile != "" {
		var err error
		if cfg, err = config.Load(o.configFile); err != nil {
			return cfg, fmt.Errorf("%s: %w", o.configFile, err)
		}
	}
	v := o.values
	apply := map[string]func(){
		"flink.rest-url":             func() { cfg.Flink.RestURL = v.restURL },
		"flink.scrape-interval":      func() { cfg.Flink.ScrapeInterval = config.Duration(v.scrapeInterval) },
		"logs.path":                  func() { cfg.Logs.Paths = v.logPaths },
		"logs.positions-file":        func() { cfg.Logs.PositionsFile = v.positions },
		"loki.url":                   func() { cfg.Loki.URL = v.lokiURL },
		"dogstatsd.address":          func() { cfg.DogStatsD.Address = v.dogstatsd },
		"web.listen-address":         func() { cfg.Web.ListenAddress = v.listen },
		"web.config.file":            func() { cfg.Web.ConfigFile = v.webConfig },
		"web.telemetry-path":         func() { cfg.Web.TelemetryPath = v.telemetryPath },
		"pagerduty.routing-key-file": func() { cfg.PagerDuty.RoutingKeyFile = v.pagerdutyKey },
		"traces.otlp-endpoint":       func() { cfg.Traces.OTLPEndpoint = v.otlpEndpoint },
		"log.level":                  func() { cfg.Log.Level = v.level },
		"log.format":                 func() { cfg.Log.Format = v.format },
		"shutdown.timeout":           func() { cfg.Shutdown.Timeout = config.Duration(v.shutdownTimeout) },
	}
	for name := range o.set {
		if f, ok := apply[name]; ok {
			f()
		}
	}
	// The standard OTEL_* variables fill what the file and flags left unset.
	cfg.ResolveEnv(os.LookupEnv)
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func (o *options) source() string {
	if o.configFile == "" {
		return "flags and defaults"
	}
	return o.configFile
}
