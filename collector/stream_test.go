package collector

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// decoders are the REST answers the collector reads, by the fixture files
// that hold them (recorded from Flink 1.20 and 2.2, and the edge cases).
var decoders = []struct {
	files string // glob under testdata/*/
	new   func() any
}{
	{"jobs_overview*.json", func() any { return new(jobsOverviewBody) }},
	{"jobs_id.json", func() any { return new(jobDetailsBody) }},
	{"job_*.json", func() any { return new(jobDetailsBody) }},
	{"*checkpoints.json", func() any { return new(checkpointsBody) }},
	{"checkpoints_*.json", func() any { return new(checkpointsBody) }},
	{"*checkpoints_before_first.json", func() any { return new(checkpointsBody) }},
	{"*checkpoints_config.json", func() any { return new(checkpointConfigBody) }},
	{"config_*.json", func() any { return new(checkpointConfigBody) }},
	{"*details*.json", func() any { return new(checkpointDetailsBody) }},
	{"*exceptions*.json", func() any { return new(exceptionsBody) }},
	{"jobmanager_metrics.json", func() any { return new([]metricValue) }},
	{"taskmanagers_metrics_agg.json", func() any { return new([]metricValue) }},
	{"taskmanagers_metrics_list.json", func() any { return new([]struct{ ID string }) }},
	{"jobmanager_config.json", func() any {
		return new([]struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		})
	}},
	{"overview.json", func() any {
		return new(struct {
			Version string `json:"flink-version"`
		})
	}},
}

// TestStreamMatchesUnmarshal: every recorded answer decodes while read
// exactly as encoding/json decodes it whole.
func TestStreamMatchesUnmarshal(t *testing.T) {
	n := 0
	for _, d := range decoders {
		files, _ := filepath.Glob(filepath.Join("testdata", "*", d.files))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			checkSame(t, f, d.new, b)
			n++
		}
	}
	if n < 40 {
		t.Fatalf("only %d recorded answers", n)
	}
}

// checkSame decodes b both ways: when either succeeds, both must, alike.
func checkSame(t *testing.T, what string, newV func() any, b []byte) {
	t.Helper()
	want, got := newV(), newV()
	werr := json.Unmarshal(b, want)
	dropped, gerr := decodeStream(bytes.NewReader(b), got, 1<<40)
	if dropped != 0 {
		t.Fatalf("%s: %d elements dropped without a budget", what, dropped)
	}
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%s: encoding/json says %v, the stream %v", what, werr, gerr)
	}
	if werr == nil && !reflect.DeepEqual(want, got) {
		t.Fatalf("%s: encoding/json and the stream differ:\n%+v\n%+v", what, want, got)
	}
}

// fuzzDecoder fuzzes one REST decoder, seeded with its recorded answers:
// the stream never panics and agrees with encoding/json.
func fuzzDecoder(f *testing.F, glob string, newV func() any) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*", glob))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"jobs":[{},{"jid":"x","NAME":"ſtate","state":"RUNNING"}],"jobs":null}`))
	f.Fuzz(func(t *testing.T, b []byte) { checkSame(t, "fuzz input", newV, b) })
}

func FuzzRESTJobsOverview(f *testing.F) {
	fuzzDecoder(f, "jobs_overview*.json", func() any { return new(jobsOverviewBody) })
}

func FuzzRESTJobDetails(f *testing.F) {
	fuzzDecoder(f, "job*_*.json", func() any { return new(jobDetailsBody) })
}

func FuzzRESTCheckpoints(f *testing.F) {
	fuzzDecoder(f, "*checkpoints*.json", func() any { return new(checkpointsBody) })
}

func FuzzRESTCheckpointConfig(f *testing.F) {
	fuzzDecoder(f, "*config*.json", func() any { return new(checkpointConfigBody) })
}

func FuzzRESTCheckpointDetails(f *testing.F) {
	fuzzDecoder(f, "*details*.json", func() any { return new(checkpointDetailsBody) })
}

func FuzzRESTExceptions(f *testing.F) {
	fuzzDecoder(f, "*exceptions*.json", func() any { return new(exceptionsBody) })
}

func FuzzRESTMetrics(f *testing.F) {
	fuzzDecoder(f, "*metrics*.json", func() any { return new([]metricValue) })
}

// TestKeptElementsBounded: an answer within the byte bound made of empty
// objects — 3 bytes of JSON each, a whole struct each once decoded — keeps
// what half the bound holds, reads past the rest, counts it, and allocates
// about the bound, not the ~40x that decoding it whole would.
func TestKeptElementsBounded(t *testing.T) {
	const limit = 1 << 20
	body := []byte(`{"jobs":[` + strings.Repeat(`{},`, limit/3-10) + `{}]}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jobs/overview" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	h := newHarness(t, &fixtureServer{srv: srv}, time.Now(), func(o *Options) { o.Flink.MaxResponseBytes = limit })
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_ = h.scrape()
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*limit {
		t.Errorf("%d bytes of empty jobs made the scrape allocate %d bytes", len(body), alloc)
	}
	dropped := testutil.ToFloat64(h.c.c.invalid.WithLabelValues("array_elements"))
	kept := int(limit/2) / int(reflect.TypeFor[jobOverview]().Size())
	if want := float64(limit/3 - 9 - kept); dropped != want {
		t.Errorf("flink_rest_invalid_values_total{field=\"array_elements\"} = %v, want %v", dropped, want)
	}
}

// TestWhitespaceCostsNothing: a body of megabytes of white space before
// (and inside) the JSON decodes in linear time and without holding the
// spaces (encoding/json's Decoder alone rescans and keeps them).
func TestWhitespaceCostsNothing(t *testing.T) {
	pad := strings.Repeat(" \n\t", 2<<20) // 6 MiB
	body := pad + `{"jobs":` + pad + `[{"jid":"a","name":" spaces kept  ","state":"RUNNING"}]` + pad + `}` + pad
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	var b jobsOverviewBody
	_, err := decodeStream(strings.NewReader(body), &b, 1<<20)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil || b.Jobs == nil || len(*b.Jobs) != 1 || (*b.Jobs)[0].Name != " spaces kept  " {
		t.Fatalf("decoded %+v, %v", b, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("24 MiB of white space allocated %d bytes", alloc)
	}
	if took > 5*time.Second {
		t.Errorf("24 MiB of white space took %v", took)
	}
}
