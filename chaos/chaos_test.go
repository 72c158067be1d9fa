package chaos

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flink-agent/flink-agent/testbed"
)

// rssLimit is the chart's memory limit; every agent runs with
// GOMEMLIMIT=128MiB and must stay below it.
const rssLimit = 128 << 20

// result is one row of the table.
type result struct {
	name      string
	written   int64 // log lines written (canary and case)
	delivered int64 // distinct written lines found in Loki
	dups      int64 // entries beyond the first of each line
	peakRSS   int64 // the agent's VmHWM, bytes; the largest of its runs
	problems  []string
}

func (r *result) fail(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func (r *result) check(ok bool, format string, args ...any) {
	if !ok {
		r.fail(format, args...)
	}
}

func (r *result) verdict() string {
	if len(r.problems) == 0 {
		return "pass"
	}
	return "FAIL: " + strings.Join(r.problems, "; ")
}

// env is what the cases share: the built agent and one real Loki.
type env struct {
	t    *testing.T
	ctx  context.Context
	bin  string
	loki *testbed.Loki
	dir  string
}

// chaosCase is one hostile case; it fills r.
type chaosCase struct {
	name string
	run  func(e *env, r *result)
}

// TestChaos runs every case, one after another (their RSS is measured
// alone), and prints the table. CHAOS_CASE=<regexp> runs only the cases
// whose names match.
func TestChaos(t *testing.T) {
	testbed.MustTool(t, "loki") // a missing Loki fails loudly; -short skips
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := &env{t: t, ctx: ctx, dir: t.TempDir()}
	e.bin = filepath.Join(e.dir, "flink-agent")
	build := exec.CommandContext(ctx, "go", "build", "-o", e.bin, "../cmd/flink-agent")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building flink-agent: %v\n%s", err, out)
	}
	loki, err := testbed.StartLoki(ctx, filepath.Join(e.dir, "loki"))
	if err != nil {
		t.Fatal(err)
	}
	defer loki.Stop()
	e.loki = loki

	only := regexp.MustCompile(os.Getenv("CHAOS_CASE")) // a subset, while working on one
	var results []*result
	for _, c := range cases {
		if !only.MatchString(c.name) {
			continue
		}
		r := &result{name: c.name}
		start := time.Now()
		c.run(e, r)
		if r.peakRSS > rssLimit {
			r.fail("peak RSS %s over 128 MiB", mib(r.peakRSS))
		}
		results = append(results, r)
		t.Logf("case %s: %s in %v", c.name, r.verdict(), time.Since(start).Round(100*time.Millisecond))
	}
	t.Logf("%-42s %8s %9s %5s %9s  %s", "case", "written", "delivered", "dups", "peak RSS", "verdict")
	for _, r := range results {
		t.Logf("%-42s %8d %9d %5d %9s  %s", r.name, r.written, r.delivered, r.dups, mib(r.peakRSS), r.verdict())
		if len(r.problems) > 0 {
			t.Errorf("%s: %s", r.name, r.verdict())
		}
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// agent is one run of the built binary.
type agent struct {
	e    *env
	proc *testbed.Proc
	addr string
	dir  string
}

// startAgent runs the agent with the YAML configuration cfg (the web
// address, the Loki URL and the case's external label are added), under
// GOMEMLIMIT=128MiB, and waits for /readyz.
func (e *env) startAgent(name, dir, cfg string, args ...string) *agent {
	e.t.Helper()
	return e.startAgentAs(nil, e.bin, name, dir, cfg, args...)
}

// startAgentAs is startAgent with the binary bin run as cred's user.
func (e *env) startAgentAs(cred *syscall.Credential, bin, name, dir, cfg string, args ...string) *agent {
	e.t.Helper()
	port, err := testbed.FreePort()
	if err != nil {
		e.t.Fatal(err)
	}
	a := &agent{e: e, addr: testbed.Addr(port), dir: dir}
	path := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		e.t.Fatal(err)
	}
	a.proc, err = testbed.StartProcAs("flink-agent", dir, []string{"GOMEMLIMIT=128MiB", "FLINK_CLUSTER=chaos", "POD_NAMESPACE=" + name},
		cred, bin, append([]string{"--config.file", path, "--web.listen-address", a.addr}, args...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(a.proc.Kill)
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	if err := testbed.WaitFor(ctx, a.proc, 50*time.Millisecond, func(ctx context.Context) error {
		_, err := a.get(ctx, "/readyz")
		return err
	}); err != nil {
		e.t.Fatalf("%s: %v\n%s", name, err, a.proc.Tail(4000))
	}
	return a
}

// baseConfig is a TaskManager sidecar (no REST scrape) shipping dir/*.log
// to the test's Loki, labelled chaos_case=<name>.
func (e *env) baseConfig(name, dir string) string {
	return fmt.Sprintf(`flink:
  rest_url: ""
logs:
  paths: [%q]
  positions_file: %q
loki:
  url: %q
  batch_wait: 200ms
  external_labels: {chaos_case: %q}
dogstatsd:
  address: ""
log:
  level: %s
`, filepath.Join(dir, "log", "*.log"), filepath.Join(dir, "positions.json"), e.loki.URL(), name, logLevel())
}

// logLevel is the agents' log level: debug with CHAOS_DEBUG set (each
// agent's output is <dir>/<case>/flink-agent.out, kept with -test.work…
// or printed by a failing case).
func logLevel() string {
	if os.Getenv("CHAOS_DEBUG") != "" {
		return "debug"
	}
	return "info"
}

func (a *agent) get(ctx context.Context, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.addr+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("%s: %s", path, resp.Status)
	}
	return string(b), err
}

// peakRSS is the process's high-water mark (VmHWM), in bytes.
func (a *agent) peakRSS() int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", a.proc.Pid()))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// stop ends the agent with SIGTERM, records its peak RSS in r, and
// returns everything it logged.
func (a *agent) stop(r *result) string {
	r.peakRSS = max(r.peakRSS, a.peakRSS())
	_ = a.proc.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(a.e.ctx, 30*time.Second)
	defer cancel()
	if err := a.proc.Wait(ctx); err != nil {
		r.fail("exit after SIGTERM: %v", err)
	}
	b, _ := os.ReadFile(a.proc.LogPath)
	return string(b)
}

// metric returns the sum of a metric's series on the agent's /metrics
// whose lines contain every one of match.
func (a *agent) metric(name string, match ...string) float64 {
	body, err := a.get(a.e.ctx, "/metrics")
	if err != nil {
		return -1
	}
	var sum float64
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(l, m)
		}
		if ok {
			v, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			sum += v
		}
	}
	return sum
}

// writer appends log lines to files, counting them. Every line carries
// "chaosid=<id>", unique in the case, by which Loki's entries are matched
// to what was written (a redacted line differs from the written one).
type writer struct {
	mu  sync.Mutex
	ids map[string]bool
}

func newWriter() *writer { return &writer{ids: map[string]bool{}} }

var idRE = regexp.MustCompile(`chaosid=(\S+)`)

// header is a Flink log4j header with the current time, so that Loki
// accepts the line whatever else the case does.
func header() string {
	return time.Now().Format("2006-01-02 15:04:05,000") + " INFO  org.apache.flink.runtime.taskexecutor.TaskExecutor        [] - "
}

// write appends one event per message to path; each message holds its
// chaosid.
func (w *writer) write(t *testing.T, path string, msgs ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	w.mu.Lock()
	for _, m := range msgs {
		id := idRE.FindStringSubmatch(m)
		if len(id) < 2 || w.ids[id[1]] {
			w.mu.Unlock()
			t.Fatalf("%q has no chaosid of its own", m)
		}
		w.ids[id[1]] = true
		buf.WriteString(header() + m + "\n")
	}
	w.mu.Unlock()
	if _, err := f.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
}

func (w *writer) written() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return int64(len(w.ids))
}

// canary writes n numbered events to dir/log/<name>.log, 20 ms apart: the
// ordinary traffic every case must deliver exactly once whatever else is
// going on.
func (w *writer) canary(t *testing.T, dir, name string, n int) {
	path := filepath.Join(dir, "log", "flink--taskexecutor-0-"+name+".log")
	for i := 0; i < n; i++ {
		w.write(t, path, fmt.Sprintf("canary line chaosid=%s-%d", name, i))
		time.Sleep(20 * time.Millisecond)
	}
}

// deliveries waits until Loki holds every line w wrote for the case (or
// for wait), then fills written, delivered and dups, and returns what Loki
// holds.
func (e *env) deliveries(name string, w *writer, r *result, wait time.Duration) []testbed.LokiEntry {
	e.t.Helper()
	sel := fmt.Sprintf(`{chaos_case=%q}`, name)
	start, deadline := time.Now().Add(-time.Hour), time.Now().Add(wait)
	var got []testbed.LokiEntry
	for {
		var err error
		got, err = e.loki.QueryAll(e.ctx, sel, start, time.Now().Add(time.Minute))
		if err != nil {
			e.t.Fatal(err)
		}
		if int64(len(got)) >= w.written() || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	seen := map[string]int{}
	r.delivered, r.dups = 0, 0
	for _, en := range got {
		if id := idRE.FindStringSubmatch(en.Line); id != nil {
			seen[id[1]]++
		}
	}
	r.written = w.written()
	for id, n := range seen {
		if w.ids[id] {
			r.delivered++
		}
		r.dups += int64(n - 1)
	}
	r.check(r.delivered == r.written, "%d of %d lines delivered", r.delivered, r.written)
	r.check(r.dups == 0, "%d duplicates", r.dups)
	return got
}

// lines of text that contain s, for failure messages.
func grep(text, s string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}
