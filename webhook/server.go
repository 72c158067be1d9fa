package webhook

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxBody bounds an AdmissionReview; etcd stores objects of at most 1.5 MiB.
const maxBody = 8 << 20

// Options configure Serve.
type Options struct {
	ListenAddress     string // e.g. ":9443"
	CertFile, KeyFile string // the serving certificate, reloaded when the files change
	Config            *Config
	Logger            *slog.Logger
	// Registry, when set, gets the webhook's metrics (tests read them);
	// otherwise Serve makes its own with the Go and process collectors.
	Registry *prometheus.Registry
	// CertCheckInterval is how often the certificate files are checked for
	// a change (default 5s).
	CertCheckInterval time.Duration
}

// Handler serves POST /mutate (AdmissionReview v1), /metrics and /healthz.
type Handler struct {
	cfg      *Config
	log      *slog.Logger
	requests *prometheus.CounterVec
	mux      *http.ServeMux

	mu     sync.Mutex
	warned map[string]bool // problems logged at warn level once; later at debug
}

// NewHandler registers the webhook's metrics in reg and returns its handler.
func NewHandler(cfg *Config, log *slog.Logger, reg *prometheus.Registry) *Handler {
	h := &Handler{
		cfg: cfg,
		log: log,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_agent_webhook_requests_total",
			Help: "Admission requests answered, by result: injected (the sidecar was added), skipped (not a pod to inject, or it has the agent), error (left unchanged: undecodable, or the patch would make an invalid pod).",
		}, []string{"result"}),
		mux:    http.NewServeMux(),
		warned: map[string]bool{},
	}
	for _, r := range []string{ResultInjected, ResultSkipped, ResultError} {
		h.requests.WithLabelValues(r)
	}
	reg.MustRegister(h.requests)
	h.mux.HandleFunc("POST /mutate", h.mutate)
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) mutate(w http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		err = json.Unmarshal(body, &review)
	}
	if err == nil && review.Request == nil {
		err = errors.New("no request in the AdmissionReview")
	}
	if err != nil {
		// The API server treats the failed call by failurePolicy (Ignore):
		// the pod is created unchanged.
		h.requests.WithLabelValues(ResultError).Inc()
		h.problem("bad admission request", "bad admission request", "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := review.Request
	d := h.cfg.Decide(req)
	h.requests.WithLabelValues(d.Result).Inc()
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	switch d.Result {
	case ResultInjected:
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = d.Patch, &pt
	case ResultError:
		h.problem(d.Reason, "pod left without the sidecar", "namespace", req.Namespace, "name", podName(req), "reason", d.Reason)
		resp.Warnings = []string{"flink-agent sidecar not injected: " + d.Reason}
	}
	out := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: resp,
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// problem logs a kind of problem at warn level the first time and at debug
// level after that: the counter says how often.
func (h *Handler) problem(kind, msg string, args ...any) {
	h.mu.Lock()
	first := !h.warned[kind] && len(h.warned) < 1000
	if first {
		h.warned[kind] = true
	}
	h.mu.Unlock()
	level := slog.LevelDebug
	if first {
		level = slog.LevelWarn
	}
	h.log.Log(context.Background(), level, msg, args...)
}

// podName is the pod's name, or its generateName prefix (a ReplicaSet's pods
// get their names after admission).
func podName(req *admissionv1.AdmissionRequest) string {
	if req.Name != "" {
		return req.Name
	}
	var meta struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	_ = json.Unmarshal(req.Object.Raw, &meta)
	return meta.Metadata.GenerateName
}

// Serve listens on o.ListenAddress with TLS and serves the webhook until ctx
// ends. It fails at once when the address or the certificate is unusable.
func Serve(ctx context.Context, o Options) error {
	certs, err := newCertReloader(o.CertFile, o.KeyFile, o.Logger)
	if err != nil {
		return err
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	ln, err := net.Listen("tcp", o.ListenAddress)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           NewHandler(o.Config, o.Logger, reg),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get},
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}
	interval := o.CertCheckInterval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	go certs.run(ctx, interval)
	o.Logger.Info("webhook listening", "address", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// certReloader serves the key pair in certFile/keyFile and reloads it when
// either file changes (cert-manager renews certificates in place).
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	cert              atomic.Pointer[tls.Certificate]
	mtimes            [2]time.Time // of the loaded files; only run touches them
	lastErr           string       // logged once until it changes
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if _, err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload loads the files when their modification times differ from the
// loaded ones'.
func (c *certReloader) reload() (bool, error) {
	var mtimes [2]time.Time
	for i, f := range []string{c.certFile, c.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return false, err
		}
		mtimes[i] = st.ModTime()
	}
	if mtimes == c.mtimes {
		return false, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return false, fmt.Errorf("TLS key pair %s, %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert.Store(&cert)
	c.mtimes = mtimes
	return true, nil
}

// run checks the files every interval until ctx ends.
func (c *certReloader) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := c.reload()
		switch {
		case err != nil && err.Error() != c.lastErr:
			c.log.Warn("keeping the previous TLS certificate", "err", err)
		case changed:
			c.log.Info("reloaded the TLS certificate", "file", c.certFile)
		}
		c.lastErr = ""
		if err != nil {
			c.lastErr = err.Error()
		}
	}
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.cert.Load(), nil }
