package collector

// The S3 entropy-injection lint: S3 partitions request capacity by key
// prefix, and without entropy injection every checkpoint file of a job
// shares one prefix, so a large job's checkpoints get throttled however
// much capacity the bucket has. The lint reads the JobManager's
// configuration (/jobmanager/config) at start and every
// flink.config_lint_interval, exports flink_config_s3_entropy_injection and
// flink_config_info, and says once, in one warning, what to change.

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/dogstatsd"
)

const (
	routeJMConfig = "/jobmanager/config"
	routeOverview = "/overview"
)

// Configuration keys the lint reads; for each, the 2.x name first, then
// the 1.x one. Only these values are ever looked at.
var (
	keysCheckpointDir     = []string{"execution.checkpointing.dir", "state.checkpoints.dir"}
	keysCheckpointStorage = []string{"execution.checkpointing.storage", "state.checkpoint-storage"}
	keysStateBackend      = []string{"state.backend.type", "state.backend"}
	keysIncremental       = []string{"execution.checkpointing.incremental", "state.backend.incremental"}
	keyEntropyKey         = "s3.entropy.key"
	keyEntropyLength      = "s3.entropy.length"
)

// ConfigLintOptions configure the lint.
type ConfigLintOptions struct {
	// Interval is flink.config_lint_interval; default 10 minutes.
	Interval   time.Duration
	Registerer prometheus.Registerer
	Statsd     *dogstatsd.Client
	Logger     *slog.Logger
}

// ConfigLint checks the cluster configuration. It reads through the
// Collector's REST client, so its requests are counted in
// flink_rest_requests_total{endpoint="/jobmanager/config"}.
type ConfigLint struct {
	c        *client
	interval time.Duration
	sd       *dogstatsd.Client
	log      *slog.Logger

	// entropy has no labels; a Vec so that nothing is exported before the
	// first reading (a 0 there would fire the alert).
	entropy *prometheus.GaugeVec
	info    *prometheus.GaugeVec

	mu     sync.Mutex
	warned string // the finding last warned about; "" when none
	last   Finding
}

// Finding is the lint's reading of one configuration.
type Finding struct {
	// CheckpointDir is the checkpoint directory with any user:password@
	// removed; "" when unset.
	CheckpointDir string
	Scheme        string // s3, s3a, s3p, file, hdfs, … ; "" when unset
	OnS3          bool
	// EntropyKey is s3.entropy.key ("" when unset), EntropyLength
	// s3.entropy.length as configured ("" when unset: Flink's default 4).
	EntropyKey, EntropyLength string
	// Entropy: checkpoints do not go to S3, or the key is set and in the path.
	Entropy bool
	// KeyNotFirst: the key is in the path but not right after the bucket,
	// so the files still share the prefix before it.
	KeyNotFirst       bool
	CheckpointStorage string
	StateBackend      string
	Incremental       string
	FlinkVersion      string
}

// NewConfigLint registers the lint's metrics; it reads through c's client.
func NewConfigLint(c *Collector, o ConfigLintOptions) (*ConfigLint, error) {
	if c == nil {
		return nil, fmt.Errorf("config lint: a Collector is required")
	}
	if o.Registerer == nil {
		return nil, fmt.Errorf("config lint: a Registerer is required")
	}
	l := &ConfigLint{
		c:        c.c,
		interval: o.Interval,
		sd:       o.Statsd,
		log:      o.Logger,
		entropy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flink_config_s3_entropy_injection",
			Help: "0 when checkpoints go to s3:// s3a:// or s3p:// without s3.entropy.key in the path (all files share one S3 key prefix); 1 otherwise.",
		}, nil),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flink_config_info",
			Help: "Cluster configuration relevant to checkpoints, from /jobmanager/config (value 1).",
		}, []string{"checkpoint_storage", "state_backend", "checkpoint_scheme", "incremental", "entropy_injection", "flink_version"}),
	}
	if l.interval <= 0 {
		return nil, fmt.Errorf("config lint: Interval (flink.config_lint_interval) must be positive")
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	for _, m := range []prometheus.Collector{l.entropy, l.info} {
		if err := o.Registerer.Register(m); err != nil {
			return nil, fmt.Errorf("config lint: register metrics: %w", err)
		}
	}
	return l, nil
}

// Run checks at start and every interval until ctx ends. A failed read is
// logged at debug level and retried at the next interval, or sooner (every
// minute) until the first success.
func (l *ConfigLint) Run(ctx context.Context) error {
	ok := false
	for {
		err := l.Check(ctx)
		if err != nil && ctx.Err() == nil {
			l.log.Debug("config lint: reading the Flink configuration failed", "err", err)
		}
		ok = ok || err == nil
		wait := l.interval
		if !ok && wait > time.Minute {
			wait = time.Minute
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Last returns the latest finding.
func (l *ConfigLint) Last() Finding {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Check reads the configuration once and updates metrics and warnings.
func (l *ConfigLint) Check(ctx context.Context) error {
	var kv []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	if err := l.c.get(ctx, routeJMConfig, routeJMConfig, &kv); err != nil {
		return err
	}
	cfg := make(map[string]string, 8)
	want := map[string]bool{keyEntropyKey: true, keyEntropyLength: true}
	for _, ks := range [][]string{keysCheckpointDir, keysCheckpointStorage, keysStateBackend, keysIncremental} {
		for _, k := range ks {
			want[k] = true
		}
	}
	for _, e := range kv {
		if want[e.Key] { // nothing else is kept, secrets included
			cfg[e.Key] = strings.TrimSpace(e.Value)
		}
	}
	var ov struct {
		Version string `json:"flink-version"`
	}
	if err := l.c.get(ctx, routeOverview, routeOverview, &ov); err != nil {
		ov.Version = "" // the version is a label for dashboards, not a reason to skip the lint
	}
	f := Lint(cfg)
	f.FlinkVersion = ov.Version
	l.publish(f)
	return nil
}

func first(cfg map[string]string, keys []string) string {
	for _, k := range keys {
		if v := cfg[k]; v != "" {
			return v
		}
	}
	return ""
}

// Lint evaluates configuration values (key → value).
func Lint(cfg map[string]string) Finding {
	f := Finding{
		EntropyKey:        cfg[keyEntropyKey],
		EntropyLength:     cfg[keyEntropyLength],
		CheckpointStorage: strings.ToLower(first(cfg, keysCheckpointStorage)),
		StateBackend:      strings.ToLower(first(cfg, keysStateBackend)),
		Incremental:       strings.ToLower(first(cfg, keysIncremental)),
		Entropy:           true,
	}
	dir := first(cfg, keysCheckpointDir)
	if dir == "" {
		return f
	}
	u, err := url.Parse(dir)
	if err != nil {
		// Not a URI Flink could use either; report the scheme part only.
		if i := strings.Index(dir, "://"); i > 0 {
			f.Scheme = strings.ToLower(dir[:i])
		}
		f.CheckpointDir = "(unparsable)"
	} else {
		u.User = nil // never log or export credentials put in the URI
		f.CheckpointDir = u.String()
		f.Scheme = strings.ToLower(u.Scheme)
	}
	if f.CheckpointStorage == "" {
		f.CheckpointStorage = "filesystem" // a checkpoint directory selects it
	}
	switch f.Scheme {
	case "s3", "s3a", "s3p":
		f.OnS3 = true
	default:
		return f
	}
	f.Entropy = false
	if f.EntropyKey == "" || err != nil {
		return f
	}
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	for i, s := range segs {
		if strings.Contains(s, f.EntropyKey) {
			f.Entropy = true
			f.KeyNotFirst = i > 0
			break
		}
	}
	return f
}

func (l *ConfigLint) publish(f Finding) {
	v := 0.0
	if f.Entropy {
		v = 1
	}
	l.entropy.WithLabelValues().Set(v)
	l.sd.Gauge(dogstatsd.ConfigS3EntropyInjection, v)
	l.info.Reset()
	l.info.WithLabelValues(orNone(f.CheckpointStorage), orNone(f.StateBackend), orNone(f.Scheme),
		orNone(f.Incremental), fmt.Sprint(f.Entropy), orNone(f.FlinkVersion)).Set(1)

	l.mu.Lock()
	l.last = f
	finding := ""
	switch {
	case f.OnS3 && !f.Entropy:
		finding = "missing|" + f.CheckpointDir + "|" + f.EntropyKey
	case f.OnS3 && f.KeyNotFirst:
		finding = "not-first|" + f.CheckpointDir
	}
	changed := finding != l.warned
	l.warned = finding
	l.mu.Unlock()
	if !changed || finding == "" {
		return
	}
	bucket := bucketOf(f.CheckpointDir)
	if !f.Entropy {
		why := "s3.entropy.key is not set"
		if f.EntropyKey != "" {
			why = fmt.Sprintf("s3.entropy.key %q does not appear in the checkpoint path", f.EntropyKey)
		}
		l.log.Warn(fmt.Sprintf("checkpoints go to S3 without entropy injection: %s, so every checkpoint file shares one key prefix "+
			"and S3 throttles large checkpoints (503 SlowDown). Fix: set s3.entropy.key: _entropy_ and s3.entropy.length: 4, "+
			"and put the key right after the bucket in the checkpoint path: %s://%s/_entropy_/checkpoints "+
			"(Flink replaces it with random characters for data files and removes it for metadata)", why, f.Scheme, bucket),
			"checkpoint_dir", f.CheckpointDir)
		return
	}
	l.log.Warn(fmt.Sprintf("s3.entropy.key is in the checkpoint path but not right after the bucket, so the files still share "+
		"the prefix before it; use %s://%s/%s/… instead", f.Scheme, bucket, f.EntropyKey), "checkpoint_dir", f.CheckpointDir)
}

func bucketOf(dir string) string {
	u, err := url.Parse(dir)
	if err != nil || u.Host == "" {
		return "<bucket>"
	}
	return u.Host
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
