package pager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/flink-agent/flink-agent/internal/backoff"
	"github.com/flink-agent/flink-agent/internal/condition"
	"github.com/flink-agent/flink-agent/internal/retryafter"
)

// DefaultURL is the Events API v2 endpoint.
const DefaultURL = "https://events.pagerduty.com/v2/enqueue"

// APILimitPerMinute is PagerDuty's documented limit per routing key.
const APILimitPerMinute = 120

// ClientOptions configure a Client.
type ClientOptions struct {
	URL string // default DefaultURL
	// RoutingKeyFile holds the integration's routing key (a mounted
	// Secret). It is read at start, where a missing or empty file is an
	// error, and again before every request, so a rotated key is used.
	RoutingKeyFile string
	HTTPClient     *http.Client // default: 10 s timeout
	Registerer     prometheus.Registerer
	Logger         *slog.Logger
	// MinBackoff and MaxBackoff bound the jittered waits between retries
	// (defaults 1 s and 2 min; PagerDuty suggests minutes for 429).
	MinBackoff, MaxBackoff time.Duration
	// PerMinute and Burst shape requests with a token bucket: at most
	// Burst+PerMinute requests leave in any minute, which is kept at or
	// below the API's 120 per routing key. Defaults 100 and 20.
	PerMinute, Burst int
	// QueueSize bounds the dedup keys waiting for delivery (default 256);
	// beyond it the oldest waiting event is dropped and counted.
	QueueSize int
	UserAgent string // default "flink-agent"
}

// Client delivers events to the Events API v2, one at a time, in order,
// with retries. Its methods are safe for concurrent use.
type Client struct {
	url     string
	keyFile string
	http    *http.Client
	log     *slog.Logger
	minB    time.Duration
	maxB    time.Duration
	lim     *rate.Limiter
	maxQ    int
	ua      string

	mu      sync.Mutex
	order   []string          // dedup keys waiting, oldest first
	waiting map[string]*Event // newest event per waiting key
	key     string            // last routing key read
	wake    chan struct{}

	// Logged when they start and when they end, with their count.
	failing, dropping, keyUnreadable *condition.Warning

	events   *prometheus.CounterVec
	requests *prometheus.CounterVec
}

// NewClient reads the routing key file and prepares the client.
func NewClient(o ClientOptions) (*Client, error) {
	if o.RoutingKeyFile == "" {
		return nil, errors.New("pagerduty.routing_key_file: not set")
	}
	key, err := readKey(o.RoutingKeyFile)
	if err != nil {
		return nil, fmt.Errorf("pagerduty.routing_key_file: %w", err)
	}
	c := &Client{
		url:     o.URL,
		keyFile: o.RoutingKeyFile,
		http:    o.HTTPClient,
		log:     o.Logger,
		minB:    o.MinBackoff,
		maxB:    o.MaxBackoff,
		maxQ:    o.QueueSize,
		ua:      o.UserAgent,
		key:     key,
		waiting: map[string]*Event{},
		wake:    make(chan struct{}, 1),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_agent_pagerduty_events_total",
			Help: "PagerDuty events by action and outcome: accepted (202), rejected (400, never retried), superseded (replaced by a newer event for the same dedup_key before delivery), dropped (queue full).",
		}, []string{"action", "outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flink_agent_pagerduty_requests_total",
			Help: "Requests to the PagerDuty Events API by result: the HTTP status class or network_error.",
		}, []string{"result"}),
	}
	if c.url == "" {
		c.url = DefaultURL
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 10 * time.Second}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.failing = condition.New(c.log, "PagerDuty events not delivered; retrying with backoff")
	c.dropping = condition.New(c.log, "PagerDuty queue full: dropping the oldest waiting events")
	c.keyUnreadable = condition.New(c.log, "cannot read the PagerDuty routing key file; using the key read before")
	if c.minB <= 0 {
		c.minB = time.Second
	}
	if c.maxB < c.minB {
		c.maxB = max(2*time.Minute, c.minB)
	}
	if c.maxQ <= 0 {
		c.maxQ = 256
	}
	if c.ua == "" {
		c.ua = "flink-agent"
	}
	perMin, burst := o.PerMinute, o.Burst
	if perMin <= 0 {
		perMin = 100
	}
	if burst <= 0 {
		burst = 20
	}
	perMin = min(perMin, APILimitPerMinute-1)
	burst = max(1, min(burst, APILimitPerMinute-perMin))
	c.lim = rate.NewLimiter(rate.Limit(float64(perMin)/60), burst)
	if o.Registerer != nil {
		for _, col := range []prometheus.Collector{c.events, c.requests} {
			if err := o.Registerer.Register(col); err != nil {
				return nil, fmt.Errorf("pager metrics: %w", err)
			}
		}
	}
	return c, nil
}

func readKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	k := strings.TrimSpace(string(b))
	if k == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return k, nil
}

// routingKey re-reads the key file; on failure the last good key is used
// and the failure is logged once (never the key itself).
func (c *Client) routingKey() string {
	k, err := readKey(c.keyFile)
	if err != nil {
		c.keyUnreadable.Fail("file", c.keyFile, "err", err)
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.key
	}
	c.keyUnreadable.OK("file", c.keyFile)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.key = k
	return k
}

// Enqueue queues ev for delivery (ev.RoutingKey is filled in at sending).
// An event still waiting for the same dedup_key is replaced: only the
// newest state of a condition matters.
func (c *Client) Enqueue(ev Event) {
	c.mu.Lock()
	if old, ok := c.waiting[ev.DedupKey]; ok {
		c.events.WithLabelValues(old.EventAction, "superseded").Inc()
		*old = ev
		c.mu.Unlock()
		c.signal()
		return
	}
	if len(c.order) >= c.maxQ {
		drop := c.order[0]
		c.order = c.order[1:]
		c.events.WithLabelValues(c.waiting[drop].EventAction, "dropped").Inc()
		delete(c.waiting, drop)
		defer c.dropping.Fail("dedup_key", drop) // after the lock: it may log
	}
	e := ev
	c.waiting[ev.DedupKey] = &e
	c.order = append(c.order, ev.DedupKey)
	c.mu.Unlock()
	c.signal()
}

func (c *Client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// pop takes the oldest waiting event.
func (c *Client) pop() (Event, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.order) == 0 {
		return Event{}, false
	}
	k := c.order[0]
	c.order = c.order[1:]
	ev := *c.waiting[k]
	delete(c.waiting, k)
	return ev, true
}

// newer takes a waiting event for key, if one arrived since ev was popped.
func (c *Client) newer(key string) (Event, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.waiting[key]
	if !ok {
		return Event{}, false
	}
	delete(c.waiting, key)
	for i, k := range c.order {
		if k == key {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
	return *e, true
}

// Pending is the number of events waiting for delivery.
func (c *Client) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.order)
}

// Run delivers queued events until ctx ends.
func (c *Client) Run(ctx context.Context) error {
	for {
		ev, ok := c.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-c.wake:
				continue
			}
		}
		c.deliver(ctx, ev)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// errPermanent marks an answer that retrying cannot change.
type errPermanent struct{ status int }

func (e errPermanent) Error() string { return "HTTP " + strconv.Itoa(e.status) }

// deliver sends ev until it is accepted, rejected, superseded, or ctx ends.
func (c *Client) deliver(ctx context.Context, ev Event) {
	b := backoff.Backoff{Min: c.minB, Max: c.maxB}
	for {
		if c.lim.Wait(ctx) != nil {
			return
		}
		wait, err := c.attempt(ctx, &ev)
		switch {
		case err == nil:
			c.events.WithLabelValues(ev.EventAction, "accepted").Inc()
			c.failing.OK()
			c.dropping.OK()
			return
		case errors.As(err, new(errPermanent)):
			c.events.WithLabelValues(ev.EventAction, "rejected").Inc()
			return
		case ctx.Err() != nil:
			return
		}
		d := b.Next()
		if wait > d {
			d = wait
		}
		c.failing.Fail("dedup_key", ev.DedupKey, "action", ev.EventAction, "err", err, "retry_in", d.Round(time.Millisecond))
		if !backoff.Wait(ctx, d) {
			return
		}
		if n, ok := c.newer(ev.DedupKey); ok {
			c.events.WithLabelValues(ev.EventAction, "superseded").Inc()
			ev = n
			b.Reset()
		}
	}
}

// attempt makes one request. It returns a wait the server asked for
// (Retry-After) and an error for anything but acceptance.
func (c *Client) attempt(ctx context.Context, ev *Event) (time.Duration, error) {
	ev.RoutingKey = c.routingKey()
	body, err := json.Marshal(ev)
	ev.RoutingKey = ""
	if err != nil {
		return 0, errPermanent{0}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return 0, errPermanent{0}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.ua)
	resp, err := c.http.Do(req)
	if err != nil {
		c.requests.WithLabelValues("network_error").Inc()
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var r Response
	_ = json.Unmarshal(raw, &r) // the status code decides; the body only explains
	code := resp.StatusCode
	c.requests.WithLabelValues(statusClass(code)).Inc()
	switch {
	case code/100 == 2:
		return 0, nil
	case code == http.StatusTooManyRequests || code >= 500 || code == http.StatusRequestTimeout:
		wait, _ := retryafter.Parse(resp.Header.Get("Retry-After"), time.Now())
		return min(wait, maxRetryAfter), fmt.Errorf("HTTP %d: %s", code, strings.TrimSpace(r.Message))
	default:
		// 400: the event is invalid and will stay so. Other 4xx (a wrong
		// URL, a proxy refusing) cannot be fixed by sending again either.
		c.log.Error("PagerDuty rejected the event; it is not retried", "status", code, "dedup_key", ev.DedupKey,
			"action", ev.EventAction, "message", r.Message, "errors", strings.Join(r.Errors, "; "))
		return 0, errPermanent{code}
	}
}

func statusClass(code int) string {
	switch code {
	case 202, 400, 429:
		return strconv.Itoa(code)
	}
	return strconv.Itoa(code/100) + "xx"
}

// maxRetryAfter caps the wait a server may ask for.
const maxRetryAfter = 10 * time.Minute
