package logscan

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/internal/logtest"
)

// corpusCase is one corpus file and what must be found in it. Expected
// counts were established independently of this package (see README.md).
type corpusCase struct {
	file string
	// start matches the first line of an event (multiline grouping);
	// default Flink's log4j timestamp.
	start     string
	throttles map[string]int // bucket label → occurrences
	triggered int
	completed int
	failures  map[checkpointwatch.Reason]int
	// attributed counts failed checkpoints attributed to S3 throttling, in
	// the failure itself or by a later mark.
	attributed int
	names      map[string]string
	global     int
	// lost counts lost TaskManagers (each once) by reason.
	lost map[LossReason]int
}

var corpus = []corpusCase{
	// Captured from the test bed: Flink 1.20.0, flink-s3-fs-presto, S3 throttled.
	{file: "testbed/flink-1.20.0-presto-jm.log", throttles: map[string]int{"unknown": 7}, triggered: 14, completed: 12,
		failures: map[checkpointwatch.Reason]int{checkpointwatch.ReasonAsyncFailure: 2}, attributed: 2,
		names: map[string]string{"a263c230045a6bc59839b4167eccf768": "flink-agent testbed checkpointing job"}},
	{file: "testbed/flink-1.20.0-presto-tm.log", throttles: map[string]int{"unknown": 8}},
	{file: "testbed/flink-1.20.0-presto-tm-async-failure.log", throttles: map[string]int{"unknown": 1}},
	// Captured from the test bed: a TaskManager frozen (SIGSTOP, so its
	// heartbeats time out) or killed (SIGKILL) while the job runs.
	{file: "testbed/flink-1.18.1-tm-frozen-jm.log", triggered: 1, failures: map[checkpointwatch.Reason]int{checkpointwatch.ReasonOther: 1},
		names: map[string]string{"2039cb9a81919e68040c977f0fdf6f9e": "flink-agent testbed checkpointing job"}, lost: map[LossReason]int{LossHeartbeatTimeout: 1}},
	{file: "testbed/flink-2.2.1-tm-frozen-jm.log", triggered: 1, failures: map[checkpointwatch.Reason]int{checkpointwatch.ReasonOther: 1},
		names: map[string]string{"7adfb68b0a890fb938bbb6b60f8a0183": "flink-agent testbed checkpointing job"}, lost: map[LossReason]int{LossHeartbeatTimeout: 1}},
	{file: "testbed/flink-1.18.1-tm-killed-jm.log",
		names: map[string]string{"5468bc8e7cac1d13e280d2f2d51e49d8": "flink-agent testbed checkpointing job"}, lost: map[LossReason]int{LossUnreachable: 1}},
	{file: "testbed/flink-2.2.1-tm-killed-jm.log", triggered: 1, failures: map[checkpointwatch.Reason]int{checkpointwatch.ReasonTriggerFailure: 1},
		names: map[string]string{"0fbe1d0e6a4cdeb72716468b63404c34": "flink-agent testbed checkpointing job"}, lost: map[LossReason]int{LossUnreachable: 1}},

	// Captured from the test bed: checkpoints expiring (snapshots sleeping
	// past a 3 s timeout), cut after the job's naming lines.
	{file: "testbed/flink-2.2.1-expired-noname-jm.log", triggered: 4, completed: 1,
		failures: map[checkpointwatch.Reason]int{checkpointwatch.ReasonExpired: 3}},

	// Real Flink logs from public issues.
	{file: "real/flink-1.20-kickstarter-517.jm.log", triggered: 3, completed: 2,
		names: map[string]string{"109fdadc2d9656267fb3ab8ab2ee5d76": "collect"}},
	{file: "real/flink-1.18-docker-cdc-2802.jm.log", start: `^\d{4}-\d\d-\d\d[T ]`, triggered: 3, completed: 2},
	{file: "real/flink-1.18-doris-45965.jm.log", triggered: 2, completed: 2},
	{file: "real/flink-1.11-cdc-273.jm.log", triggered: 1, failures: map[checkpointwatch.Reason]int{checkpointwatch.ReasonExpired: 1}, global: 1},
	{file: "real/flink-1.9-pr8322.jm.log", triggered: 1, failures: map[checkpointwatch.Reason]int{checkpointwatch.ReasonDeclined: 1},
		names: map[string]string{"dd4f07c1f866b7afff42759d7a35de3f": "Flink Streaming Job"}},
	{file: "real/flink-1.18-docker-sqrl-780.jm.log", start: `^flink-jobmanager-1 +\| \d{4}-`, failures: map[checkpointwatch.Reason]int{checkpointwatch.ReasonOther: 1}},
	{file: "real/flink-minio-404-containers-3.jm.log"},
	// Real exception text of the same clients from other JVM programs.
	{file: "real/emrfs-spark-hudi-3758.log", start: `^\d\d/\d\d/\d\d `, throttles: map[string]int{"unknown": 1}},
	{file: "real/emrfs-spark-opensearch-607.log", start: `^\d\d/\d\d/\d\d `, throttles: map[string]int{"unknown": 1}},
	{file: "real/sdkv1-flightstats-291.log", start: `^WARN `, throttles: map[string]int{"unknown": 3}},
	{file: "real/sdkv1-debug-aws-sdk-net-1949.log", throttles: map[string]int{"unknown": 1}},
	{file: "real/sdkv2-automq-3198.log", start: `^ERROR `, throttles: map[string]int{"unknown": 1}},
	{file: "real/hadoop-s3a-docs-negatives.log", start: `^(com\.amazonaws\.services\.s3\.model|\$ bin/hadoop|org\.apache\.hadoop\.fs)`},

	// Synthetic variants.
	{file: "synthetic/s3a-hadoop.tm.log", throttles: map[string]int{"ckpt-east": 2, "ceph-ckpt": 1}},
	{file: "synthetic/presto-shaded-minio.tm.log", throttles: map[string]int{"prod-ckpt": 2, "minio-ckpt": 1}},
	{file: "synthetic/native-sdkv2.jm.log", throttles: map[string]int{"v2-bucket": 2, "unknown": 1}, triggered: 2, completed: 1,
		failures: map[checkpointwatch.Reason]int{checkpointwatch.ReasonAsyncFailure: 1}, attributed: 1},
	{file: "synthetic/emrfs-flink.jm.log", throttles: map[string]int{"emr-ckpt": 1}, triggered: 1,
		failures: map[checkpointwatch.Reason]int{checkpointwatch.ReasonAsyncFailure: 1}, attributed: 1},
	{file: "synthetic/old-format-window.jm.log", throttles: map[string]int{"old-bucket": 1}, triggered: 4, completed: 2,
		failures: map[checkpointwatch.Reason]int{checkpointwatch.ReasonExpired: 2}, attributed: 1, global: 1,
		names: map[string]string{"c0ffee00c0ffee00c0ffee00c0ffee00": "orders-enrichment"}},
	{file: "synthetic/negatives.tm.log"},
	{file: "synthetic/many-buckets.tm.log", throttles: manyBuckets()},
}

func manyBuckets() map[string]int {
	m := map[string]int{OtherBucket: 5}
	for i := 1; i <= 20; i++ {
		m[fmt.Sprintf("tenant-%02d-ckpt", i)] = 1
	}
	return m
}

// readEvents groups a file's lines into events as the shipper's multiline
// grouping does: an event starts at a line matching start.
func readEvents(t *testing.T, path, start string) [][]byte {
	t.Helper()
	re := logtest.Log4jStart
	if start != "" {
		re = regexp.MustCompile(start)
	}
	evs, err := logtest.Events(path, re)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

var eventTime = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}`)

func componentOf(file string) string {
	switch {
	case strings.Contains(file, ".jm.") || strings.Contains(file, "-jm"):
		return "jobmanager"
	case strings.Contains(file, ".tm.") || strings.Contains(file, "-tm"):
		return "taskmanager"
	}
	return "unknown"
}

func TestCorpus(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range corpus {
		seen[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			sink := newRecSink()
			tms := &recTMSink{}
			s, err := New(Options{Registerer: reg, Checkpoints: sink, TaskManagers: tms, ThrottleWindow: 2 * time.Minute,
				Clock: func() time.Time { return time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC) }})
			if err != nil {
				t.Fatal(err)
			}
			comp := componentOf(tc.file)
			fake := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
			for _, ev := range readEvents(t, filepath.Join("testdata", "corpus", tc.file), tc.start) {
				ts := fake
				if m := eventTime.Find(ev); m != nil {
					if p, err := time.Parse("2006-01-02 15:04:05,000", string(m)); err == nil {
						ts = p
					}
				}
				fake = fake.Add(time.Second)
				s.Scan(ts, ev, comp)
			}

			got := map[string]int{}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() != "flink_s3_throttle_events_total" {
					continue
				}
				for _, m := range mf.GetMetric() {
					if c := logtest.Label(m, "component"); c != comp {
						t.Errorf("component label %q, want %q", c, comp)
					}
					got[logtest.Label(m, "bucket")] += int(m.GetCounter().GetValue())
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(nonNil(tc.throttles)) {
				t.Errorf("throttles per bucket\n got %v\nwant %v", got, nonNil(tc.throttles))
			}
			if len(sink.triggered) != tc.triggered || len(sink.completed) != tc.completed {
				t.Errorf("triggered %d completed %d, want %d %d", len(sink.triggered), len(sink.completed), tc.triggered, tc.completed)
			}
			failures := map[checkpointwatch.Reason]int{}
			attributed := map[string]bool{}
			for _, f := range sink.failed {
				r := f.reason
				if r == "" {
					r, _ = checkpointwatch.Classify(f.message)
				}
				failures[r]++
				if f.throttled {
					attributed[fmt.Sprintf("%s/%d", f.job, f.id)] = true
				}
			}
			for _, m := range sink.marks {
				attributed[m] = true
			}
			if fmt.Sprint(failures) != fmt.Sprint(nonNilR(tc.failures)) || len(attributed) != tc.attributed {
				t.Errorf("failures %v attributed %d (%v), want %v %d", failures, len(attributed), sink.failed, nonNilR(tc.failures), tc.attributed)
			}
			if tc.names == nil {
				tc.names = map[string]string{}
			}
			if fmt.Sprint(sink.names) != fmt.Sprint(tc.names) || len(sink.global) != tc.global {
				t.Errorf("names %v global %v, want %v %d", sink.names, sink.global, tc.names, tc.global)
			}
			lost := map[LossReason]int{}
			for _, l := range tms.lost {
				_, reason, _ := strings.Cut(l, "/")
				lost[LossReason(reason)]++
			}
			if tc.lost == nil {
				tc.lost = map[LossReason]int{}
			}
			if fmt.Sprint(lost) != fmt.Sprint(tc.lost) {
				t.Errorf("lost TaskManagers %v (%v), want %v", lost, tms.lost, tc.lost)
			}
		})
	}
	// Every corpus file has expectations.
	err := filepath.Walk("testdata/corpus", func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || filepath.Ext(p) != ".log" {
			return err
		}
		rel, _ := filepath.Rel("testdata/corpus", p)
		if !seen[rel] {
			t.Errorf("%s has no expected counts in the corpus table", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func nonNil(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

func nonNilR(m map[checkpointwatch.Reason]int) map[checkpointwatch.Reason]int {
	if m == nil {
		return map[checkpointwatch.Reason]int{}
	}
	return m
}

// TestCorpusReadmeCitesEveryFile keeps README.md's source table complete.
func TestCorpusReadmeCitesEveryFile(t *testing.T) {
	readme, err := os.ReadFile("testdata/corpus/README.md")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, tc := range corpus {
		if !bytes.Contains(readme, []byte("`"+tc.file+"`")) {
			missing = append(missing, tc.file)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("README.md does not describe: %v", missing)
	}
}
