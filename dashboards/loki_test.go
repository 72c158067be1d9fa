package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flink-agent/flink-agent/testbed"
)

// TestLogsPanelOnRealLoki runs the logs panel's LogQL, with Grafana's
// variables filled in, against a real Loki holding entries shaped like the
// shipper's (its stream labels; level as structured metadata with the
// shipper's lower-case level names): Loki must accept the query, and return
// the selected pod's warn/error/fatal events only.
func TestLogsPanelOnRealLoki(t *testing.T) {
	testbed.NeedsTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	testbed.MustTool(t, "loki")
	loki, err := testbed.StartLoki(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(loki.Stop)

	expr := ""
	for _, p := range readGrafana(t).Panels {
		if p.Type == "logs" {
			expr = p.Targets[0].Expr
		}
	}
	if expr == "" {
		t.Fatal("no logs panel")
	}

	now := time.Now()
	type entry struct{ pod, component, level, line string }
	entries := []entry{
		{"orders-jm-0", "jobmanager", "info", "Triggering checkpoint 7"},
		{"orders-jm-0", "jobmanager", "warn", "Failed to trigger or complete checkpoint 7"},
		{"orders-jm-0", "jobmanager", "error", "Exceeded checkpoint tolerable failure threshold"},
		{"orders-tm-1", "taskmanager", "fatal", "Fatal error occurred in TaskExecutor"},
		{"orders-tm-1", "taskmanager", "debug", "sending heartbeat"},
		{"payments-jm-0", "jobmanager", "error", "another cluster"},
	}
	type stream struct {
		Stream map[string]string `json:"stream"`
		Values [][]any           `json:"values"`
	}
	var push struct {
		Streams []stream `json:"streams"`
	}
	for i, e := range entries {
		cluster := strings.Split(e.pod, "-")[0]
		push.Streams = append(push.Streams, stream{
			Stream: map[string]string{"cluster": cluster, "namespace": "flink", "pod": e.pod, "component": e.component,
				"container": "flink-main-container", "filename": "flink--kubernetes-" + e.component + ".log"},
			Values: [][]any{{strconv.FormatInt(now.Add(time.Duration(i-10)*time.Second).UnixNano(), 10), e.line, map[string]string{"level": e.level}}},
		})
	}
	body, _ := json.Marshal(push)
	resp, err := http.Post(loki.PushURL(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("push: %s", resp.Status)
	}

	// Grafana's interpolation of the panel's variables.
	fill := func(vars map[string]string) string {
		q := expr
		for k, v := range vars {
			q = strings.ReplaceAll(q, "$"+k, v)
		}
		return q
	}
	for _, tc := range []struct {
		vars map[string]string
		want []string
	}{
		{map[string]string{"cluster": "orders", "namespace": "flink", "pod": "orders-jm-0"},
			[]string{"Exceeded checkpoint tolerable failure threshold", "Failed to trigger or complete checkpoint 7"}},
		{map[string]string{"cluster": ".*", "namespace": ".*", "pod": ".*"}, // "All" everywhere
			[]string{"Exceeded checkpoint tolerable failure threshold", "Failed to trigger or complete checkpoint 7",
				"Fatal error occurred in TaskExecutor", "another cluster"}},
	} {
		q := fill(tc.vars)
		var got []string
		// Loki makes pushed entries queryable within moments; poll briefly.
		deadline := time.Now().Add(30 * time.Second)
		for {
			streams, err := loki.Query(ctx, q, now.Add(-time.Minute), now.Add(time.Minute), 100)
			if err != nil {
				t.Fatalf("Loki rejects the logs panel query %s: %v", q, err)
			}
			got = got[:0]
			for _, s := range streams {
				for _, e := range s.Entries {
					got = append(got, e.Line)
				}
			}
			sort.Strings(got)
			if len(got) >= len(tc.want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s\n got  %q\n want %q", q, got, tc.want)
		}
	}
}
