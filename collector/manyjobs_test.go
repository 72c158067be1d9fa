package collector

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/labelvalue"
)

// manyJobs is a JobManager with n running jobs answering every request
// after delay, from the recorded Flink 1.20 answers; it records which jobs'
// checkpoints were read, in order.
type manyJobs struct {
	srv   *httptest.Server
	ids   []string
	delay time.Duration

	mu   sync.Mutex
	read []string // job ids of /checkpoints requests, in order
}

const recordedJob = "62585e56162757d4cd89ea47bbb3eca8"

func newManyJobs(t *testing.T, n int, delay time.Duration) *manyJobs {
	return newNamedJobs(t, n, delay, func(i int) string { return fmt.Sprintf("job-%d", i) })
}

func newNamedJobs(t *testing.T, n int, delay time.Duration, name func(int) string) *manyJobs {
	m := &manyJobs{delay: delay}
	load := func(name string) []byte {
		b, err := os.ReadFile("testdata/flink-1.20.0/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	job, cps, cfg := load("jobs_id.json"), load("jobs_id_checkpoints.json"), load("jobs_id_checkpoints_config.json")
	jm, tm := load("jobmanager_metrics.json"), load("taskmanagers_metrics_agg.json")
	var overview bytes.Buffer
	overview.WriteString(`{"jobs":[`)
	for i := range n {
		id := fmt.Sprintf("%032x", 0xa11000+i)
		m.ids = append(m.ids, id)
		if i > 0 {
			overview.WriteByte(',')
		}
		fmt.Fprintf(&overview, `{"jid":%q,"name":%q,"state":"RUNNING","start-time":1795477766188}`, id, name(i))
	}
	overview.WriteString(`]}`)
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(m.delay)
		p := r.URL.Path
		var body []byte
		switch {
		case p == "/jobs/overview":
			body = overview.Bytes()
		case p == "/jobmanager/metrics":
			body = jm
		case p == "/taskmanagers/metrics":
			body = tm
		case strings.HasPrefix(p, "/jobs/"):
			parts := strings.Split(p, "/")
			id := parts[2]
			switch strings.Join(parts[3:], "/") {
			case "":
				body = job
			case "checkpoints":
				m.mu.Lock()
				m.read = append(m.read, id)
				m.mu.Unlock()
				body = cps
			case "checkpoints/config":
				body = cfg
			}
			body = bytes.ReplaceAll(body, []byte(recordedJob), []byte(id))
		}
		if body == nil {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(m.srv.Close)
	return m
}

// reads returns and forgets the checkpoint reads so far.
func (m *manyJobs) reads() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.read
	m.read = nil
	return r
}

// TestThousandJobsInOneInterval: 1,000 running jobs, every answer 5 ms
// late, are all read within one 15 s scrape interval (the defaults: 4 at a
// time, 10 s timeout), and flink_up is 1.
func TestThousandJobsInOneInterval(t *testing.T) {
	const n = 1000
	m := newManyJobs(t, n, 5*time.Millisecond)
	h := newHarness(t, &fixtureServer{srv: m.srv}, time.Now(), func(o *Options) {
		o.Flink.ScrapeTimeout = config.Default().Flink.ScrapeTimeout
	})
	start := time.Now()
	if err := h.scrape(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if took > 15*time.Second {
		t.Errorf("the scrape took %v, longer than the 15 s interval", took)
	}
	read := map[string]bool{}
	for _, id := range m.reads() {
		read[id] = true
	}
	if len(read) != n || len(h.c.behind) != 0 {
		t.Errorf("%d of %d jobs read, %d left for the next scrape", len(read), n, len(h.c.behind))
	}
	if up := testutil.ToFloat64(h.c.up); up != 1 {
		t.Errorf("flink_up = %v", up)
	}
	t.Logf("%d jobs, 5 ms per answer: one scrape in %v", n, took.Round(time.Millisecond))
}

// TestJobsLeftBehindGoFirst: when the budget ends a scrape before every
// job was read, the next scrape reads the jobs left over first, and after
// a few scrapes every job has been read — not the same first few every
// time.
func TestJobsLeftBehindGoFirst(t *testing.T) {
	const n = 300
	m := newManyJobs(t, n, 5*time.Millisecond)
	h := newHarness(t, &fixtureServer{srv: m.srv}, time.Now(), func(o *Options) {
		o.Flink.ScrapeTimeout = config.Duration(500 * time.Millisecond) // a 400 ms budget
		o.Flink.ScrapeInterval = config.Duration(time.Second)
	})
	ever := map[string]bool{}
	prevBehind := map[string]bool{}
	for i := 0; len(ever) < n; i++ {
		if i == 20 {
			t.Fatalf("after 20 scrapes %d of %d jobs were read", len(ever), n)
		}
		if err := h.scrape(); err != nil {
			t.Fatal(err)
		}
		got := m.reads()
		if len(got) == n {
			t.Fatal("every job was read in one 400 ms budget: the test proves nothing")
		}
		// The first reads of this scrape are of jobs the last one did not
		// reach (reads run 4 at a time, so the first 4 are in any order).
		for _, id := range got[:min(len(got), len(prevBehind), 4)] {
			if !prevBehind[id] {
				t.Errorf("scrape %d read %s first, which the last scrape had read", i, id)
			}
		}
		for _, id := range got {
			ever[id] = true
		}
		prevBehind = map[string]bool{}
		for _, id := range h.c.behind {
			prevBehind[id] = true
		}
		if up := testutil.ToFloat64(h.c.up); up != 1 {
			t.Errorf("scrape %d: flink_up = %v; jobs left for later are no failure", i, up)
		}
	}
}

// TestImpossibleValuesDropped: one answer with counts.failed =
// -9223372036854775808, one whose completed count jumps further than time
// allows, and one with a negative duration and id: the counters neither
// jump nor go backward, and each value is counted by field.
func TestImpossibleValuesDropped(t *testing.T) {
	m := newManyJobs(t, 1, 0)
	good, err := os.ReadFile("testdata/flink-1.20.0/jobs_id_checkpoints.json")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	body := good
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/checkpoints") {
			mu.Lock()
			b := body
			mu.Unlock()
			_, _ = w.Write(bytes.ReplaceAll(b, []byte(recordedJob), []byte(m.ids[0])))
			return
		}
		m.srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer srv.Close()
	h := newHarness(t, &fixtureServer{srv: srv}, time.Now(), nil)
	set := func(from, to string) {
		mu.Lock()
		body = bytes.Replace(good, []byte(from), []byte(to), 1)
		mu.Unlock()
	}
	total := func() float64 {
		n, _ := h.reg.Gather()
		var sum float64
		for _, mf := range n {
			if mf.GetName() == "flink_checkpoints_total" || mf.GetName() == "flink_checkpoint_failures_total" {
				for _, m := range mf.GetMetric() {
					sum += m.GetCounter().GetValue()
				}
			}
		}
		return sum
	}
	must(t, h.scrape()) // the baseline
	before := total()
	for _, c := range []struct{ from, to string }{
		{`"failed": 7`, `"failed": -9223372036854775808`},
		{`"completed": 15`, `"completed": 9000000000000`},
		{`"id": 22`, `"id": -22`},
		{`"end_to_end_duration": 40,`, `"end_to_end_duration": -40,`},
	} {
		set(c.from, c.to)
		must(t, h.scrape())
		set("", "")
		must(t, h.scrape())
	}
	if after := total(); after != before {
		t.Errorf("checkpoint counters %v → %v on answers that cannot be true", before, after)
	}
	for _, f := range []string{"counts.failed", "counts.completed", "history.id", "history.end_to_end_duration"} {
		if n := testutil.ToFloat64(h.c.c.invalid.WithLabelValues(f)); n < 1 {
			t.Errorf("flink_rest_invalid_values_total{field=%q} = %v", f, n)
		}
	}
}

// TestLongJobNamesCapped: jobs named with a megabyte each make a small
// /metrics: every job_name label value is capped, with a hash suffix that
// keeps them apart.
func TestLongJobNamesCapped(t *testing.T) {
	m := newNamedJobs(t, 3, 0, func(i int) string { return strings.Repeat("n", 1<<20) + fmt.Sprint(i) })
	h := newHarness(t, &fixtureServer{srv: m.srv}, time.Now(), nil)
	must(t, h.scrape())
	must(t, h.scrape())
	mfs, err := h.reg.Gather()
	must(t, err)
	names := map[string]bool{}
	series := 0
	for _, mf := range mfs {
		for _, mm := range mf.GetMetric() {
			series++
			for _, l := range mm.GetLabel() {
				if len(l.GetValue()) > labelvalue.Max {
					t.Fatalf("%s{%s} is %d bytes long", mf.GetName(), l.GetName(), len(l.GetValue()))
				}
				if l.GetName() == "job_name" {
					names[l.GetValue()] = true
				}
			}
		}
	}
	if len(names) != 3 {
		t.Errorf("%d distinct job_name values, want 3: %v", len(names), names)
	}
	t.Logf("%d series", series)
}
