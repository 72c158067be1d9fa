package collector

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/internal/sink"
)

// memTransport answers from memory: the benchmark measures the client,
// decoding and processing, not loopback sockets.
type memTransport struct{ bodies map[string][]byte }

func (m *memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	b, ok := m.bodies[r.URL.Path]
	code := http.StatusOK
	if !ok {
		code, b = http.StatusNotFound, []byte(`{"errors":["Not found."]}`)
	}
	return &http.Response{StatusCode: code, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b)), Request: r}, nil
}

// benchJobs and benchHistory shape the benchmark's answers.
var benchJobs, benchHistory = 10, int64(100)

func benchJobID(j int) string { return fmt.Sprintf("%032x", j+1) }

// checkpointsJSON is a /jobs/:id/checkpoints answer shaped like Flink
// 1.20's, with a history of benchHistory entries ending at id last: every
// tenth failed, the newest in progress.
func checkpointsJSON(last int64) []byte {
	var b bytes.Buffer
	completed, failed := last*9/10, last/10
	fmt.Fprintf(&b, `{"counts":{"restored":0,"total":%d,"in_progress":1,"completed":%d,"failed":%d},`, last, completed, failed)
	b.WriteString(`"summary":{"checkpointed_size":{"min":5972,"max":6856,"avg":6797,"p50":6856.0,"p90":6856.0,"p95":6856.0,"p99":"NaN","p999":"NaN"},` +
		`"end_to_end_duration":{"min":32,"max":2071,"avg":182,"p50":57.5,"p90":719.3,"p95":2071.0,"p99":2071.0,"p999":2071.0}},`)
	b.WriteString(`"latest":{"completed":null,"savepoint":null,"failed":null,"restored":null},"history":[`)
	base := int64(1795477600000)
	for i := int64(0); i < benchHistory; i++ {
		id := last - i
		if i > 0 {
			b.WriteByte(',')
		}
		trig := base + id*1000
		switch {
		case i == 0:
			fmt.Fprintf(&b, `{"className":"in_progress","id":%d,"status":"IN_PROGRESS","is_savepoint":false,"savepointFormat":null,"trigger_timestamp":%d,"latest_ack_timestamp":-1,"checkpointed_size":0,"state_size":0,"end_to_end_duration":12,"alignment_buffered":0,"processed_data":0,"persisted_data":0,"num_subtasks":4,"num_acknowledged_subtasks":1,"checkpoint_type":"CHECKPOINT","tasks":{}}`, id, trig)
		case id%10 == 0:
			fmt.Fprintf(&b, `{"className":"failed","id":%d,"status":"FAILED","is_savepoint":false,"savepointFormat":null,"trigger_timestamp":%d,"latest_ack_timestamp":-1,"checkpointed_size":5984,"state_size":5984,"end_to_end_duration":25,"alignment_buffered":0,"processed_data":84,"persisted_data":0,"num_subtasks":4,"num_acknowledged_subtasks":0,"checkpoint_type":"CHECKPOINT","tasks":{},"failure_timestamp":%d,"failure_message":"Asynchronous task checkpoint failed."}`, id, trig, trig+25)
		default:
			fmt.Fprintf(&b, `{"className":"completed","id":%d,"status":"COMPLETED","is_savepoint":false,"savepointFormat":null,"trigger_timestamp":%d,"latest_ack_timestamp":%d,"checkpointed_size":6856,"state_size":6856,"end_to_end_duration":37,"alignment_buffered":0,"processed_data":63,"persisted_data":0,"num_subtasks":4,"num_acknowledged_subtasks":4,"checkpoint_type":"CHECKPOINT","tasks":{},"external_path":"s3://bucket/checkpoints/chk-%d","discarded":false}`, id, trig, trig+37, id)
		}
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func jobJSON(j int, now int64) []byte {
	acc := now - 1795477600000
	return []byte(`{"jid":"` + benchJobID(j) + `","name":"job ` + strconv.Itoa(j) + `","isStoppable":false,"state":"RUNNING","job-type":"STREAMING","start-time":1795477600000,"end-time":-1,"duration":1000,"maxParallelism":-1,"now":` + strconv.FormatInt(now, 10) +
		`,"timestamps":{"INITIALIZING":1795477599623,"RECONCILING":0,"CANCELED":0,"RESTARTING":0,"RUNNING":1795477600000,"FAILING":0,"SUSPENDED":0,"CANCELLING":0,"CREATED":1795477599734,"FAILED":0,"FINISHED":0},"vertices":[` +
		`{"id":"cbc357ccb763df2852fee8c4fc7d55f2","name":"Source: sequence -> throttle","maxParallelism":128,"parallelism":2,"status":"RUNNING","start-time":1795477600000,"end-time":-1,"duration":3202,"tasks":{"RUNNING":2},"metrics":{"read-bytes":0,"read-bytes-complete":true,"write-bytes":0,"write-bytes-complete":true,"read-records":0,"read-records-complete":true,"write-records":7,"write-records-complete":true,"accumulated-backpressured-time":` + strconv.FormatInt(acc/4, 10) + `,"accumulated-idle-time":` + strconv.FormatInt(acc/2, 10) + `,"accumulated-busy-time":` + strconv.FormatInt(acc/4, 10) + `.0}},` +
		`{"id":"90bea66de1c231edf33913ecd54406c1","name":"count -> discard: Writer","maxParallelism":128,"parallelism":2,"status":"RUNNING","start-time":1795477600000,"end-time":-1,"duration":3200,"tasks":{"RUNNING":2},"metrics":{"read-bytes":79,"read-bytes-complete":true,"write-bytes":0,"write-bytes-complete":true,"read-records":3,"read-records-complete":true,"write-records":0,"write-records-complete":true,"accumulated-backpressured-time":0,"accumulated-idle-time":` + strconv.FormatInt(acc, 10) + `,"accumulated-busy-time":` + strconv.FormatInt(acc, 10) + `.0}}]}`)
}

func benchBodies(last int64, now int64) map[string][]byte {
	m := map[string][]byte{
		"/jobmanager/metrics":   []byte(`[{"id":"numRegisteredTaskManagers","value":"4"},{"id":"taskSlotsAvailable","value":"0"},{"id":"taskSlotsTotal","value":"16"},{"id":"Status.JVM.Memory.Heap.Used","value":"167107072"},{"id":"Status.JVM.Memory.Heap.Max","value":"268435456"},{"id":"Status.JVM.GarbageCollector.All.Time","value":"1234"}]`),
		"/taskmanagers/metrics": []byte(`[{"id":"Status.JVM.Memory.Heap.Used","max":1.13544704E8,"sum":4.5E8},{"id":"Status.JVM.Memory.Heap.Max","max":2.34881024E8,"sum":9.4E8},{"id":"Status.JVM.GarbageCollector.All.Time","max":69.0,"sum":250.0}]`),
	}
	var ov strings.Builder
	ov.WriteString(`{"jobs":[`)
	cps := checkpointsJSON(last)
	for j := range benchJobs {
		if j > 0 {
			ov.WriteByte(',')
		}
		id := benchJobID(j)
		fmt.Fprintf(&ov, `{"jid":"%s","name":"job %d","start-time":1795477600000,"end-time":-1,"duration":1000,"state":"RUNNING","last-modification":1795477600000,"tasks":{"running":4,"total":4}}`, id, j)
		m["/jobs/"+id] = jobJSON(j, now)
		m["/jobs/"+id+"/checkpoints"] = cps
		m["/jobs/"+id+"/checkpoints/config"] = []byte(`{"mode":"exactly_once","interval":1000,"timeout":60000,"min_pause":0,"max_concurrent":1,"tolerable_failed_checkpoints":3}`)
	}
	ov.WriteString(`]}`)
	m["/jobs/overview"] = []byte(ov.String())
	return m
}

func benchCollector(b *testing.B, tr *memTransport) *Collector {
	f := config.Default().Flink
	f.RestURL = "http://flink.invalid:8081"
	reg := prometheus.NewRegistry()
	c, err := New(Options{Flink: f, Registerer: reg, Logger: slog.New(slog.DiscardHandler), Watch: testWatch(b, sink.Options{Registerer: reg})})
	if err != nil {
		b.Fatal(err)
	}
	c.c.hc.Transport = tr
	return c
}

// BenchmarkScrape10Jobs100History is one scrape of 10 running jobs whose
// checkpoint histories hold 100 entries: requests through the client,
// decoding, vertex ratios and the checkpoint watch.
//
// steady: nothing new since the previous scrape (the usual case).
// advancing: every scrape sees 100 new checkpoints per job (10% failed),
// each observed once, with the details of two new failures per job.
func BenchmarkScrape10Jobs100History(b *testing.B) {
	ctx := context.Background()
	b.Run("steady", benchSteady)
	b.Run("advancing", func(b *testing.B) {
		last, now := int64(1000), int64(1795478600000)
		tr := &memTransport{bodies: benchBodies(last, now)}
		c := benchCollector(b, tr)
		if err := c.Scrape(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		var cpuNS time.Duration
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			last += benchHistory
			now += 15000
			tr.bodies = benchBodies(last, now)
			cpu := startCPU()
			b.StartTimer()
			if err := c.Scrape(ctx); err != nil && !strings.Contains(err.Error(), "details") {
				b.Fatal(err)
			}
			cpuNS += cpu.used()
		}
		b.ReportMetric(float64(cpuNS.Nanoseconds())/float64(b.N), "cpu-ns/op")
	})
}

// cpuClock measures the process's CPU time (user+system): on a shared
// machine it says what a scrape costs where wall time says how busy the
// machine was.
type cpuClock struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock               { return cpuClock{processCPU()} }
func (c cpuClock) used() time.Duration { return processCPU() - c.start }
func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(c.used().Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkScrape20Jobs10History is one steady scrape of 20 running jobs
// whose checkpoint histories hold 10 entries (Flink's web.checkpoints.history
// default). Issue 12 measured it with collector/fastjson.go, a hand-written
// decoder, against encoding/json (in the commit before fastjson.go was
// removed): encoding/json cost 1.9x the CPU (2.88 vs 1.53 ms, median of 8),
// under the 2x that would have kept the hand-written decoder, so
// encoding/json decodes every answer now.
func BenchmarkScrape20Jobs10History(b *testing.B) {
	defer func(j int, h int64) { benchJobs, benchHistory = j, h }(benchJobs, benchHistory)
	benchJobs, benchHistory = 20, 10
	benchSteady(b)
}

// benchSteady measures scrapes that find nothing new, after a first one.
func benchSteady(b *testing.B) {
	ctx := context.Background()
	c := benchCollector(b, &memTransport{bodies: benchBodies(1000, 1795478600000)})
	if err := c.Scrape(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := startCPU()
	b.ResetTimer()
	for range b.N {
		if err := c.Scrape(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu.report(b)
}
