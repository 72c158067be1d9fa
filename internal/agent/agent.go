// Package agent wires flink-agent's parts together and runs them: the REST
// collector and checkpoint watch (JobManager sidecars), the log shipper, the
// DogStatsD client and the HTTP endpoint, with one lifecycle.
//
// Startup fails fast (bad credentials file, port in use); after startup the
// agent never exits on its own: errors are counted, logged and retried.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/exepages"
	"github.com/flink-agent/flink-agent/internal/identity"
)

// Deps are what the agent takes from its environment.
type Deps struct {
	Identity identity.Identity
	Logger   *slog.Logger
	Version  string
	// Ready, when set, is closed once the agent serves HTTP (tests).
	Ready chan<- string
	// ReleaseStartupPages: once ready, unmap the executable's pages that
	// start-up touched (package exepages); the process's own choice, so
	// main's, not an in-process test's.
	ReleaseStartupPages bool
}

// component is one long-running part. Run returns when ctx ends, after its
// own drain; an earlier return is a failure that makes /healthz fail.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// Run runs the agent until ctx ends, then drains within cfg.Shutdown.Timeout.
func Run(ctx context.Context, cfg config.Config, d Deps) error {
	log := d.Logger
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	st := newStatus()
	a, err := build(cfg, d, reg, st)
	if err != nil {
		return err
	}
	defer a.statsd.Close()

	// A bad web configuration file and a port in use are startup failures:
	// check and bind before starting anything.
	if err := web.Validate(cfg.Web.ConfigFile); err != nil {
		return fmt.Errorf("web.config_file: %w", err)
	}
	mux, probes, err := newMux(reg, st, cfg.Web, d.Version)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Web.ListenAddress)
	if err != nil {
		return fmt.Errorf("web.listen_address: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := serve(ln, srv, probes, cfg.Web.ConfigFile, log.With("part", "web")); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server failed", "err", err)
			st.fail("http: " + err.Error())
		}
	}()
	log.Info("serving", "address", ln.Addr().String(), "identity", fmt.Sprintf("%+v", a.id), "components", a.names())
	if d.Ready != nil {
		d.Ready <- ln.Addr().String()
	}

	var wg sync.WaitGroup
	for _, c := range a.components {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.run(ctx)
			if ctx.Err() == nil {
				log.Error("component stopped unexpectedly", "component", c.name, "err", err)
				st.fail(c.name)
			} else if err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("component stopped with error", "component", c.name, "err", err)
			}
		}()
	}
	if len(a.components) == 0 {
		st.setReady()
	}
	if d.ReleaseStartupPages {
		// Start-up pages go once the agent is ready, and once more when
		// Loki first acknowledges a batch: the first connection (dial,
		// proxy and TLS set-up), metric children created on first use and
		// the first push run after readiness, and never again.
		go func() {
			for _, when := range []<-chan struct{}{st.readyCh, a.settled} {
				select {
				case <-when:
				case <-ctx.Done():
					return
				}
				n, err := exepages.Release()
				log.Debug("start-up pages of the executable released", "mapped_bytes", n, "err", err)
			}
		}()
	}

	<-ctx.Done()
	log.Info("shutting down", "timeout", cfg.Shutdown.Timeout.D())
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	deadline := time.NewTimer(cfg.Shutdown.Timeout.D())
	defer deadline.Stop()
	select {
	case <-done:
	case <-deadline.C:
		log.Warn("shutdown timeout reached before every component drained")
	}
	if err := a.statsd.Flush(); err != nil {
		log.Debug("dogstatsd flush", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	log.Info("stopped")
	return nil
}

// assembled is the agent's parts, built but not running.
type assembled struct {
	id         identity.Identity
	statsd     *dogstatsd.Client
	components []component
	// settled is closed when Loki first acknowledges a batch (settle).
	settled    chan struct{}
	settleOnce sync.Once
}

func (a *assembled) settle() { a.settleOnce.Do(func() { close(a.settled) }) }

func (a *assembled) add(name string, run func(context.Context) error) {
	a.components = append(a.components, component{name: name, run: run})
}

func (a *assembled) names() []string {
	var n []string
	for _, c := range a.components {
		n = append(n, c.name)
	}
	return n
}

// RegisterMetrics registers every metric family the agent exports on reg,
// as Run does with every part enabled, without starting anything. Dashboards and alert rules are
// checked against it.
func RegisterMetrics(reg prometheus.Registerer) error {
	dir, err := os.MkdirTemp("", "flink-agent-metrics")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := config.Default()
	cfg.Logs.Paths = []string{filepath.Join(dir, "*.log")}
	cfg.Logs.PositionsFile = filepath.Join(dir, "positions.json")
	cfg.Loki.URL = "http://127.0.0.1:3100" // built, never contacted
	cfg.DogStatsD.Address = ""
	cfg.Traces.OTLPEndpoint = "http://127.0.0.1:4318" // built, never contacted
	cfg.PagerDuty.RoutingKeyFile = filepath.Join(dir, "routing-key")
	if err := os.WriteFile(cfg.PagerDuty.RoutingKeyFile, []byte("R0UT1NGKEY0000000000000000000000"), 0o600); err != nil {
		return err
	}
	_, err = build(cfg, Deps{Logger: slog.New(slog.DiscardHandler)}, reg, newStatus())
	return err
}
