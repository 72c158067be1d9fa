// Package pager pages the on-call directly through the PagerDuty Events API
// v2 (POST https://events.pagerduty.com/v2/enqueue) when the agent's own
// view shows a condition that needs a human: consecutive checkpoint
// failures, a stuck checkpoint, sustained S3 throttling.
//
// The primary path is alert rules → Alertmanager/Datadog → PagerDuty; this
// one works when that path is down or not set up. Every condition has a
// stable dedup_key (cluster, job or pod, condition): a trigger opens one
// alert however often it is repeated, and a resolve with the same key closes
// it when the condition clears. Delivery follows the API's contract: 202 is
// done, 400 is never retried, 429, 5xx and network errors are retried with
// backoff and jitter, and no more than 120 events a minute leave per routing
// key.
package pager

import (
	"crypto/sha256"
	"encoding/hex"
	"github.com/flink-agent/flink-agent/internal/excerpt"
	"strings"
	"unicode/utf8"
)

// Event actions and severities of the Events API v2.
const (
	ActionTrigger = "trigger"
	ActionResolve = "resolve"

	SeverityCritical = "critical"
	SeverityError    = "error"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// API limits.
const (
	MaxSummary  = 1024 // characters of payload.summary
	MaxDedupKey = 255  // characters of dedup_key
	MaxBody     = 512 << 10
)

// Event is one Events API v2 request body.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key,omitempty"`
	Payload     *Payload `json:"payload,omitempty"`
	Client      string   `json:"client,omitempty"`
	Links       []Link   `json:"links,omitempty"`
}

// Link is a link shown on the alert and its incident (a trigger's runbook).
type Link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// Payload describes a trigger. Summary, Source and Severity are required.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// Response is the API's answer body.
type Response struct {
	Status   string   `json:"status"`
	Message  string   `json:"message"`
	DedupKey string   `json:"dedup_key,omitempty"`
	Errors   []string `json:"errors,omitempty"`
}

// DedupKey builds a stable key from its parts, "flink-agent/" + parts
// joined by "/". Parts are cleaned of "/" so that the key splits back
// unambiguously; a key over the API's 255 characters keeps its start and
// ends with a hash of the whole, so it stays unique and stable.
func DedupKey(parts ...string) string {
	clean := make([]string, 0, len(parts)+1)
	clean = append(clean, "flink-agent")
	for _, p := range parts {
		if p == "" {
			p = "_"
		}
		clean = append(clean, strings.ReplaceAll(p, "/", "_"))
	}
	k := strings.Join(clean, "/")
	if utf8.RuneCountInString(k) <= MaxDedupKey {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	h := hex.EncodeToString(sum[:8])
	return excerpt.Cut(k, MaxDedupKey-len(h)-1) + "#" + h
}
