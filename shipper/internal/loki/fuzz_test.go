package loki

import (
	"testing"
	"time"
)

// FuzzClassify: any answer of Loki's — status, Retry-After, body — is an
// outcome with a known reason, a non-negative wait and a count of ignored
// entries that is -1 (unknown) or more.
func FuzzClassify(f *testing.F) {
	f.Add(400, "", []byte("entry for stream '{filename=\"a.log\"}' has timestamp too old: 2020-01-01T00:00:00Z\nuser 'fake', total ignored: 20 out of 30 for stream: {filename=\"a.log\"}"))
	f.Add(429, "3", []byte("ingestion rate limit exceeded"))
	f.Add(503, "Wed, 21 Oct 2026 07:28:00 GMT", []byte{})
	f.Add(400, "", []byte("total ignored: 9223372036854775807 out of 1 total ignored: 9223372036854775807 out of 1"))
	f.Add(204, "", []byte(nil))
	known := map[string]bool{"": true, "rate_limited": true, "server_error": true, "other": true}
	for _, r := range reasons {
		known[r.reason] = true
	}
	now := time.Date(2026, 10, 21, 7, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		r := classify(status, retryAfter, body, now)
		if !known[r.Reason] && (len(r.Reason) < 6 || r.Reason[:5] != "http_") {
			t.Fatalf("reason %q", r.Reason)
		}
		if r.RetryAfter < 0 || r.Ignored < -1 {
			t.Fatalf("status %d: retry after %v, ignored %d", status, r.RetryAfter, r.Ignored)
		}
	})
}
