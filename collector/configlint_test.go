package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/sink"
)

// lintREST serves /jobmanager/config and /overview: the captured Flink
// 1.20.0 answers, with configuration entries replaced or added per test.
type lintREST struct {
	mu   sync.Mutex
	conf []map[string]string
	ov   []byte
}

func newLintREST(t *testing.T) (*lintREST, *httptest.Server) {
	t.Helper()
	raw, err := os.ReadFile("testdata/flink-1.20.0/jobmanager_config.json")
	if err != nil {
		t.Fatal(err)
	}
	r := &lintREST{}
	if err := json.Unmarshal(raw, &r.conf); err != nil {
		t.Fatal(err)
	}
	if r.ov, err = os.ReadFile("testdata/flink-1.20.0/overview.json"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		r.mu.Lock()
		defer r.mu.Unlock()
		switch req.URL.Path {
		case "/jobmanager/config":
			_ = json.NewEncoder(w).Encode(r.conf)
		case "/overview":
			_, _ = w.Write(r.ov)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return r, srv
}

// set replaces (or adds) keys; an empty value removes the key.
func (r *lintREST) set(kv map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.conf[:0]
	for _, e := range r.conf {
		if _, ok := kv[e["key"]]; !ok {
			out = append(out, e)
		}
	}
	for k, v := range kv {
		if v != "" {
			out = append(out, map[string]string{"key": k, "value": v})
		}
	}
	r.conf = out
}

type lintHarness struct {
	lint *ConfigLint
	reg  *prometheus.Registry
	logs *bytes.Buffer
}

func newLint(t *testing.T, url string) *lintHarness {
	t.Helper()
	h := &lintHarness{reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := config.Default().Flink
	f.RestURL = url
	c, err := New(Options{Flink: f, Registerer: h.reg, Logger: log, Watch: testWatch(t, sink.Options{Registerer: h.reg})})
	if err != nil {
		t.Fatal(err)
	}
	if h.lint, err = NewConfigLint(c, ConfigLintOptions{Registerer: h.reg, Logger: log, Interval: config.Default().Flink.ConfigLintInterval.D()}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *lintHarness) check(t *testing.T) {
	t.Helper()
	if err := h.lint.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (h *lintHarness) warnings() []string {
	var w []string
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") {
			w = append(w, l)
		}
	}
	return w
}

func TestConfigLintCapturedFileCheckpoints(t *testing.T) {
	_, srv := newLintREST(t)
	h := newLint(t, srv.URL)
	h.check(t)
	want := `
# HELP flink_config_info Cluster configuration relevant to checkpoints, from /jobmanager/config (value 1).
# TYPE flink_config_info gauge
flink_config_info{checkpoint_scheme="file",checkpoint_storage="filesystem",entropy_injection="true",flink_version="1.20.0",incremental="none",state_backend="hashmap"} 1
# HELP flink_config_s3_entropy_injection 0 when checkpoints go to s3:// s3a:// or s3p:// without s3.entropy.key in the path (all files share one S3 key prefix); 1 otherwise.
# TYPE flink_config_s3_entropy_injection gauge
flink_config_s3_entropy_injection 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "flink_config_info", "flink_config_s3_entropy_injection"); err != nil {
		t.Error(err)
	}
	if w := h.warnings(); len(w) != 0 {
		t.Errorf("warnings for file:// checkpoints: %q", w)
	}
	if n := testutil.ToFloat64(h.lint.c.requests.WithLabelValues("/jobmanager/config", "200")); n != 1 {
		t.Errorf("requests counted: %v", n)
	}
}

func TestConfigLintS3(t *testing.T) {
	for _, tc := range []struct {
		name     string
		conf     map[string]string
		entropy  float64
		warn     []string // substrings of the one warning; nil: none
		notFirst bool
	}{
		{
			name:    "s3p without entropy (1.x and 2.x keys)",
			conf:    map[string]string{"state.checkpoints.dir": "s3p://flink/checkpoints", "execution.checkpointing.dir": "s3p://flink/checkpoints"},
			entropy: 0,
			warn:    []string{"s3.entropy.key is not set", "s3.entropy.key: _entropy_", "s3.entropy.length: 4", "s3p://flink/_entropy_/checkpoints"},
		},
		{
			name:    "1.x key only, s3a",
			conf:    map[string]string{"execution.checkpointing.dir": "", "state.checkpoints.dir": "s3a://b-1/flink/cp"},
			entropy: 0,
			warn:    []string{"s3a://b-1/_entropy_/checkpoints"},
		},
		{
			name:    "key set but not in the path",
			conf:    map[string]string{"execution.checkpointing.dir": "s3://b/checkpoints", "s3.entropy.key": "_entropy_"},
			entropy: 0,
			warn:    []string{`_entropy_`, "does not appear in the checkpoint path"},
		},
		{
			name:    "entropy right after the bucket",
			conf:    map[string]string{"execution.checkpointing.dir": "s3://b/_entropy_/checkpoints", "s3.entropy.key": "_entropy_", "s3.entropy.length": "4"},
			entropy: 1,
		},
		{
			name:     "entropy deeper in the path",
			conf:     map[string]string{"execution.checkpointing.dir": "s3://b/checkpoints/_entropy_/job", "s3.entropy.key": "_entropy_"},
			entropy:  1,
			warn:     []string{"not right after the bucket", "s3://b/_entropy_/"},
			notFirst: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rest, srv := newLintREST(t)
			rest.set(tc.conf)
			h := newLint(t, srv.URL)
			h.check(t)
			h.check(t) // a repeated finding is not warned again
			if got := testutil.ToFloat64(h.lint.entropy.WithLabelValues()); got != tc.entropy {
				t.Errorf("flink_config_s3_entropy_injection = %v, want %v", got, tc.entropy)
			}
			w := h.warnings()
			if tc.warn == nil {
				if len(w) != 0 {
					t.Errorf("warnings %q", w)
				}
				return
			}
			if len(w) != 1 {
				t.Fatalf("%d warnings, want 1: %q", len(w), w)
			}
			for _, s := range tc.warn {
				if !strings.Contains(w[0], s) {
					t.Errorf("warning %q does not say %q", w[0], s)
				}
			}
			if f := h.lint.Last(); !f.OnS3 || f.KeyNotFirst != tc.notFirst {
				t.Errorf("finding %+v", f)
			}
		})
	}
}

func TestConfigLintWarnsAgainAfterAChange(t *testing.T) {
	rest, srv := newLintREST(t)
	rest.set(map[string]string{"execution.checkpointing.dir": "s3://b/cp", "state.checkpoints.dir": ""})
	h := newLint(t, srv.URL)
	h.check(t)
	rest.set(map[string]string{"execution.checkpointing.dir": "s3://b/_entropy_/cp", "s3.entropy.key": "_entropy_"})
	h.check(t)
	rest.set(map[string]string{"execution.checkpointing.dir": "s3://b/cp"})
	h.check(t)
	if n := len(h.warnings()); n != 2 {
		t.Errorf("%d warnings, want 2 (missing, fixed, missing again)", n)
	}
}

// TestConfigLintNeverLeaksSecrets: secret values in the configuration (and
// credentials in the checkpoint URI) appear neither in logs nor in metrics.
func TestConfigLintNeverLeaksSecrets(t *testing.T) {
	rest, srv := newLintREST(t)
	secrets := []string{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY", "hunter2-password", "uri-secret-pw"}
	rest.set(map[string]string{
		"s3.access-key":                      secrets[0],
		"s3.secret-key":                      secrets[1],
		"fs.s3a.bucket.b.secret.key":         secrets[1],
		"security.ssl.internal.key-password": secrets[2],
		"execution.checkpointing.dir":        "s3://" + secrets[0] + ":" + secrets[3] + "@b/cp",
		"state.checkpoints.dir":              "",
	})
	h := newLint(t, srv.URL)
	h.check(t)
	var metrics bytes.Buffer
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&metrics, mf); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range secrets {
		if strings.Contains(h.logs.String(), s) || strings.Contains(metrics.String(), s) {
			t.Errorf("secret %q leaked:\n%s\n%s", s, h.logs.String(), metrics.String())
		}
	}
	if w := h.warnings(); len(w) != 1 || !strings.Contains(w[0], "s3://b/cp") {
		t.Errorf("warning %q", w)
	}
}

func TestConfigLintRESTDown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	h := newLint(t, srv.URL)
	if err := h.lint.Check(context.Background()); err == nil {
		t.Fatal("Check succeeded against a failing JobManager")
	}
	if n, err := testutil.GatherAndCount(h.reg, "flink_config_s3_entropy_injection"); err != nil || n != 0 {
		t.Errorf("entropy gauge exported before any reading (%d, %v)", n, err)
	}
}
