package pdtest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestValidation: the server holds requests to the documented contract, so
// a client passing against it passes against PagerDuty's checks.
func TestValidation(t *testing.T) {
	s := Start()
	defer s.Close()
	key := strings.Repeat("k", 32)
	for _, tc := range []struct {
		name, body string
		code       int
		err        string
	}{
		{"valid trigger", `{"routing_key":"` + key + `","event_action":"trigger","dedup_key":"d","payload":{"summary":"s","source":"h","severity":"error","custom_details":{"a":1}}}`, 202, ""},
		{"valid trigger with links", `{"routing_key":"` + key + `","event_action":"trigger","dedup_key":"d","payload":{"summary":"s","source":"h","severity":"error"},"links":[{"href":"https://example.com/runbook.md","text":"Runbook"},{"href":"https://example.com/"}]}`, 202, ""},
		{"link without href", `{"routing_key":"` + key + `","event_action":"trigger","payload":{"summary":"s","source":"h","severity":"error"},"links":[{"text":"Runbook"}]}`, 400, "links[0].href"},
		{"links not a list", `{"routing_key":"` + key + `","event_action":"trigger","payload":{"summary":"s","source":"h","severity":"error"},"links":{"href":"https://example.com/"}}`, 400, "Invalid event"},
		{"valid resolve", `{"routing_key":"` + key + `","event_action":"resolve","dedup_key":"d"}`, 202, ""},
		{"short key", `{"routing_key":"abc","event_action":"resolve","dedup_key":"d"}`, 400, "routing_key"},
		{"bad action", `{"routing_key":"` + key + `","event_action":"open","dedup_key":"d"}`, 400, "event_action"},
		{"resolve without key", `{"routing_key":"` + key + `","event_action":"resolve"}`, 400, "dedup_key"},
		{"no payload", `{"routing_key":"` + key + `","event_action":"trigger"}`, 400, "payload"},
		{"no summary", `{"routing_key":"` + key + `","event_action":"trigger","payload":{"source":"h","severity":"error"}}`, 400, "summary"},
		{"long summary", `{"routing_key":"` + key + `","event_action":"trigger","payload":{"summary":"` + strings.Repeat("x", 1025) + `","source":"h","severity":"error"}}`, 400, "summary"},
		{"bad severity", `{"routing_key":"` + key + `","event_action":"trigger","payload":{"summary":"s","source":"h","severity":"fatal"}}`, 400, "severity"},
		{"long dedup key", `{"routing_key":"` + key + `","event_action":"resolve","dedup_key":"` + strings.Repeat("d", 256) + `"}`, 400, "dedup_key"},
		{"not JSON", `{`, 400, "JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(s.URL, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var r struct {
				Status string   `json:"status"`
				Errors []string `json:"errors"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&r)
			if resp.StatusCode != tc.code {
				t.Fatalf("HTTP %d %+v, want %d", resp.StatusCode, r, tc.code)
			}
			if tc.err != "" && !strings.Contains(strings.Join(r.Errors, " "), tc.err) {
				t.Errorf("errors %v do not mention %q", r.Errors, tc.err)
			}
		})
	}
	if n := len(s.Accepted()); n != 3 {
		t.Errorf("accepted %d", n)
	}
}

func TestScriptedReplies(t *testing.T) {
	s := Start()
	defer s.Close()
	s.Script(429, 503, NetworkError)
	body := `{"routing_key":"` + strings.Repeat("k", 32) + `","event_action":"resolve","dedup_key":"d"}`
	for _, want := range []int{429, 503, -1, 202} {
		resp, err := http.Post(s.URL, "application/json", strings.NewReader(body))
		if want == NetworkError {
			if err == nil {
				resp.Body.Close()
				t.Fatal("dropped connection answered")
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("HTTP %d, want %d", resp.StatusCode, want)
		}
	}
}
