package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/condition"
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
	routeCPSubtasks   = "/jobs/:jobid/checkpoints/details/:checkpointid/subtasks/:vertexid"
	routeExceptions   = "/jobs/:jobid/exceptions"
	routeJMMetrics    = "/jobmanager/metrics"
	routeSubtasks     = "/jobs/:jobid/vertices/:vertexid/subtasks/metrics"
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

// client is the Flink REST client: bounded bodies decoded while they are
// read (stream.go), gzip (the transport asks for it and inflates), TLS/mTLS,
// basic auth, a user agent, and per-route request, decode-error and
// invalid-value counts. Safe for concurrent use.
type client struct {
	base      string
	hc        *http.Client
	maxBytes  int64
	userAgent string

	requests     *prometheus.CounterVec
	decodeErrors *prometheus.CounterVec
	invalid      *prometheus.CounterVec
	log          *slog.Logger
	unusable     *condition.Set[string] // by route: logged when it starts and ends
}

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
		unusable:  condition.NewSet[string](log, "unusable Flink REST answers (counted in flink_rest_decode_errors_total)", "endpoint"),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_rest_invalid_values_total",
			Help: "Values in Flink REST answers that cannot be true (a negative count, a counter jumping further than time allows, more elements than any cluster has), dropped instead of used.",
		}, []string{"field"}),
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

	conn := &connReader{r: resp.Body}
	body := io.Reader(conn)
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(conn)
		if err != nil && conn.err == nil {
			c.count(route, strconv.Itoa(resp.StatusCode))
			return c.bad(route, fmt.Errorf("gzip: %w", err))
		}
		if err == nil {
			defer zr.Close()
			body = zr // the limit below applies to the inflated body
		}
	}
	var dropped int
	if conn.err == nil {
		// What is kept may cost half the byte bound; its strings come
		// out of the other half.
		dropped, err = decodeStream(&limitReader{r: body, n: c.maxBytes}, v, c.maxBytes/2)
	}
	if conn.err != nil {
		// The answer began but did not finish: a slow or cut body.
		c.count(route, transportCode(ctx, conn.err))
		return fmt.Errorf("GET %s: reading body: %w", path, conn.err)
	}
	c.count(route, strconv.Itoa(resp.StatusCode))
	if dropped > 0 {
		c.invalid.WithLabelValues("array_elements").Add(float64(dropped))
	}
	switch {
	case errors.Is(err, errTooLarge):
		return c.bad(route, fmt.Errorf("%w (%d bytes)", errTooLarge, c.maxBytes))
	case err != nil:
		return c.bad(route, err)
	}
	c.unusable.OK(route)
	return nil
}

// connReader keeps the connection's failure apart from the body's.
type connReader struct {
	r   io.Reader
	err error
}

func (c *connReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// bad counts an unusable body and logs the first of a run per route.
func (c *client) bad(route string, err error) error {
	c.decodeErrors.WithLabelValues(route).Inc()
	c.unusable.Fail(route, "err", err)
	return &decodeError{route: route, err: err}
}

// invalidValue counts a value that cannot be true, by the field it was in.
func (c *client) invalidValue(field string) {
	c.invalid.WithLabelValues(field).Inc()
}

// markBad counts a body that decoded but lacks what it must have.
func (c *client) markBad(route string, err error) error { return c.bad(route, err) }

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
