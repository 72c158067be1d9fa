// Package pdtest is an in-process PagerDuty Events API v2 endpoint for
// tests: it validates requests as the API documents them
// (developer.pagerduty.com, "Send an Alert Event", "Events API v2
// Overview", "Events API Rate Limits") and answers 202 or 400, or a
// scripted 429/5xx/dropped connection for fault injection.
package pdtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// NetworkError, as a scripted reply, drops the connection without an answer.
const NetworkError = -1

// Received is one request the server accepted (202).
type Received struct {
	At          time.Time
	RoutingKey  string         `json:"routing_key"`
	EventAction string         `json:"event_action"`
	DedupKey    string         `json:"dedup_key"`
	Payload     map[string]any `json:"payload"`
	Client      string         `json:"client"`
	ClientURL   string         `json:"client_url"`
	Links       []Link         `json:"links"`
}

// Link is an entry of an event's links (a runbook, a dashboard).
type Link struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// Server is the endpoint. URL is the full enqueue URL.
type Server struct {
	URL string
	srv *httptest.Server

	mu       sync.Mutex
	script   []int
	accepted []Received
	invalid  [][]string // errors of each 400
	requests []time.Time
	perKey   map[string][]time.Time
	over     int // requests beyond 120 per minute per key
}

// Start starts the server on loopback.
func Start() *Server {
	s := &Server{perKey: map[string][]time.Time{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	s.URL = s.srv.URL + "/v2/enqueue"
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Script queues replies for the next requests, in order: an HTTP status
// (429, 500, 502, 503, …) or NetworkError. Requests beyond the script are
// validated and answered 202 or 400.
func (s *Server) Script(replies ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, replies...)
}

// Accepted returns the accepted events in arrival order.
func (s *Server) Accepted() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.accepted...)
}

// Invalid returns the error lists of the requests answered 400.
func (s *Server) Invalid() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.invalid...)
}

// Requests is the number of requests received, scripted ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// RequestTimes returns when each request arrived.
func (s *Server) RequestTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.requests...)
}

// OverLimit is the number of requests that exceeded 120 per minute for
// their routing key (answered 429, as the API does).
func (s *Server) OverLimit() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.over
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	s.mu.Lock()
	s.requests = append(s.requests, now)
	reply := 0
	if len(s.script) > 0 {
		reply, s.script = s.script[0], s.script[1:]
	}
	s.mu.Unlock()

	if r.URL.Path != "/v2/enqueue" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 512<<10+1))
	if err != nil {
		return
	}
	switch {
	case reply == NetworkError:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case reply == http.StatusTooManyRequests:
		writeJSON(w, reply, map[string]any{"status": "throttle event", "message": "Request Limit Exceeded"})
		return
	case reply != 0:
		w.WriteHeader(reply)
		_, _ = io.WriteString(w, "<html><body>Internal Server Error</body></html>")
		return
	}

	errs, ev := validate(body, r.Header.Get("Content-Type"))
	if len(errs) > 0 {
		s.mu.Lock()
		s.invalid = append(s.invalid, errs)
		s.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": errs})
		return
	}
	s.mu.Lock()
	// ~120 calls per minute per routing key, over a trailing 60 s window.
	win := s.perKey[ev.RoutingKey]
	for len(win) > 0 && now.Sub(win[0]) >= time.Minute {
		win = win[1:]
	}
	if len(win) >= 120 {
		s.over++
		s.perKey[ev.RoutingKey] = win
		s.mu.Unlock()
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"status": "throttle event", "message": "Request Limit Exceeded"})
		return
	}
	s.perKey[ev.RoutingKey] = append(win, now)
	ev.At = now
	if ev.DedupKey == "" {
		ev.DedupKey = fmt.Sprintf("generated-%d", len(s.accepted)+1)
	}
	s.accepted = append(s.accepted, ev)
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
}

var severities = map[string]bool{"critical": true, "error": true, "warning": true, "info": true}

// validate applies the documented rules to a request body.
func validate(body []byte, contentType string) ([]string, Received) {
	var ev Received
	var errs []string
	if len(body) > 512<<10 {
		return []string{"Payload too large (limit 512 KB)"}, ev
	}
	if !strings.HasPrefix(contentType, "application/json") {
		errs = append(errs, "Content-Type must be application/json")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return append(errs, "Invalid JSON: "+err.Error()), ev
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return append(errs, "Invalid event: "+err.Error()), ev
	}
	if ev.RoutingKey == "" {
		errs = append(errs, "'routing_key' is missing or blank")
	} else if len(ev.RoutingKey) != 32 {
		errs = append(errs, "Length of 'routing_key' is incorrect (should be 32 characters)")
	}
	switch ev.EventAction {
	case "trigger", "acknowledge", "resolve":
	default:
		errs = append(errs, "'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')")
	}
	if utf8.RuneCountInString(ev.DedupKey) > 255 {
		errs = append(errs, "'dedup_key' is too long (maximum is 255 characters)")
	}
	for i, l := range ev.Links {
		if l.Href == "" {
			errs = append(errs, fmt.Sprintf("'links[%d].href' is missing or blank", i))
		}
	}
	if ev.EventAction != "trigger" {
		if ev.EventAction != "" && ev.DedupKey == "" {
			errs = append(errs, "'dedup_key' is missing and is required for '"+ev.EventAction+"' events")
		}
		return errs, ev
	}
	p := ev.Payload
	if p == nil {
		return append(errs, "'payload' is missing or blank"), ev
	}
	str := func(k string) (string, bool) {
		v, ok := p[k]
		if !ok {
			return "", false
		}
		s, isStr := v.(string)
		if !isStr {
			errs = append(errs, "'payload."+k+"' must be a string")
		}
		return s, true
	}
	if s, ok := str("summary"); !ok || s == "" {
		errs = append(errs, "'payload.summary' is missing or blank")
	} else if utf8.RuneCountInString(s) > 1024 {
		errs = append(errs, "'payload.summary' is too long (maximum is 1024 characters)")
	}
	if s, ok := str("source"); !ok || s == "" {
		errs = append(errs, "'payload.source' is missing or blank")
	}
	if s, ok := str("severity"); !ok || !severities[s] {
		errs = append(errs, "'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')")
	}
	for _, k := range []string{"component", "group", "class", "timestamp"} {
		str(k)
	}
	if ts, ok := p["timestamp"].(string); ok && ts != "" {
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			errs = append(errs, "'payload.timestamp' is not a valid ISO 8601 timestamp")
		}
	}
	if cd, ok := p["custom_details"]; ok {
		if _, isObj := cd.(map[string]any); !isObj {
			errs = append(errs, "'payload.custom_details' must be an object")
		}
	}
	return errs, ev
}
