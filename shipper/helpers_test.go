package shipper

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/httpclient"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/internal/logevent"
)

// hdr is a Flink log4j header, for events written by tests.
const hdr = "2024-05-01 12:00:00,123 INFO  org.apache.flink.configuration.GlobalConfiguration            [] - "

// collector is an Observer keeping copies of every event.
type collector struct {
	mu     sync.Mutex
	events []logevent.Event
}

func (c *collector) Observe(ev *logevent.Event) {
	e := *ev
	e.Line = append([]byte(nil), ev.Line...)
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
}

func (c *collector) snapshot() []logevent.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]logevent.Event(nil), c.events...)
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// testOptions are defaults for a shipper over dir/*.log with fast timers.
func testOptions(t testing.TB, dir string) Options {
	cfg := config.Default()
	cfg.Logs.Paths = []string{filepath.Join(dir, "*.log")}
	cfg.Logs.PositionsFile = filepath.Join(t.TempDir(), "positions.json")
	cfg.Logs.PollInterval = config.Duration(100 * time.Millisecond)
	cfg.Logs.Multiline.IdleTimeout = config.Duration(100 * time.Millisecond)
	cfg.Loki.BatchWait = config.Duration(100 * time.Millisecond)
	cfg.Loki.MinBackoff = config.Duration(50 * time.Millisecond)
	cfg.Loki.MaxBackoff = config.Duration(time.Second)
	return Options{
		Logs:         cfg.Logs,
		Loki:         cfg.Loki,
		Identity:     identity.Identity{Cluster: "c1", Namespace: "ns", Pod: "pod-0"},
		Registerer:   prometheus.NewRegistry(),
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		DrainTimeout: 5 * time.Second,
	}
}

// running is a shipper in a goroutine.
type running struct {
	s      *Shipper
	cancel context.CancelFunc
	done   chan error
}

func start(t testing.TB, opts Options) *running {
	t.Helper()
	first := make(chan struct{})
	prev := opts.OnFirstPass
	opts.OnFirstPass = func() {
		if prev != nil {
			prev()
		}
		close(first)
	}
	s, err := build(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{s: s, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("no first pass within 10s")
	}
	return r
}

func (r *running) stop(t testing.TB) {
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("shipper did not stop")
	}
}

// eventually polls cond for up to d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func appendFile(t testing.TB, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func rename(from, to string) error { return os.Rename(from, to) }

// build is New with the Loki client the agent's wiring builds from the same
// loki section (internal/httpclient.Loki).
func build(opts Options) (*Shipper, error) {
	if opts.Loki.URL != "" && opts.HTTPClient == nil {
		hc, err := httpclient.Loki(opts.Loki, "flink-agent/test")
		if err != nil {
			return nil, err
		}
		opts.HTTPClient = hc
	}
	return New(opts)
}
