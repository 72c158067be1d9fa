package testbed

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// GatherValue returns the value of the first series of family name whose
// labels include the given name/value pairs: a counter's or gauge's value,
// a histogram's sample count; -1 when no such series exists.
func GatherValue(g prometheus.Gatherer, name string, labels ...string) (float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := LabelsOf(m)
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue next
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), nil
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), nil
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), nil
			}
		}
	}
	return -1, nil
}

// ScrapeGatherer reads a running process's /metrics at url, as Prometheus
// would, as a Gatherer for GatherValue; each Gather is one scrape, bounded
// by timeout.
func ScrapeGatherer(url string, timeout time.Duration) prometheus.Gatherer {
	client := &http.Client{Timeout: timeout}
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		resp, err := client.Get(url)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s", url, resp.Status)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			return nil, err
		}
		out := make([]*dto.MetricFamily, 0, len(mfs))
		for _, mf := range mfs {
			out = append(out, mf)
		}
		sort.Slice(out, func(a, b int) bool { return out[a].GetName() < out[b].GetName() })
		return out, nil
	})
}

// SyncBuffer is a log destination safe for concurrent writers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Eventually polls f every 250 ms until it reports done, then logs how long
// it took; when ctx ends first the test fails with f's last state.
func Eventually(ctx context.Context, t interface {
	Helper()
	Logf(string, ...any)
	Fatalf(string, ...any)
}, what string, f func() (done bool, state string)) {
	t.Helper()
	start := time.Now()
	for {
		ok, state := f()
		if ok {
			t.Logf("%s after %s (%s)", what, time.Since(start).Round(100*time.Millisecond), state)
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s; last state: %s", what, state)
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}
