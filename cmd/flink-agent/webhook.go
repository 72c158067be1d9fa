package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"slices"
	"syscall"

	"github.com/prometheus/common/version"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/webhook"
)

const webhookUsage = `Usage: flink-agent webhook [flags]

A Kubernetes mutating admission webhook that adds the flink-agent sidecar to
the JobManager and TaskManager pods Flink creates (see the Helm chart's
webhook.enabled). Serves POST /mutate (AdmissionReview v1), /metrics and
/healthz over TLS.

Flags:
`

// runWebhook is the webhook subcommand.
func runWebhook(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("flink-agent webhook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("web.listen-address", ":9443", "address for /mutate, /metrics and /healthz (TLS)")
	certFile := fs.String("tls.cert-file", "", "serving certificate (PEM), reloaded when it changes")
	keyFile := fs.String("tls.key-file", "", "its private key (PEM)")
	cfgFile := fs.String("webhook.config-file", "", "what to add to JobManager and TaskManager pods (rendered by the Helm chart)")
	level := fs.String("log.level", "info", "debug, info, warn or error")
	format := fs.String("log.format", "logfmt", "logfmt or json")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), webhookUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "flink-agent webhook: "+format+"\n", a...)
		return exitConfig
	}
	switch {
	case fs.NArg() > 0:
		return fail("unexpected argument %q", fs.Arg(0))
	case *certFile == "" || *keyFile == "":
		return fail("--tls.cert-file and --tls.key-file are required (the API server calls webhooks over HTTPS)")
	case *cfgFile == "":
		return fail("--webhook.config-file is required")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, *level) {
		return fail("--log.level: must be one of debug, info, warn, error, got %q", *level)
	}
	if *format != "logfmt" && *format != "json" {
		return fail("--log.format: must be logfmt or json, got %q", *format)
	}
	cfg, err := webhook.LoadConfig(*cfgFile)
	if err != nil {
		return fail("--webhook.config-file %s: %v", *cfgFile, err)
	}
	logger := newLogger(config.Log{Level: *level, Format: *format}, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger.Info("starting flink-agent webhook", "version", agentVersion(), "revision", version.GetRevision(), "config", *cfgFile)
	if err := webhook.Serve(ctx, webhook.Options{
		ListenAddress: *listen, CertFile: *certFile, KeyFile: *keyFile, Config: cfg, Logger: logger,
	}); err != nil {
		logger.Error("flink-agent webhook stopped", "err", err)
		return exitFailure
	}
	return exitOK
}
