// Package testbed starts real components — Flink, Loki, statsd_exporter,
// Prometheus, Alertmanager, an S3-compatible endpoint — on free loopback
// ports, waits until they are ready, and stops them without leaving orphans. Integration tests and
// `make demo` use it; `make tools` installs what it runs.
package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// CacheDir is where scripts/tools.sh puts tool builds, jars and downloads.
func CacheDir() string {
	if d := os.Getenv("FLINK_AGENT_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "flink-agent")
}

// Tool finds an installed tool in the cache's bin/ or on PATH. The error says
// how to install it: a missing tool fails its test, it never skips it.
func Tool(name string) (string, error) {
	p := filepath.Join(CacheDir(), "bin", name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s is not installed (looked in %s and PATH): run `make tools`", name, filepath.Join(CacheDir(), "bin"))
}

// MustTool is Tool for tests: a missing tool fails the test loudly (under
// go test -short the test is skipped: see NeedsTools).
func MustTool(t interface {
	Helper()
	Fatalf(string, ...any)
	Skip(...any)
}, name string) string {
	t.Helper()
	NeedsTools(t)
	p, err := Tool(name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return p
}

// NeedsTools skips the calling test under go test -short, the fast inner
// loop that runs only what needs no installed tool. Without -short (make
// test, CI) the test runs, and a missing tool fails it loudly.
func NeedsTools(t interface {
	Helper()
	Skip(...any)
}) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the test bed's tools (make tools); skipped by -short")
	}
}
