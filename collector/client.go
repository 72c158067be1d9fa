package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/httpclient"
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
	maxBytes  int64
	userAgent string

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
	// TLS, basic auth, bearer token and proxy are prometheus/common's; the
	// scrape's context bounds every request.
	hc, err := httpclient.Flink(f, userAgent)
	if err != nil {
		return nil, err
	}
	return &client{
		base:      strings.TrimRight(f.RestURL, "/"),
		hc:        hc,
		maxBytes:  int64(f.MaxResponseBytes),
		userAgent: userAgent,
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
	}, nil
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
	// Asked for here and inflated below: prometheus/common's transport
	// leaves compression to the caller.
	req.Header.Set("Accept-Encoding", "gzip")
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

	body := io.Reader(resp.Body)
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			c.count(route, strconv.Itoa(resp.StatusCode))
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.bad(route, fmt.Errorf("gzip: %w", err), nil)
		}
		defer zr.Close()
		body = zr // the limit below applies to the inflated body
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Reset()
	n, err := c.buf.ReadFrom(io.LimitReader(body, c.maxBytes+1))
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
	if err := json.Unmarshal(c.buf.Bytes(), v); err != nil {
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

func (c *client) close() { c.hc.CloseIdleConnections() }
