package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/testbed"
)

var agentBin string

// TestMain builds the real binary once, with make build as a user does:
// these tests run it as a user would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flink-agent-bin")
	if err != nil {
		panic(err)
	}
	agentBin = filepath.Join(dir, "flink-agent")
	out, err := exec.Command("make", "-s", "-C", "../..", "build", "BUILD_OUT="+agentBin).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "make build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func runAgent(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(agentBin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// Every bad config in internal/config/testdata/bad makes check-config exit 2
// with the same message the config package's table pins down.
func TestCheckConfigRejectsBadConfigs(t *testing.T) {
	files, _ := filepath.Glob("../../internal/config/testdata/bad/*.yaml")
	if len(files) < 20 {
		t.Fatalf("only %d bad configs found", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := loadErr(f)
			if want == "" {
				t.Fatal("config package accepts it")
			}
			for _, args := range [][]string{
				{"check-config", "--config.file", f},
				{"--config.file", f, "check-config"},
				{"--config.file", f}, // startup fails the same way
			} {
				_, stderr, code := runAgent(t, args...)
				if code != 2 {
					t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, stderr)
				}
				if !strings.Contains(stderr, want) {
					t.Errorf("%v: stderr %q does not contain %q", args, stderr, want)
				}
			}
		})
	}
}

func loadErr(path string) string {
	c, err := config.Load(path)
	if err == nil {
		err = c.Validate()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestCheckConfigAcceptsExample(t *testing.T) {
	stdout, stderr, code := runAgent(t, "check-config", "--config.file", "../../examples/flink-agent.yaml")
	if code != 0 || !strings.Contains(stdout, "configuration OK") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestFlagsOverrideFileAndAreValidated(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--flink.scrape-interval=0s"}, "flink.scrape_interval: must be at least 1s, got 0s"},
		{[]string{"--loki.url=loki:3100"}, `loki.url: invalid URL "loki:3100"`},
		{[]string{"--loki.url=ftp://u:pw@loki"}, `loki.url: invalid URL "ftp://u:xxxxx@loki"`}, // credentials masked
		{[]string{"--config.file", "../../examples/flink-agent.yaml", "--log.format=xml"}, `log.format: must be one of logfmt, json, got "xml"`},
		{[]string{"--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		_, stderr, code := runAgent(t, append([]string{"check-config"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	// An empty --flink.rest-url is valid: it is how TaskManager sidecars run.
	if _, stderr, code := runAgent(t, "check-config", "--flink.rest-url=", "--loki.url=http://127.0.0.1:3100"); code != 0 {
		t.Errorf("empty rest url: exit %d, %s", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	stdout, _, code := runAgent(t, "--version")
	if code != 0 || !regexp.MustCompile(`^flink-agent \S+ \(commit \S+, go1\.\d+`).MatchString(stdout) {
		t.Fatalf("exit %d, %q", code, stdout)
	}
}

// The agent serves its endpoints, becomes ready after its first tail pass,
// and exits 0 within --shutdown.timeout on SIGTERM.
func TestServeAndGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	logDir := logDirWithLine(t, dir)
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := testbed.Addr(port)
	p, err := testbed.StartProc("flink-agent", dir, []string{"FLINK_CLUSTER=orders", "POD_NAMESPACE=streaming"}, agentBin,
		"--flink.rest-url=", "--loki.url=", "--dogstatsd.address=",
		"--logs.path="+filepath.Join(logDir, "*.log"),
		"--logs.positions-file="+filepath.Join(dir, "positions.json"),
		"--web.listen-address="+addr, "--shutdown.timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := "http://" + addr
	if err := testbed.WaitFor(ctx, p, 50*time.Millisecond, func(ctx context.Context) error {
		return expectStatus(ctx, base+"/readyz", 200)
	}); err != nil {
		t.Fatal(err)
	}
	if err := expectStatus(ctx, base+"/healthz", 200); err != nil {
		t.Fatal(err)
	}
	body, err := get(ctx, base+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "flink_agent_build_info{") || !strings.Contains(body, `cluster="orders"`) {
		t.Errorf("/metrics lacks build info or cluster label:\n%.2000s", body)
	}
	// make build stamps what git says about this tree.
	for label, cmd := range map[string][]string{
		"version":  {"git", "describe", "--tags", "--always", "--dirty"},
		"revision": {"git", "rev-parse", "HEAD"},
	} {
		out, err := exec.Command(cmd[0], cmd[1:]...).Output()
		if err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
		want := fmt.Sprintf(`%s=%q`, label, strings.TrimSpace(string(out)))
		if line := buildInfo(body); !strings.Contains(line, want) {
			t.Errorf("flink_agent_build_info lacks %s: %s", want, line)
		}
	}

	start := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.Tail(2000))
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v to stop, shutdown.timeout is 5s", took)
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}

func buildInfo(metrics string) string {
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "flink_agent_build_info{") {
			return l
		}
	}
	return ""
}

// logDirWithLine makes dir/log with one TaskManager log line in it.
func logDirWithLine(t *testing.T, dir string) string {
	t.Helper()
	logDir := filepath.Join(dir, "log")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(logDir, "flink--taskexecutor-0-host.log"),
		[]byte("2026-11-23 10:00:00,000 INFO  org.apache.flink.runtime.taskexecutor.TaskExecutor [] - Starting.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return logDir
}

func get(ctx context.Context, url string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), err
}

func expectStatus(ctx context.Context, url string, want int) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s: %d, want %d", url, resp.StatusCode, want)
	}
	return nil
}

// --web.config.file takes exporter-toolkit's web configuration: with basic
// auth, the metrics (at --web.telemetry-path) and the landing page answer
// 401 without credentials and 200 with them; /healthz and /readyz answer
// without, as kubelet probes have none.
func TestWebConfigBasicAuth(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webConfig, []byte("basic_auth_users:\n  prometheus: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := testbed.Addr(port)
	p, err := testbed.StartProc("flink-agent", dir, nil, agentBin,
		"--flink.rest-url=", "--loki.url=", "--dogstatsd.address=", "--logs.path="+filepath.Join(dir, "*.log"),
		"--logs.positions-file="+filepath.Join(dir, "positions.json"), "--web.listen-address="+addr,
		"--web.config.file="+webConfig, "--web.telemetry-path=/agent-metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := "http://" + addr + "/agent-metrics"
	if err := testbed.WaitFor(ctx, p, 50*time.Millisecond, func(ctx context.Context) error {
		return expectStatus(ctx, url, http.StatusUnauthorized)
	}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if err := testbed.WaitFor(ctx, p, 50*time.Millisecond, func(ctx context.Context) error {
			return expectStatus(ctx, "http://"+addr+path, http.StatusOK)
		}); err != nil {
			t.Errorf("probe without credentials: %v", err)
		}
	}
	for _, path := range []string{"/", "/healthz/", "//healthz", "/metrics"} {
		if err := expectStatus(ctx, "http://"+addr+path, http.StatusUnauthorized); err != nil {
			t.Error(err)
		}
	}
	for _, c := range []struct {
		user, pass string
		want       int
	}{{"prometheus", "wrong", http.StatusUnauthorized}, {"prometheus", "s3cret", http.StatusOK}} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
		req.SetBasicAuth(c.user, c.pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s:%s → %d, want %d", c.user, c.pass, resp.StatusCode, c.want)
		}
		if c.want == http.StatusOK && !strings.Contains(string(b), "flink_agent_build_info{") {
			t.Errorf("metrics with credentials lack build info:\n%.500s", b)
		}
	}
	// A malformed web configuration stops the agent at startup.
	bad := filepath.Join(dir, "bad-web.yml")
	if err := os.WriteFile(bad, []byte("basic_auth_users: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runAgent(t, "--flink.rest-url=", "--loki.url=", "--dogstatsd.address=", "--web.listen-address=127.0.0.1:0",
		"--logs.path="+filepath.Join(dir, "*.log"), "--logs.positions-file="+filepath.Join(dir, "p2.json"), "--web.config.file="+bad); code != 1 ||
		!strings.Contains(stderr, "web.config_file") {
		t.Errorf("bad web config: exit %d, %s", code, stderr)
	}
}

// TestOwnLogCarriesNoCredentials runs the agent at debug level with
// credentials in the Flink REST URL (user info and a token parameter), in
// the Loki URL, and in a Loki header, lets the scrape and the push fail
// (both log their URLs and net/http's errors), and greps everything it
// printed.
func TestOwnLogCarriesNoCredentials(t *testing.T) {
	dir := t.TempDir()
	logDir := logDirWithLine(t, dir)
	var sawAuth atomic.Bool
	flink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, p, ok := r.BasicAuth(); ok && p == "PASS-rest" {
			sawAuth.Store(true)
		}
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
	}))
	defer flink.Close()
	lokiPort, err := testbed.FreePort() // nothing listens: every push fails
	if err != nil {
		t.Fatal(err)
	}
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	restURL := strings.Replace(flink.URL, "http://", "http://flink:PASS-rest@", 1) + "/?token=TOK-rest"
	cfg := fmt.Sprintf(`flink:
  rest_url: %q
logs:
  paths: [%q]
  positions_file: %q
loki:
  url: "http://loki:PASS-loki@%s/?token=TOK-loki&tenant=t1"
  headers: {X-Scope-Secret: HDR-secret}
  min_backoff: 100ms
  max_backoff: 200ms
dogstatsd: {address: ""}
log: {level: debug}
web: {listen_address: %q}
`, restURL, filepath.Join(logDir, "*.log"), filepath.Join(dir, "positions.json"), testbed.Addr(lokiPort), testbed.Addr(port))
	cfgPath := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := testbed.StartProc("flink-agent", dir, nil, agentBin, "--config.file", cfgPath, "--shutdown.timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := testbed.WaitFor(ctx, p, 100*time.Millisecond, func(context.Context) error {
		if out := p.Tail(1 << 20); !strings.Contains(out, "Loki push failing") || !strings.Contains(out, "Flink REST scrape failed") {
			return errors.New("no failed scrape and push logged yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = p.Signal(syscall.SIGTERM)
	_ = p.Wait(ctx)
	out := p.Tail(1 << 20)
	for _, secret := range []string{"PASS-rest", "TOK-rest", "PASS-loki", "TOK-loki", "HDR-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("the agent logged %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "flink:xxxxx@") || !strings.Contains(out, "token=xxxxx") {
		t.Errorf("the URLs were not logged (masked) at all, so this test proves nothing:\n%s", out)
	}
	if !sawAuth.Load() {
		t.Error("the REST URL's user info did not reach Flink as basic auth")
	}
}
