package testbed

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
)

// Loki is a real single-binary Grafana Loki (built by `scripts/tools.sh
// loki`) with filesystem storage under Dir, listening on loopback only.
type Loki struct {
	Proc     *Proc
	Dir      string
	httpPort int
	grpcPort int
	bin      string
	config   string
	client   *http.Client
}

// lokiConfig is the smallest single-binary configuration that behaves like a
// production Loki for pushes: schema v13 on TSDB, structured metadata
// allowed, a WAL so that a restart (the outage tests) keeps what was
// acknowledged, and no readiness delay. Ingestion limits are raised so the
// loss test's bursts measure the agent, not Loki's rate limiter.
const lokiConfig = `auth_enabled: false
analytics:
  reporting_enabled: false
server:
  http_listen_address: 127.0.0.1
  http_listen_port: %[2]d
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: %[3]d
  log_level: warn
  grpc_server_max_recv_msg_size: 104857600
  grpc_server_max_send_msg_size: 104857600
common:
  instance_addr: 127.0.0.1
  path_prefix: %[1]s
  replication_factor: 1
  storage:
    filesystem:
      chunks_directory: %[1]s/chunks
      rules_directory: %[1]s/rules
  ring:
    kvstore:
      store: inmemory
ingester:
  lifecycler:
    min_ready_duration: 0s
    final_sleep: 0s
  wal:
    enabled: true
    dir: %[1]s/wal
schema_config:
  configs:
    - from: 2020-10-24
      store: tsdb
      object_store: filesystem
      schema: v13
      index:
        prefix: index_
        period: 24h
limits_config:
  allow_structured_metadata: true
  ingestion_rate_mb: 1024
  ingestion_burst_size_mb: 2048
  per_stream_rate_limit: 1GB
  per_stream_rate_limit_burst: 2GB
  max_entries_limit_per_query: 100000
  max_query_series: 100000
  max_global_streams_per_user: 0
query_range:
  cache_results: false
compactor:
  working_directory: %[1]s/compactor
`

// StartLoki starts Loki with its data under dir and waits for /ready.
func StartLoki(ctx context.Context, dir string) (*Loki, error) {
	bin, err := Tool("loki")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l := &Loki{Dir: dir, bin: bin, client: &http.Client{Timeout: time.Minute}}
	if l.httpPort, err = FreePort(); err != nil {
		return nil, err
	}
	if l.grpcPort, err = FreePort(); err != nil {
		return nil, err
	}
	l.config = filepath.Join(dir, "loki.yaml")
	if err := os.WriteFile(l.config, []byte(fmt.Sprintf(lokiConfig, dir, l.httpPort, l.grpcPort)), 0o644); err != nil {
		return nil, err
	}
	if err := l.start(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Loki) start(ctx context.Context) error {
	var err error
	l.Proc, err = StartProc("loki", l.Dir, nil, l.bin,
		"-config.file="+l.config,
		// Counts exact duplicates that Loki's ingester drops silently
		// (same stream, timestamp and line), so tests can see them.
		"-operation-config.log-duplicate-metrics=true",
	)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := WaitFor(wctx, l.Proc, 200*time.Millisecond, l.ready); err != nil {
		l.Proc.Kill()
		return err
	}
	return nil
}

func (l *Loki) ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.URL()+"/ready", nil)
	if err != nil {
		return err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/ready: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// URL is Loki's base URL; the push endpoint is URL()+"/loki/api/v1/push".
func (l *Loki) URL() string { return "http://" + Addr(l.httpPort) }

// PushURL is the push endpoint.
func (l *Loki) PushURL() string { return l.URL() + "/loki/api/v1/push" }

// Stop stops Loki gracefully (SIGTERM; the WAL keeps acknowledged data).
func (l *Loki) Stop() { _ = l.Proc.Stop(30 * time.Second) }

// Restart starts Loki again on the same ports and data directory.
func (l *Loki) Restart(ctx context.Context) error {
	if !l.Proc.Exited() {
		l.Stop()
	}
	return l.start(ctx)
}

// LokiEntry is one log line returned by a query.
type LokiEntry struct {
	Time     time.Time
	Line     string
	Metadata map[string]string // structured metadata (and parsed labels)
}

// LokiStream is one stream of a query result.
type LokiStream struct {
	Labels  map[string]string
	Entries []LokiEntry
}

type lokiResponse struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

func (l *Loki) get(ctx context.Context, path string, q url.Values) (*lokiResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.URL()+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return nil, fmt.Errorf("loki %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	var r lokiResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("loki %s: %w", path, err)
	}
	return &r, nil
}

// Query runs a log query over [start, end] oldest first and returns at
// most limit entries.
func (l *Loki) Query(ctx context.Context, logql string, start, end time.Time, limit int) ([]LokiStream, error) {
	q := url.Values{}
	q.Set("query", logql)
	q.Set("start", strconv.FormatInt(start.UnixNano(), 10))
	q.Set("end", strconv.FormatInt(end.UnixNano(), 10))
	q.Set("limit", strconv.Itoa(limit))
	q.Set("direction", "forward")
	r, err := l.get(ctx, "/loki/api/v1/query_range", q)
	if err != nil {
		return nil, err
	}
	if r.Data.ResultType != "streams" {
		return nil, fmt.Errorf("loki: %q is not a log query (result type %s)", logql, r.Data.ResultType)
	}
	var raw []struct {
		Stream map[string]string   `json:"stream"`
		Values [][]json.RawMessage `json:"values"`
	}
	if err := json.Unmarshal(r.Data.Result, &raw); err != nil {
		return nil, err
	}
	out := make([]LokiStream, 0, len(raw))
	for _, s := range raw {
		ls := LokiStream{Labels: s.Stream}
		for _, v := range s.Values {
			if len(v) < 2 {
				return nil, fmt.Errorf("loki: malformed value %s", v)
			}
			var tsText, line string
			if err := json.Unmarshal(v[0], &tsText); err != nil {
				return nil, err
			}
			if err := json.Unmarshal(v[1], &line); err != nil {
				return nil, err
			}
			ns, err := strconv.ParseInt(tsText, 10, 64)
			if err != nil {
				return nil, err
			}
			e := LokiEntry{Time: time.Unix(0, ns), Line: line}
			if len(v) > 2 {
				if err := json.Unmarshal(v[2], &e.Metadata); err != nil {
					// Loki 3 may nest categorized labels.
					var nested struct {
						StructuredMetadata map[string]string `json:"structuredMetadata"`
					}
					if json.Unmarshal(v[2], &nested) == nil {
						e.Metadata = nested.StructuredMetadata
					}
				}
			}
			ls.Entries = append(ls.Entries, e)
		}
		out = append(out, ls)
	}
	return out, nil
}

// QueryAll returns every entry of a log query over [start, end], paging
// forward through time, flattened oldest first within each page. Entries
// sharing a timestamp across a page boundary are neither lost nor repeated.
func (l *Loki) QueryAll(ctx context.Context, logql string, start, end time.Time) ([]LokiEntry, error) {
	const page = 5000
	var all []LokiEntry
	from := start
	skip := map[string]int{} // entries at exactly `from` already collected
	for {
		streams, err := l.Query(ctx, logql, from, end, page)
		if err != nil {
			return nil, err
		}
		var got []LokiEntry
		for _, s := range streams {
			for _, e := range s.Entries {
				if e.Metadata == nil {
					e.Metadata = map[string]string{}
				}
				for k, v := range s.Labels {
					if _, ok := e.Metadata[k]; !ok {
						e.Metadata[k] = v
					}
				}
				got = append(got, e)
			}
		}
		if len(got) == 0 {
			return all, nil
		}
		var last time.Time
		for _, e := range got {
			if e.Time.After(last) {
				last = e.Time
			}
		}
		next := map[string]int{}
		for _, e := range got {
			key := e.Time.String() + "\x00" + e.Line
			if e.Time.Equal(from) && skip[key] > 0 {
				skip[key]--
				continue
			}
			all = append(all, e)
			if e.Time.Equal(last) {
				next[key]++
			}
		}
		if len(got) < page {
			return all, nil
		}
		if last.Equal(from) {
			return nil, errors.New("loki: more than one page of entries share one timestamp")
		}
		// Loki's start is inclusive: carry the count of entries at `last`
		// already taken so the next page skips exactly those.
		from, skip = last, next
	}
}

// Count returns how many entries selector matches over [start, end], with a
// metric query so that millions of entries are counted by Loki itself.
func (l *Loki) Count(ctx context.Context, selector string, start, end time.Time) (int64, error) {
	rng := end.Sub(start).Truncate(time.Second) + time.Second
	q := url.Values{}
	q.Set("query", fmt.Sprintf("sum(count_over_time(%s[%ds]))", selector, int64(rng/time.Second)))
	q.Set("time", strconv.FormatInt(end.UnixNano(), 10))
	r, err := l.get(ctx, "/loki/api/v1/query", q)
	if err != nil {
		return 0, err
	}
	var vec []struct {
		Value [2]json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(r.Data.Result, &vec); err != nil {
		return 0, fmt.Errorf("loki count: %w (%s)", err, r.Data.Result)
	}
	if len(vec) == 0 {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(vec[0].Value[1], &s); err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(s, 64)
	return int64(f), err
}

// Metric sums every series of one counter or gauge on Loki's /metrics.
func (l *Loki) Metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.URL()+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("loki /metrics: %q: %w", line, err)
		}
		sum += f
	}
	return sum, sc.Err()
}

// DecodePush reads a push request body as Loki does: snappy-compressed
// protobuf (taps between an agent and Loki use it to see what was pushed).
func DecodePush(body []byte) (push.PushRequest, error) {
	var pr push.PushRequest
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return pr, err
	}
	err = pr.Unmarshal(raw)
	return pr, err
}
