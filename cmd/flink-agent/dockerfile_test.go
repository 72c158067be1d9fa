package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// No Docker engine runs here, so the Dockerfile is checked by parts: its
// build command, run as written, gives a static binary; the final stage is
// distroless/static running as Flink's uid/gid 9999; and that binary runs
// as 9999 without anything from the build stage.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := strings.ReplaceAll(string(raw), "\\\n", " ")
	stages := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(stages) != 2 || !strings.HasPrefix(stages[1][1], "gcr.io/distroless/static") {
		t.Fatalf("want a build stage and a distroless/static final stage, got %v", stages)
	}
	if !regexp.MustCompile(`(?m)^USER 9999:9999\s*$`).MatchString(df) {
		t.Error("final stage must run as USER 9999:9999 (Flink's uid/gid)")
	}
	build := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build [^&\n]*?)\s+(&&|$)`).FindStringSubmatch(df)
	if build == nil {
		t.Fatal("no `RUN CGO_ENABLED=0 go build` in the Dockerfile")
	}

	// A directory uid 9999 can enter (t.TempDir's parent is private).
	dir, err := os.MkdirTemp("", "flink-agent-docker")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "flink-agent")
	cmdline := strings.NewReplacer("${VERSION}", "test", "${COMMIT}", "abc123", "/out/flink-agent", out, "./cmd/flink-agent", ".").Replace(build[1])
	cmd := exec.Command("sh", "-c", cmdline)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("binary has an ELF interpreter: not static, it would not start on distroless/static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("binary links %v", libs)
	}

	// As uid/gid 9999, like the image.
	run := exec.Command(out, "--version")
	if os.Geteuid() == 0 {
		run.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 9999, Gid: 9999}}
	}
	b, err := run.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "flink-agent test (commit abc123") {
		t.Fatalf("--version as 9999: %v %s", err, b)
	}
}
