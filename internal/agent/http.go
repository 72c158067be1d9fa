package agent

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/flink-agent/flink-agent/internal/config"
)

// status backs /healthz and /readyz.
type status struct {
	mu      sync.Mutex
	ready   bool
	readyCh chan struct{} // closed when ready
	failed  []string
	checks  []check
}

// check is a running component's own liveness (the shipper's stall check):
// it must answer at once, whatever the component is stuck in.
type check struct {
	name string
	fn   func() error
}

func (s *status) addCheck(name string, fn func() error) {
	s.mu.Lock()
	s.checks = append(s.checks, check{name, fn})
	s.mu.Unlock()
}

// unhealthy is why /healthz fails: components that stopped, checks that fail.
func (s *status) unhealthy() []string {
	s.mu.Lock()
	why := make([]string, 0, len(s.failed))
	for _, f := range s.failed {
		why = append(why, f+" stopped")
	}
	checks := s.checks
	s.mu.Unlock()
	for _, c := range checks {
		if err := c.fn(); err != nil {
			why = append(why, c.name+": "+err.Error())
		}
	}
	return why
}

func newStatus() *status { return &status{readyCh: make(chan struct{})} }

func (s *status) setReady() {
	s.mu.Lock()
	if !s.ready {
		s.ready = true
		close(s.readyCh)
	}
	s.mu.Unlock()
}

func (s *status) fail(what string) {
	s.mu.Lock()
	s.failed = append(s.failed, what)
	s.mu.Unlock()
}

func (s *status) get() (ready bool, failed []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready, append([]string(nil), s.failed...)
}

// probePaths are served without the web configuration's basic auth:
// kubelet httpGet probes cannot send credentials without writing them into
// the pod spec. They tell whether the agent runs, nothing else.
var probePaths = []string{"/healthz", "/readyz"}

// serve serves srv on ln until it is shut down. exporter-toolkit serves TLS
// and checks basic auth as the web configuration file says, except for the
// probes.
func serve(ln net.Listener, srv *http.Server, probes http.Handler, webConfig string, log *slog.Logger) error {
	flags := &web.FlagConfig{WebListenAddresses: &[]string{ln.Addr().String()}, WebSystemdSocket: new(bool),
		WebConfigFile: &webConfig}
	return web.Serve(&probesFirst{Listener: ln, srv: srv, probes: probes}, srv, flags, log)
}

// probesFirst puts the probe paths in front of what exporter-toolkit's
// web.Serve made of srv.Handler (its basic-auth check around the mux), so
// that only they skip it. The toolkit has no per-path exemption; it wraps
// srv.Handler before it serves, in the goroutine that then calls Accept, so
// the first Accept is where the wrapped handler is in place and no request
// has been read.
type probesFirst struct {
	net.Listener
	srv    *http.Server
	probes http.Handler
	once   sync.Once
}

func (l *probesFirst) Accept() (net.Conn, error) {
	l.once.Do(func() {
		guarded := l.srv.Handler
		l.srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if slices.Contains(probePaths, r.URL.Path) {
				l.probes.ServeHTTP(w, r)
				return
			}
			guarded.ServeHTTP(w, r)
		})
	})
	return l.Listener.Accept()
}

// newMux returns every endpoint, and the probes alone.
func newMux(reg *prometheus.Registry, st *status, w config.Web, version string) (mux, probes *http.ServeMux, err error) {
	mux = http.NewServeMux()
	probes = http.NewServeMux()
	mux.Handle(w.TelemetryPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:          reg, // counts its own errors in promhttp_metric_handler_errors_total
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	}))
	// Liveness: the process serves and no component died. A dead component
	// is fixed by a container restart, which is what failing here asks for.
	probes.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if why := st.unhealthy(); len(why) > 0 {
			http.Error(w, "unhealthy: "+strings.Join(why, ", "), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	// Readiness: config loaded and the first scrape or tail pass done.
	probes.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready, _ := st.get(); !ready {
			http.Error(w, "not ready: waiting for the first scrape or tail pass", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	for _, p := range probePaths {
		mux.Handle(p, probes)
	}
	// The landing page every Prometheus exporter has.
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        "flink-agent",
		Description: "Observability sidecar for Apache Flink: REST scrape, checkpoint watch, log shipping",
		Version:     version,
		Links: []web.LandingLinks{
			{Address: w.TelemetryPath, Text: "Metrics"},
			{Address: "/healthz", Text: "Health"},
			{Address: "/readyz", Text: "Readiness"},
		},
	})
	if err != nil {
		return nil, nil, err
	}
	mux.Handle("/", landing)
	if w.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux, probes, nil
}
