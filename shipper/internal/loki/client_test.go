package loki

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestClassify: what each answer means for the batch — Loki's own 400
// messages (pkg/validation) by reason with the entries it says it
// ignored, waits from Retry-After in both of its forms, and a short error
// line from the body.
func TestClassify(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		status     int
		retryAfter string
		body       string
		outcome    Outcome
		reason     string
		ignored    int
		wait       time.Duration
	}{
		{204, "", "", Delivered, "", -1, 0},
		{400, "", "entry for stream '{a=\"b\"}' has timestamp too old: 2020-01-01T00:00:00Z\nuser 'fake', total ignored: 3 out of 10 for stream: {a=\"b\"}\nuser 'fake', total ignored: 2 out of 4 for stream: {c=\"d\"}", Rejected, "too_old", 5, 0},
		{400, "", "Max entry size '256' bytes exceeded for stream '{a=\"b\"}' while adding an entry with length '300' bytes", Rejected, "line_too_long", -1, 0},
		{400, "", "entry with timestamp 2024-05-01 12:00:00 ignored, reason: 'entry out of order'", Rejected, "out_of_order", -1, 0},
		{400, "", "error parsing labels {a=b}: parse error", Rejected, "invalid_labels", -1, 0},
		{400, "", "something new", Rejected, "other", -1, 0},
		{429, "7", "ingestion rate limit exceeded", Retry, "rate_limited", -1, 7 * time.Second},
		{429, now.Add(90 * time.Second).Format(http.TimeFormat), "slow down", Retry, "rate_limited", -1, 90 * time.Second},
		{503, now.Add(-time.Minute).Format(http.TimeFormat), "empty ring", Retry, "server_error", -1, 0},
		{503, "soon", "empty ring", Retry, "server_error", -1, 0},
		{401, "", "no org id", Retry, "http_401", -1, 0},
		{404, "", "404 page not found", Retry, "http_404", -1, 0},
	} {
		r := classify(tc.status, tc.retryAfter, []byte(tc.body), now)
		if r.Outcome != tc.outcome || r.Reason != tc.reason || r.Ignored != tc.ignored || r.RetryAfter != tc.wait || r.Status != tc.status {
			t.Errorf("%d %q %.40q: %+v", tc.status, tc.retryAfter, tc.body, r)
		}
		if tc.outcome != Delivered && (r.Err == nil || strings.Contains(r.Err.Error(), "\n") || !strings.Contains(r.Err.Error(), strings.SplitN(tc.body, "\n", 2)[0][:8])) {
			t.Errorf("%d: error %v", tc.status, r.Err)
		}
	}
	long := strings.Repeat("é", 400)
	if r := classify(500, "", []byte(long), now); len(r.Err.Error()) > 340 {
		t.Errorf("error line not cut: %d bytes", len(r.Err.Error()))
	}
}
