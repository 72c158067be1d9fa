package testbed

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// The jar tools.sh builds is the one JobJar names: both hash the job's
// sources the same way (step_job's own pipeline is run here).
func TestJobJarNamedLikeToolsSh(t *testing.T) {
	sh, err := os.ReadFile("../scripts/tools.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`hash=\$\(cd "\$ROOT/testbed/flinkjob" && (.+)\)\n`).FindSubmatch(sh)
	if m == nil {
		t.Fatal("tools.sh's step_job computes no hash of testbed/flinkjob")
	}
	cmd := exec.Command("bash", "-c", string(m[1]))
	cmd.Dir = "flinkjob"
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", m[1], err)
	}
	if got, want := jobSourcesHash(), strings.TrimSpace(string(out)); got != want || len(got) != 16 {
		t.Errorf("JobJar's source hash %q, tools.sh's %q", got, want)
	}
	if !strings.HasSuffix(JobJar("1.20.0"), "/flinkjob-1.20.0-"+jobSourcesHash()+".jar") {
		t.Errorf("JobJar = %s", JobJar("1.20.0"))
	}
}
