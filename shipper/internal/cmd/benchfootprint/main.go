// Command benchfootprint measures what each log shipper costs at a steady,
// realistic rate (issue 14): one writer appends Flink events to a log file
// (one write per event, as log4j's immediateFlush does; 5% with a stack
// trace), every shipper tails that same file at the same time and pushes
// to the same counting receiver, and for each the CPU share (from
// /proc/<pid>/stat), RSS and received counts are printed, plus ratios.
//
// The shippers: flink-agent as a TaskManager sidecar (logs only) and as a
// JobManager sidecar (logs plus a REST scrape of a fake 20-job cluster
// every 15 s), optionally the same two built from a baseline commit, the
// OpenTelemetry Collector's filelog receiver and Promtail.
//
// Phases: idle (files exist, nothing written), load (the CPU window),
// latency (load continues; a "Completed checkpoint" line every 500 ms and
// the JobManager sidecar's /metrics polled until flink_checkpoints_total
// moves), drain (every shipper must deliver every event). scripts/bench-
// footprint.sh (make bench-footprint) builds the binaries and runs it.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/flink-agent/flink-agent/shipper/internal/benchpeer"
	"github.com/flink-agent/flink-agent/shipper/internal/flinklog"
)

// written records when each event (by seq) was written.
type written struct {
	mu sync.Mutex
	at []int64 // unix nanoseconds
}

func (w *written) set(seq int64, t int64) {
	w.mu.Lock()
	for int64(len(w.at)) <= seq {
		w.at = append(w.at, 0)
	}
	w.at[seq] = t
	w.mu.Unlock()
}

func (w *written) get(seq int64) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if seq < 0 || seq >= int64(len(w.at)) {
		return 0
	}
	return w.at[seq]
}

// receiver counts one shipper's entries: events by seq (duplicates too),
// other lines, and the delay from write to arrival.
type receiver struct {
	name string
	w    *written

	mu      sync.Mutex
	seen    []uint8 // per seq: times received (saturating)
	unique  int64
	dups    int64
	other   int64
	lat     []time.Duration
	latFrom int64 // seqs from here on count for latency
}

func (rc *receiver) entry(line []byte, now int64) {
	seq := flinklog.SeqOf(line)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if seq < 0 {
		rc.other++
		return
	}
	for int64(len(rc.seen)) <= seq {
		rc.seen = append(rc.seen, 0)
	}
	switch rc.seen[seq] {
	case 0:
		rc.unique++
		if seq >= rc.latFrom {
			if t := rc.w.get(seq); t > 0 {
				rc.lat = append(rc.lat, time.Duration(now-t))
			}
		}
	default:
		rc.dups++
	}
	if rc.seen[seq] < 255 {
		rc.seen[seq]++
	}
}

func (rc *receiver) counts() (unique, dups, other int64) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.unique, rc.dups, rc.other
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := time.Now().UnixNano()
	switch r.URL.Path {
	case "/loki/api/v1/push":
		raw, err := snappy.Decode(nil, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req push.PushRequest
		if err := req.Unmarshal(raw); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, s := range req.Streams {
			for _, e := range s.Entries {
				rc.entry([]byte(e.Line), now)
			}
		}
		w.WriteHeader(http.StatusNoContent)
	case "/v1/logs":
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err == nil {
				body, err = io.ReadAll(zr)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		if err := otlpBodies(body, func(b []byte) { rc.entry(b, now) }); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	default:
		http.NotFound(w, r)
	}
}

// otlpBodies calls fn with the string body of every log record of an OTLP
// ExportLogsServiceRequest (resource_logs=1 → scope_logs=2 →
// log_records=2 → body=5 → string_value=1).
func otlpBodies(b []byte, fn func([]byte)) error {
	path := []protowire.Number{1, 2, 2, 5, 1}
	var walk func(b []byte, depth int) error
	walk = func(b []byte, depth int) error {
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			if typ != protowire.BytesType {
				n = protowire.ConsumeFieldValue(num, typ, b)
				if n < 0 {
					return protowire.ParseError(n)
				}
				b = b[n:]
				continue
			}
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			if num != path[depth] {
				continue
			}
			if depth == len(path)-1 {
				fn(v)
				continue
			}
			if err := walk(v, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(b, 0)
}

// saveSmaps copies p's /proc/<pid>/smaps into dir.
func saveSmaps(p *proc, dir string) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", p.cmd.Process.Pid))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, strings.ReplaceAll(p.name, " ", "-")+".smaps"), b, 0o644)
}

// proc is one shipper process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	rc      *receiver
	metrics string // flink-agent's /metrics URL

	idleCPU, loadCPU time.Duration
	loadSched        time.Duration // the load's CPU from schedstat (benchpeer.SchedCPU)
	idleRSS, loadRSS int64         // KiB
	peakRSS          int64
	loadMem          benchpeer.Memory // RSS split into anonymous and file pages
}

func (p *proc) start() error {
	p.cmd.Stdout, p.cmd.Stderr = os.Stderr, os.Stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return p.cmd.Start()
}

func (p *proc) stop() {
	if p.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// Fake JobManager: the REST answers of a real Flink 1.20 (the collector's
// fixtures) for jobs jobs, each with its own id.
type fakeJM struct {
	bodies map[string][]byte // path, plus "?get" when the request asks for metric values
}

func newFakeJM(fixtures string, jobs int) (*fakeJM, error) {
	var man struct {
		JobID string `json:"job_id"`
		Files map[string]struct {
			Path   string `json:"path"`
			Status int    `json:"status"`
		} `json:"files"`
	}
	b, err := os.ReadFile(filepath.Join(fixtures, "MANIFEST.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &man); err != nil {
		return nil, err
	}
	fj := &fakeJM{bodies: map[string][]byte{}}
	var overview []byte
	for file, f := range man.Files {
		if f.Status != 200 || strings.Contains(file, "before_first") || strings.HasPrefix(file, "nocheckpointing") {
			continue
		}
		body, err := os.ReadFile(filepath.Join(fixtures, file))
		if err != nil {
			return nil, err
		}
		key := routeKey(f.Path)
		switch {
		case file == "jobs_overview.json":
			overview = body
		case strings.Contains(f.Path, man.JobID):
			for j := range jobs {
				id := jobID(j)
				fj.bodies[strings.ReplaceAll(key, man.JobID, id)] = bytes.ReplaceAll(body, []byte(man.JobID), []byte(id))
			}
		default:
			fj.bodies[key] = body
		}
	}
	var ov struct {
		Jobs []map[string]any `json:"jobs"`
	}
	if err := json.Unmarshal(overview, &ov); err != nil || len(ov.Jobs) == 0 {
		return nil, fmt.Errorf("jobs_overview.json: %v", err)
	}
	var all []map[string]any
	for j := range jobs {
		m := map[string]any{}
		for k, v := range ov.Jobs[0] {
			m[k] = v
		}
		m["jid"], m["name"] = jobID(j), fmt.Sprintf("bench job %d", j)
		all = append(all, m)
	}
	fj.bodies["/jobs/overview"], _ = json.Marshal(map[string]any{"jobs": all})
	return fj, nil
}

func jobID(j int) string { return fmt.Sprintf("%032x", j+1) }

func routeKey(p string) string {
	path, query, _ := strings.Cut(p, "?")
	if strings.HasPrefix(query, "get=") || strings.Contains(query, "&get=") {
		return path + "?get"
	}
	return path
}

func (fj *fakeJM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Path
	if r.URL.Query().Has("get") {
		key += "?get"
	}
	b, ok := fj.bodies[key]
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors":["Not found: ` + r.URL.Path + `"]}`))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func listen(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { _ = http.Serve(ln, h) }()
	return "http://" + ln.Addr().String(), nil
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

const agentConfig = `flink:
  rest_url: "%[1]s"
  scrape_interval: 15s
logs:
  paths: ["%[2]s"]
  positions_file: %[3]s/positions.json
loki:
  url: %[4]s
dogstatsd:
  address: ""
web:
  listen_address: %[5]s
  enable_pprof: %[6]t
log:
  level: warn
`

// The filelog receiver doing the same work per event: multiline on the
// timestamp, time, level and logger parsed; batches of up to 1 s; pushed
// uncompressed (which only favours it).
const otelcolConfig = `receivers:
  filelog:
    include: ["%[1]s"]
    start_at: beginning
    multiline:
      line_start_pattern: '^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}'
    operators:
      - type: regex_parser
        regex: '^(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) (?P<level>\S+)\s+(?P<logger>\S+)'
        timestamp:
          parse_from: attributes.ts
          layout_type: gotime
          layout: '2006-01-02 15:04:05,000'
        severity:
          parse_from: attributes.level
processors:
  batch:
    timeout: 1s
    send_batch_size: 8192
exporters:
  otlphttp:
    endpoint: %[2]s
    compression: none
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    logs:
      receivers: [filelog]
      processors: [batch]
      exporters: [otlphttp]
`

type settings struct {
	agent, baseline, otelcol, promtail, fixtures, profile string
	smaps                                                 string
	rate                                                  int
	idle, load, latency                                   time.Duration
}

func main() {
	var s settings
	flag.StringVar(&s.agent, "agent", "", "flink-agent binary")
	flag.StringVar(&s.baseline, "baseline", "", "flink-agent binary built from the baseline commit (optional)")
	flag.StringVar(&s.otelcol, "otelcol", "", "OpenTelemetry Collector with the filelog receiver (optional)")
	flag.StringVar(&s.promtail, "promtail", "", "Promtail binary (optional)")
	flag.StringVar(&s.fixtures, "fixtures", "collector/testdata/flink-1.20.0", "Flink REST fixtures for the fake JobManager")
	flag.StringVar(&s.profile, "profile", "", "directory for CPU and allocation profiles of the TaskManager sidecar over the load window (its CPU figure then includes profiling)")
	flag.StringVar(&s.smaps, "smaps", "", "directory for each process's /proc/<pid>/smaps at the end of the load window (where its RSS goes)")
	flag.IntVar(&s.rate, "rate", 2000, "events per second")
	flag.DurationVar(&s.idle, "idle", 10*time.Second, "idle window")
	flag.DurationVar(&s.load, "load", 45*time.Second, "load window (CPU is measured over it)")
	flag.DurationVar(&s.latency, "latency", 15*time.Second, "latency phase (checkpoint lines, /metrics polled)")
	flag.Parse()
	log.SetFlags(0)
	if s.agent == "" {
		log.Fatal("--agent is required")
	}
	if err := run(s); err != nil {
		log.Fatal(err)
	}
}

func run(s settings) error {
	dir, err := os.MkdirTemp("", "bench-footprint-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logDir := filepath.Join(dir, "log")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	tmLog := filepath.Join(logDir, "flink--taskexecutor-0-bench.log")
	jmLog := filepath.Join(logDir, "flink--standalonesession-0-bench.log")
	for _, p := range []string{tmLog, jmLog} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return err
		}
	}
	glob := filepath.Join(logDir, "*.log")

	fj, err := newFakeJM(s.fixtures, 20)
	if err != nil {
		return fmt.Errorf("fake JobManager: %w", err)
	}
	jmURL, err := listen(fj)
	if err != nil {
		return err
	}

	w := &written{}
	var procs []*proc
	agent := func(name, bin, restURL string, pprof bool) error {
		pd := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.MkdirAll(pd, 0o755); err != nil {
			return err
		}
		rc := &receiver{name: name, w: w}
		url, err := listen(rc)
		if err != nil {
			return err
		}
		addr := freeAddr()
		cfg := filepath.Join(pd, "agent.yaml")
		if err := os.WriteFile(cfg, fmt.Appendf(nil, agentConfig, restURL, glob, pd, url, addr, pprof), 0o644); err != nil {
			return err
		}
		cmd := exec.Command(bin, "--config.file="+cfg)
		// The component as the chart sets it (both log files are in
		// the directory, so the name would not tell).
		component := "taskmanager"
		if restURL != "" {
			component = "jobmanager"
		}
		cmd.Env = append(os.Environ(), "FLINK_CLUSTER=bench", "FLINK_COMPONENT="+component, "POD_NAME="+strings.ReplaceAll(name, " ", "-"))
		procs = append(procs, &proc{name: name, cmd: cmd, rc: rc, metrics: "http://" + addr})
		return nil
	}
	if err := agent("flink-agent TM", s.agent, "", s.profile != ""); err != nil {
		return err
	}
	if err := agent("flink-agent JM", s.agent, jmURL, false); err != nil {
		return err
	}
	if s.baseline != "" {
		if err := agent("baseline TM", s.baseline, "", false); err != nil {
			return err
		}
		if err := agent("baseline JM", s.baseline, jmURL, false); err != nil {
			return err
		}
	}
	if s.otelcol != "" {
		rc := &receiver{name: "otelcol", w: w}
		url, err := listen(rc)
		if err != nil {
			return err
		}
		cfg := filepath.Join(dir, "otelcol.yaml")
		if err := os.WriteFile(cfg, fmt.Appendf(nil, otelcolConfig, glob, url), 0o644); err != nil {
			return err
		}
		procs = append(procs, &proc{name: "otelcol filelog", rc: rc, cmd: exec.Command(s.otelcol, "--config", "file:"+cfg)})
	}
	if s.promtail != "" {
		rc := &receiver{name: "promtail", w: w}
		url, err := listen(rc)
		if err != nil {
			return err
		}
		pd := filepath.Join(dir, "promtail")
		_ = os.MkdirAll(pd, 0o755)
		cfg := filepath.Join(pd, "promtail.yaml")
		if err := os.WriteFile(cfg, []byte(benchpeer.PromtailConfig(pd, url, glob)), 0o644); err != nil {
			return err
		}
		procs = append(procs, &proc{name: "promtail", rc: rc, cmd: exec.Command(s.promtail, "-config.file="+cfg, "-log.level=warn")})
	}
	var started []*proc
	defer func() {
		for _, p := range started {
			p.stop()
		}
	}()
	for _, p := range procs {
		if err := p.start(); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		started = append(started, p)
	}
	time.Sleep(5 * time.Second) // started, first scans and scrapes done

	// Idle.
	cpu0 := make([]time.Duration, len(procs))
	for i, p := range procs {
		cpu0[i] = benchpeer.CPU(p.cmd.Process.Pid)
	}
	time.Sleep(s.idle)
	for i, p := range procs {
		p.idleCPU = benchpeer.CPU(p.cmd.Process.Pid) - cpu0[i]
		p.idleRSS, _ = benchpeer.Mem(p.cmd.Process.Pid)
	}

	// Load: the writer runs from here to the end of the latency phase.
	f, err := os.OpenFile(tmLog, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	ctx, stopWriter := context.WithCancel(context.Background())
	defer stopWriter()
	g := &flinklog.Gen{MultilineEvery: 20, Now: true, TaskManager: true}
	wrote := make(chan int64, 1)
	go func() { wrote <- write(ctx, f, g, w, s.rate) }()
	warm := 5 * time.Second
	time.Sleep(warm)
	latFrom := int64(float64(s.rate) * warm.Seconds())
	for _, p := range procs {
		p.rc.mu.Lock()
		p.rc.latFrom = latFrom
		p.rc.mu.Unlock()
	}
	var profWG sync.WaitGroup
	if s.profile != "" {
		profWG.Add(1)
		go func() { defer profWG.Done(); profile(procs[0].metrics, s.profile, s.load) }()
	}
	sched0 := make([]time.Duration, len(procs))
	for i, p := range procs {
		cpu0[i] = benchpeer.CPU(p.cmd.Process.Pid)
		sched0[i] = benchpeer.SchedCPU(p.cmd.Process.Pid)
	}
	t0 := time.Now()
	time.Sleep(s.load)
	loadWall := time.Since(t0)
	for i, p := range procs {
		p.loadCPU = benchpeer.CPU(p.cmd.Process.Pid) - cpu0[i]
		p.loadSched = benchpeer.SchedCPU(p.cmd.Process.Pid) - sched0[i]
		p.loadMem = benchpeer.MemOf(p.cmd.Process.Pid)
		p.loadRSS, p.peakRSS = p.loadMem.RSS, p.loadMem.HWM
		if s.smaps != "" {
			if err := saveSmaps(p, s.smaps); err != nil {
				return err
			}
		}
	}
	profWG.Wait()

	// Latency of the log-derived checkpoint metric on the JobManager
	// sidecar, while the load goes on.
	cpLat, err := checkpointLatency(jmLog, procs[1].metrics, s.latency)
	if err != nil {
		return err
	}
	stopWriter()
	events := <-wrote

	// Drain: every shipper must deliver every event.
	deadline := time.Now().Add(60 * time.Second)
	for _, p := range procs {
		for {
			u, _, _ := p.rc.counts()
			if u >= events || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	time.Sleep(2 * time.Second) // late duplicates

	report(s, procs, events, loadWall, cpLat)
	for _, p := range procs {
		if u, d, _ := p.rc.counts(); u != events || d != 0 {
			return fmt.Errorf("%s: %d of %d events received, %d duplicates", p.name, u, events, d)
		}
	}
	return nil
}

// write appends rate events per second, one write each, until ctx ends;
// it returns how many it wrote.
func write(ctx context.Context, f *os.File, g *flinklog.Gen, w *written, rate int) int64 {
	start := time.Now()
	var b []byte
	for ctx.Err() == nil {
		due := int64(time.Since(start).Seconds() * float64(rate))
		for g.Seq() < due {
			seq := g.Seq()
			b = g.Append(b[:0])
			w.set(seq, time.Now().UnixNano())
			if _, err := f.Write(b); err != nil {
				log.Fatal(err)
			}
		}
		time.Sleep(time.Millisecond)
	}
	return g.Seq()
}

// checkpointLatency writes a "Completed checkpoint" line to the
// JobManager's log every 500 ms and polls the sidecar's /metrics until
// flink_checkpoints_total{status="completed"} moves.
func checkpointLatency(jmLog, metricsURL string, d time.Duration) ([]time.Duration, error) {
	f, err := os.OpenFile(jmLog, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// A job the fake JobManager runs (the watch names its series after
	// the REST answer), at checkpoint ids far beyond its REST history.
	job := jobID(0)
	var lat []time.Duration
	end := time.Now().Add(d)
	for id := int64(100001); time.Now().Before(end); id++ {
		before, err := completed(metricsURL)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		line := fmt.Sprintf("%s INFO  org.apache.flink.runtime.checkpoint.CheckpointCoordinator    [] - Completed checkpoint %d for job %s (6872 bytes, checkpointDuration=20 ms, finalizationTime=1 ms).\n",
			strings.Replace(now.Format("2006-01-02 15:04:05.000"), ".", ",", 1), id, job)
		if _, err := f.WriteString(line); err != nil {
			return nil, err
		}
		for {
			v, err := completed(metricsURL)
			if err != nil {
				return nil, err
			}
			if v > before {
				lat = append(lat, time.Since(now))
				break
			}
			if time.Since(now) > 10*time.Second {
				return nil, fmt.Errorf("checkpoint %d: flink_checkpoints_total unchanged after 10 s", id)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return lat, nil
}

// completed sums flink_checkpoints_total{status="completed"}.
func completed(url string) (float64, error) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "flink_checkpoints_total{") && strings.Contains(l, `status="completed"`) {
			if i := strings.LastIndexByte(l, ' '); i > 0 {
				v, _ := strconv.ParseFloat(l[i+1:], 64)
				sum += v
			}
		}
	}
	return sum, sc.Err()
}

// profile saves the TaskManager sidecar's CPU profile over d and its
// allocations over the same window (allocs-before.pb.gz as -base).
func profile(base, dir string, d time.Duration) {
	_ = os.MkdirAll(dir, 0o755)
	get := func(path, file string) {
		resp, err := http.Get(base + path)
		if err != nil {
			log.Printf("profile %s: %v", path, err)
			return
		}
		defer resp.Body.Close()
		out, err := os.Create(filepath.Join(dir, file))
		if err != nil {
			log.Printf("profile: %v", err)
			return
		}
		defer out.Close()
		_, _ = io.Copy(out, resp.Body)
	}
	get("/debug/pprof/allocs", "allocs-before.pb.gz")
	get(fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds())), "cpu.pb.gz")
	get("/debug/pprof/allocs", "allocs-after.pb.gz")
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

func report(s settings, procs []*proc, events int64, wall time.Duration, cpLat []time.Duration) {
	fmt.Printf("load: %d events/s for %s (one write per event, 5%% with a stack trace), %d events written in all; %d CPUs, %s\n",
		s.rate, wall.Round(time.Second), events, runtime.NumCPU(), runtime.Version())
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average at the end: %s", b)
	}
	fmt.Println()
	fmt.Printf("%-18s %10s %10s %10s %10s %10s %10s %10s %10s %10s %9s %9s %9s\n", "", "idle CPU", "idle RSS", "CPU", "sched CPU", "RSS", "anon", "file", "peak RSS", "received", "dups", "p50 push", "p99 push")
	for _, p := range procs {
		u, d, _ := p.rc.counts()
		p.rc.mu.Lock()
		lat := p.rc.lat
		p.rc.mu.Unlock()
		fmt.Printf("%-18s %9.3f%% %6.1f MiB %9.3f%% %9.3f%% %6.1f MiB %6.1f MiB %6.1f MiB %6.1f MiB %10d %9d %8.0fms %8.0fms\n", p.name,
			100*p.idleCPU.Seconds()/s.idle.Seconds(), float64(p.idleRSS)/1024,
			100*p.loadCPU.Seconds()/wall.Seconds(), 100*p.loadSched.Seconds()/wall.Seconds(), float64(p.loadRSS)/1024,
			float64(p.loadMem.Anon)/1024, float64(p.loadMem.File)/1024, float64(p.peakRSS)/1024,
			u, d, ms(quantile(lat, 0.5)), ms(quantile(lat, 0.99)))
	}
	fmt.Printf("\nlog line written → log-derived checkpoint metric (JobManager sidecar, %d checkpoints): p50 %.0f ms, p99 %.0f ms, max %.0f ms\n",
		len(cpLat), ms(quantile(cpLat, 0.5)), ms(quantile(cpLat, 0.99)), ms(quantile(cpLat, 1)))
	tm := procs[0]
	fmt.Println()
	for _, p := range procs[1:] {
		if p.loadCPU > 0 && tm.loadCPU > 0 {
			fmt.Printf("flink-agent TM / %-16s CPU %.3fx (schedstat %.3fx), RSS %.2fx\n", p.name+":", tm.loadCPU.Seconds()/p.loadCPU.Seconds(),
				tm.loadSched.Seconds()/p.loadSched.Seconds(), float64(tm.loadRSS)/float64(p.loadRSS))
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
