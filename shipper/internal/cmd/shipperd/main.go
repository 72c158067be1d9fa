// Command shipperd runs the log shipper alone, as flink-agent would run it,
// for the shipper's process-level tests (SIGTERM/SIGKILL restarts) and for
// scripts/bench-compare.sh. It takes the agent's flag names for the
// settings it uses.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/httpclient"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/internal/urlmask"
	"github.com/flink-agent/flink-agent/shipper"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type sizeFlag struct{ p *config.ByteSize }

func (s sizeFlag) String() string {
	if s.p == nil {
		return ""
	}
	return fmt.Sprint(int64(*s.p))
}
func (s sizeFlag) Set(v string) error {
	b, err := config.ParseByteSize(v)
	if err != nil {
		return err
	}
	*s.p = b
	return nil
}

type durFlag struct{ p *config.Duration }

func (d durFlag) String() string {
	if d.p == nil {
		return ""
	}
	return time.Duration(*d.p).String()
}
func (d durFlag) Set(v string) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	*d.p = config.Duration(x)
	return nil
}

func main() {
	cfg := config.Default()
	var paths listFlag
	flag.Var(&paths, "logs.path", "glob of log files (repeatable)")
	flag.StringVar(&cfg.Logs.PositionsFile, "logs.positions-file", cfg.Logs.PositionsFile, "positions file")
	flag.Var(durFlag{&cfg.Logs.PollInterval}, "logs.poll-interval", "scan interval")
	flag.Var(durFlag{&cfg.Logs.SyncPeriod}, "logs.sync-period", "durable positions save interval")
	flag.Var(sizeFlag{&cfg.Logs.MaxBufferBytes}, "logs.max-buffer-bytes", "memory budget")
	flag.StringVar(&cfg.Logs.Multiline.Mode, "logs.multiline.mode", cfg.Logs.Multiline.Mode, "log4j or json")
	flag.StringVar(&cfg.Loki.URL, "loki.url", "", "Loki push URL")
	flag.Var(sizeFlag{&cfg.Loki.BatchBytes}, "loki.batch-bytes", "batch size")
	flag.Var(durFlag{&cfg.Loki.BatchWait}, "loki.batch-wait", "batch wait")
	flag.Var(durFlag{&cfg.Loki.MinBackoff}, "loki.min-backoff", "first retry wait")
	flag.Var(durFlag{&cfg.Loki.MaxBackoff}, "loki.max-backoff", "longest retry wait")
	flag.Var(durFlag{&cfg.Shutdown.Timeout}, "shutdown.timeout", "drain bound")
	listen := flag.String("web.listen-address", "127.0.0.1:0", "metrics address")
	addrFile := flag.String("web.address-file", "", "write the bound metrics address here")
	logLevel := flag.String("log.level", "info", "debug, info, warn, error")
	flag.Parse()
	if len(paths) > 0 {
		cfg.Logs.Paths = paths
	}

	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(*logLevel))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl, ReplaceAttr: urlmask.ReplaceAttr}))
	if err := cfg.Validate(); err != nil {
		log.Error("invalid configuration", "err", err)
		os.Exit(2)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hc, err := httpclient.Loki(cfg.Loki, "flink-agent")
	if err != nil {
		log.Error("startup failed", "err", err)
		os.Exit(2)
	}
	s, err := shipper.New(shipper.Options{
		Logs: cfg.Logs, Loki: cfg.Loki, Identity: identity.FromEnv(os.Getenv),
		Registerer: reg, Logger: log, DrainTimeout: cfg.Shutdown.Timeout.D(), UserAgent: "flink-agent",
		HTTPClient: hc,
	})
	if err != nil {
		log.Error("startup failed", "err", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(2)
	}
	if *addrFile != "" {
		_ = os.WriteFile(*addrFile+".tmp", []byte(ln.Addr().String()), 0o644)
		_ = os.Rename(*addrFile+".tmp", *addrFile)
	}
	go func() { _ = http.Serve(ln, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})) }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err = s.Run(ctx)
	stop()
	if err != nil {
		log.Error("shipper", "err", err)
		os.Exit(1)
	}
	log.Info("stopped")
}
