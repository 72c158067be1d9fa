package testbed

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLoki pushes through the JSON API, restarts Loki on the same data
// directory, and reads the entry back with Query, QueryAll and Count.
func TestLoki(t *testing.T) {
	NeedsTools(t)
	MustTool(t, "loki")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := StartLoki(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	now := time.Now()
	for i := 0; i < 3; i++ {
		body := fmt.Sprintf(`{"streams":[{"stream":{"job":"tb"},"values":[["%d","line %d",{"level":"INFO"}]]}]}`, now.Add(time.Duration(i)*time.Millisecond).UnixNano(), i)
		resp, err := http.Post(l.PushURL(), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("push: %s", resp.Status)
		}
	}
	if err := l.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	start, end := now.Add(-time.Minute), time.Now().Add(time.Minute)
	all, err := l.QueryAll(ctx, `{job="tb"}`, start, end)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].Line != "line 0" || all[2].Line != "line 2" || all[0].Metadata["level"] != "INFO" {
		t.Fatalf("QueryAll after restart = %+v", all)
	}
	n, err := l.Count(ctx, `{job="tb"}`, start, end)
	if err != nil || n != 3 {
		t.Fatalf("Count = %d, %v", n, err)
	}
}
