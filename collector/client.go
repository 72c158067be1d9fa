package collector

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/config"
)

// REST routes, as the endpoint label shows them: the route template, never
// the raw path, so job and checkpoint ids do not multiply series.
const (
	routeJobsOverview = "/jobs/overview"
	routeJob          = "/jobs/:jobid"
	routeCheckpoints  = "/jobs/:jobid/checkpoints"
	routeCPConfig     = "/jobs/:jobid/checkpoints/config"
	routeCPDetails    = "/jobs/:jobid/checkpoints/details/:checkpointid"
	routeExceptions   = "/jobs/:jobid/exceptions"
	routeJMMetrics    = "/jobmanager/metrics"
	routeTMMetrics    = "/taskmanagers/metrics"
)

// errNotFound is a 404: for some routes an answer (checkpointing disabled,
// job gone), not a fault.
var errNotFound = errors.New("not found")

// decodeError is a body that could not be used: too large, truncated, or
// not the shape Flink documents.
type decodeError struct {
	route string
	err   error
}

func (e *decodeError) Error() string { return "decode " + e.route + ": " + e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// client is the Flink REST client: bounded bodies, gzip (the transport asks
// for it and inflates), TLS/mTLS, basic auth, a user agent, and per-route
// request and decode-error counts.
type client struct {
	base      string
	hc        *http.Client
	transport *http.Transport
	maxBytes  int64
	userAgent string
	user      string
	passFile  string
	pass      string

	requests     *prometheus.CounterVec
	decodeErrors *prometheus.CounterVec
	log          *slog.Logger

	mu     sync.Mutex
	buf    bytes.Buffer
	warned map[string]bool // routes whose bad body was logged, until they recover
}

// bufKeep is the largest read buffer kept between scrapes; a rare large body
// does not pin max_response_bytes of memory forever.
const bufKeep = 4 << 20

func newClient(f config.Flink, userAgent string, log *slog.Logger) (*client, error) {
	u, err := url.Parse(f.RestURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("flink.rest_url: invalid URL %q", f.RestURL)
	}
	tlsCfg, err := tlsConfig(f.TLS)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSClientConfig:       tlsCfg,
		MaxIdleConns:          4,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: f.ScrapeTimeout.D(),
	}
	maxBytes := int64(f.MaxResponseBytes)
	if maxBytes <= 0 {
		maxBytes = int64(config.Default().Flink.MaxResponseBytes)
	}
	c := &client{
		base:      strings.TrimRight(f.RestURL, "/"),
		hc:        &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		transport: tr,
		maxBytes:  maxBytes,
		userAgent: userAgent,
		user:      f.BasicAuth.Username,
		passFile:  f.BasicAuth.PasswordFile,
		log:       log,
		warned:    map[string]bool{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_rest_requests_total",
			Help: "Requests to the Flink REST API by route template and HTTP status code (error, timeout: no answer).",
		}, []string{"endpoint", "code"}),
		decodeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_rest_decode_errors_total",
			Help: "Flink REST answers that could not be used: larger than flink.max_response_bytes, truncated, or of an unexpected shape.",
		}, []string{"endpoint"}),
	}
	if c.passFile != "" {
		p, err := readSecret(c.passFile)
		if err != nil {
			return nil, fmt.Errorf("flink.basic_auth.password_file: %w", err)
		}
		c.pass = p
	}
	return c, nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// refreshSecret re-reads the password file so a rotated Secret is picked up;
// a read failure keeps the previous password.
func (c *client) refreshSecret() {
	if c.passFile == "" {
		return
	}
	if p, err := readSecret(c.passFile); err == nil {
		c.pass = p
	}
}

// tlsConfig builds the client TLS configuration, failing at startup on
// unreadable files. The client certificate is re-read at each handshake so
// that a renewed certificate is used without a restart.
func tlsConfig(t config.TLS) (*tls.Config, error) {
	if t == (config.TLS{}) {
		return nil, nil
	}
	cfg := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("flink.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("flink.tls.ca_file: no PEM certificate in %s", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("flink.tls.cert_file/key_file: %w", err)
		}
		var mu sync.Mutex
		last := &cert
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			mu.Lock()
			defer mu.Unlock()
			if c, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err == nil {
				last = &c
			}
			return last, nil
		}
	}
	return cfg, nil
}

// get fetches path (counted under route) and decodes its JSON body into v.
// A 404 is errNotFound; a bad body is a *decodeError, counted and logged
// once per route until the route answers well again.
func (c *client) get(ctx context.Context, route, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.count(route, transportCode(ctx, err))
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		c.count(route, strconv.Itoa(resp.StatusCode))
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("GET %s: %w", path, errNotFound)
		}
		return fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, bytes.TrimSpace(msg))
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Reset()
	n, err := c.buf.ReadFrom(io.LimitReader(resp.Body, c.maxBytes+1))
	defer func() {
		if c.buf.Cap() > bufKeep {
			c.buf = bytes.Buffer{}
		}
	}()
	if err != nil {
		// The answer began but did not finish: a slow or cut body.
		c.count(route, transportCode(ctx, err))
		return fmt.Errorf("GET %s: reading body: %w", path, err)
	}
	c.count(route, strconv.Itoa(resp.StatusCode))
	if n > c.maxBytes {
		return c.bad(route, fmt.Errorf("body larger than flink.max_response_bytes (%d bytes)", c.maxBytes), nil)
	}
	if fd, ok := v.(fastDecoder); ok {
		err = fd.decodeFast(c.buf.Bytes())
	} else {
		err = json.Unmarshal(c.buf.Bytes(), v)
	}
	if err != nil {
		return c.bad(route, err, c.buf.Bytes())
	}
	if c.warned[route] {
		delete(c.warned, route)
		c.log.Info("Flink REST answers are readable again", "endpoint", route)
	}
	return nil
}

// bad counts an unusable body and logs the first of a run per route.
func (c *client) bad(route string, err error, body []byte) error {
	c.decodeErrors.WithLabelValues(route).Inc()
	if !c.warned[route] {
		c.warned[route] = true
		if len(body) > 200 {
			body = body[:200]
		}
		c.log.Warn("unusable Flink REST answer (further ones on this endpoint are counted, not logged)",
			"endpoint", route, "err", err, "body_start", string(body))
	}
	return &decodeError{route: route, err: err}
}

// markBad counts a body that decoded but lacks what it must have.
func (c *client) markBad(route string, err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bad(route, err, nil)
}

func (c *client) count(route, code string) {
	c.requests.WithLabelValues(route, code).Inc()
}

func transportCode(ctx context.Context, err error) string {
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return "timeout"
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "error"
}

func (c *client) close() { c.transport.CloseIdleConnections() }
