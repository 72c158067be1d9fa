// Command flink-agent is the observability sidecar for Apache Flink pods:
// it scrapes the JobManager's REST API, ships log files to Loki, and emits
// Prometheus and DogStatsD metrics.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/prometheus/common/version"

	"github.com/flink-agent/flink-agent/internal/agent"
	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/internal/urlmask"
)

// The version and revision come from github.com/prometheus/common/version,
// set by the Makefile's and the Dockerfile's -ldflags, so that --version and
// flink_agent_build_info say the same.
func agentVersion() string {
	if version.Version == "" {
		return "dev"
	}
	return version.Version
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // could not start, or stopped on an error
	exitConfig  = 2 // bad flags or configuration
)

func main() {
	tuneRuntime(os.Getenv) // the process's, not an in-process test's
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "webhook" {
		return runWebhook(args[1:], stderr)
	}
	opts, err := parseArgs(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "flink-agent: %v\n", err)
		return exitConfig
	}
	if opts.version {
		fmt.Fprintln(stdout, versionString())
		return exitOK
	}

	cfg, err := opts.load()
	if err != nil {
		fmt.Fprintf(stderr, "flink-agent: invalid configuration: %v\n", urlmask.Text(err.Error()))
		return exitConfig
	}
	if opts.command == "check-config" {
		fmt.Fprintf(stdout, "configuration OK (%s)\n", opts.source())
		return exitOK
	}

	if !cfg.Web.EnablePprof {
		// Without /debug/pprof nobody reads allocation samples: do not
		// take them (the runtime's bucket table alone is ~1 MiB).
		runtime.MemProfileRate = 0
	}
	logger := newLogger(cfg.Log, stderr)
	id := identity.FromEnv(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger.Info("starting flink-agent", "version", agentVersion(), "revision", version.GetRevision(), "config", opts.source())
	if err := agent.Run(ctx, cfg, agent.Deps{Identity: id, Logger: logger, Version: agentVersion(), ReleaseStartupPages: true}); err != nil {
		logger.Error("flink-agent stopped", "err", err)
		return exitFailure
	}
	return exitOK
}

// gcPercent is the agent's GOGC unless the environment sets one. A sidecar's
// heap is small (3–5 MiB in use at 2,000 lines/s) and grows slowly
// (~150 KB/s): collecting when it has grown by a quarter instead of
// doubled keeps ~4 MiB off the RSS for no CPU the benchmark can tell
// (docs/shipper.md, "bench-footprint").
const gcPercent = 25

// tuneRuntime sizes the Go runtime for a sidecar.
func tuneRuntime(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if getenv("GOMAXPROCS") == "" {
		// One P: the chart gives the agent half a core, and its work
		// comes in short rounds; with a second P every wake-up also
		// wakes a thread that spins and finds nothing (a tenth of the
		// CPU at 2,000 lines/s). Reading, pushing and scraping still
		// overlap their waits.
		runtime.GOMAXPROCS(1)
	}
}

func versionString() string {
	c := version.GetRevision() // the linker's, else the VCS stamp of go build
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("flink-agent %s (commit %s, %s %s/%s)", agentVersion(), c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	// Every attribute and message goes through urlmask: no URL the agent
	// logs (Flink's, Loki's, in net/http's errors) carries credentials.
	ho := &slog.HandlerOptions{Level: level, ReplaceAttr: urlmask.ReplaceAttr}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}
