// Package loki ships events to Loki: the Batcher fills batches (entries
// encoded in push.proto's wire format as they are added), the Queue bounds
// what is held in memory, the Sender pushes each batch to
// /loki/api/v1/push through the Client, retries with backoff until Loki
// answers for good, and only then acknowledges the entries' files (package
// positions). That last step is why this is not
// github.com/grafana/loki-client-go: it drops a batch after its retries and
// never tells the caller.
package loki

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/flink-agent/flink-agent/internal/excerpt"
	"github.com/flink-agent/flink-agent/internal/retryafter"
)

// pushPath is Loki's push endpoint, appended to a URL without a path.
const pushPath = "/loki/api/v1/push"

// Outcome is what a push attempt means for its batch.
type Outcome int

const (
	// Delivered: Loki acknowledged every entry (2xx).
	Delivered Outcome = iota
	// Retry: nothing was stored or it is unknown (network, 429, 5xx, and
	// 4xx other than 400, which are configuration errors an operator can
	// fix); send the same batch again.
	Retry
	// Rejected: 400. Loki stored what it could and will never take the rest
	// (too old, line too long, …); retrying cannot help.
	Rejected
)

// Result of one push attempt.
type Result struct {
	Outcome    Outcome
	Status     int           // HTTP status, 0 on a network error
	RetryAfter time.Duration // from a Retry-After header, 0 if none
	// Reason is a short low-cardinality label for rejections
	// (too_old, too_new, line_too_long, out_of_order, …) and retries
	// (network, rate_limited, server_error, http_4xx).
	Reason string
	// Ignored is how many entries Loki says it dropped on a 400, when it
	// says so ("total ignored: N out of M"); -1 when unknown.
	Ignored int
	Err     error // describes a failure, with the response body's start
}

// ClientSettings say where pushes go and what they carry besides the
// body; they are validated by internal/config.
type ClientSettings struct {
	URL       string            // loki.url: Loki's base URL (pushPath is added) or the push endpoint
	TenantID  string            // loki.tenant_id: X-Scope-OrgID
	Headers   map[string]string // loki.headers
	UserAgent string
}

// Client sends push requests through a ready *http.Client, which carries
// the transport settings: TLS, credentials, proxy, timeout.
type Client struct {
	url     string
	hc      *http.Client
	headers http.Header
}

// NewClient returns a client for s that sends through hc.
func NewClient(s ClientSettings, hc *http.Client) (*Client, error) {
	u, err := url.Parse(s.URL)
	if err != nil {
		return nil, fmt.Errorf("loki.url: %w", err)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = pushPath
	}
	c := &Client{url: u.String(), hc: hc, headers: http.Header{}}
	for k, v := range s.Headers {
		c.headers.Set(k, v)
	}
	if s.TenantID != "" {
		c.headers.Set("X-Scope-OrgID", s.TenantID)
	}
	c.headers.Set("Content-Type", "application/x-protobuf")
	if s.UserAgent != "" {
		c.headers.Set("User-Agent", s.UserAgent)
	}
	return c, nil
}

// Push sends one snappy-compressed protobuf PushRequest.
func (c *Client) Push(ctx context.Context, body []byte) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return Result{Outcome: Retry, Reason: "network", Err: err, Ignored: -1}
	}
	for k, v := range c.headers {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return Result{Outcome: Retry, Reason: "network", Err: err, Ignored: -1}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	return classify(resp.StatusCode, resp.Header.Get("Retry-After"), msg, time.Now())
}

// classify maps a push response to its outcome.
func classify(status int, retryAfter string, body []byte, now time.Time) Result {
	r := Result{Status: status, Ignored: -1}
	switch {
	case status/100 == 2:
		r.Outcome = Delivered
		return r
	case status == http.StatusBadRequest:
		r.Outcome = Rejected
		r.Reason = rejectReason(body)
		r.Ignored = ignoredCount(body)
	case status == http.StatusTooManyRequests:
		r.Outcome, r.Reason = Retry, "rate_limited"
	case status/100 == 5:
		r.Outcome, r.Reason = Retry, "server_error"
	default:
		r.Outcome, r.Reason = Retry, "http_"+strconv.Itoa(status)
	}
	r.RetryAfter, _ = retryafter.Parse(retryAfter, now)
	r.Err = fmt.Errorf("loki answered %d: %s", status, excerpt.Bytes(excerpt.FirstLine(string(body)), 300))
	return r
}

// Reasons, from Loki's validation messages (pkg/validation/validate.go).
var reasons = []struct {
	reason string
	substr []string
}{
	{"too_old", []string{"timestamp too old", "too far behind", "greater_than_max_sample_age"}},
	{"too_new", []string{"timestamp too new", "too_far_in_future"}},
	{"line_too_long", []string{"max entry size", "line too long", "line_too_long"}},
	{"out_of_order", []string{"out of order", "out_of_order"}},
	{"structured_metadata", []string{"structured metadata"}},
	{"invalid_labels", []string{"error parsing labels", "label name", "label value", "at least one label", "duplicate label"}},
	{"stream_limit", []string{"stream limit", "maximum active stream"}},
}

// rejectReason names why Loki rejected entries with a 400.
func rejectReason(body []byte) string {
	lower := strings.ToLower(string(body))
	for _, r := range reasons {
		for _, s := range r.substr {
			if strings.Contains(lower, s) {
				return r.reason
			}
		}
	}
	return "other"
}

var ignoredRE = regexp.MustCompile(`total ignored: (\d+) out of \d+`)

// ignoredCount sums Loki's per-stream "total ignored: N out of M".
func ignoredCount(body []byte) int {
	m := ignoredRE.FindAllSubmatch(body, -1)
	if len(m) == 0 {
		return -1
	}
	n := 0
	for _, g := range m {
		v, _ := strconv.Atoi(string(g[1]))
		n = min(n, math.MaxInt-v) + v // a body cannot make the sum wrap negative
	}
	return n
}
