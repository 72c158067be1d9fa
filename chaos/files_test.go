package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The file cases: what anything in Flink's container can put into the
// shared log directory. How the tail package handles each is in
// docs/shipper.md ("File handling cases").

// fileCase starts a TaskManager sidecar on dir/log and returns it and its
// log directory.
func (e *env) fileCase(name string) (*agent, string, string) {
	dir := filepath.Join(e.dir, name)
	logDir := filepath.Join(dir, "log")
	mkdir(e, logDir)
	return e.startAgent(name, dir, e.baseConfig(name, dir)), dir, logDir
}

// refusals is flink_agent_tail_refused_files_total{reason}.
func refusals(a *agent, reason string) float64 {
	return a.metric("flink_agent_tail_refused_files_total", `reason="`+reason+`"`)
}

// caseSymlinkOutside: links in the log directory to a file outside it and
// to the agent's own (mounted) Loki password: neither is read.
func caseSymlinkOutside(e *env, r *result) {
	const name = "symlink-outside"
	a, dir, logDir := e.fileCase(name)
	outside := filepath.Join(dir, "outside")
	mkdir(e, outside)
	secret := filepath.Join(outside, "shadow")
	creds := filepath.Join(outside, "loki-password")
	must(e, os.WriteFile(secret, []byte(header()+"root:chaosShadowHash:19000:0:99999:7:::\n"), 0o600))
	must(e, os.WriteFile(creds, []byte(header()+"chaosLokiPassword\n"), 0o600))
	must(e, os.Symlink(secret, filepath.Join(logDir, "x.log")))
	must(e, os.Symlink(creds, filepath.Join(logDir, "creds.log")))
	w := newWriter()
	w.canary(e.t, dir, name, 100)
	got := e.deliveries(name, w, r, 20*time.Second)
	for _, en := range got {
		if strings.Contains(en.Line, "chaosShadowHash") || strings.Contains(en.Line, "chaosLokiPassword") {
			r.fail("a file outside the log directory was shipped: %q", en.Line)
		}
	}
	n := refusals(a, "outside_log_directories")
	out := a.stop(r)
	r.check(n == 2, "flink_agent_tail_refused_files_total{reason=\"outside_log_directories\"} = %v, want 2", n)
	r.check(len(grep(out, "x.log")) <= 1 && len(grep(out, "creds.log")) <= 1, "refusals logged more than once per file: %q", grep(out, ".log"))
}

// caseSymlinkFIFO: a symlink flipped between a regular file beside the
// logs and a FIFO every 7 ms for 5 s. The FIFO is refused without
// blocking, the reader goes on with every other file, /healthz stays 200,
// and the regular target is shipped once.
func caseSymlinkFIFO(e *env, r *result) {
	const name = "symlink-fifo-flip"
	a, dir, logDir := e.fileCase(name)
	w := newWriter()
	target := filepath.Join(logDir, "target.data") // beside the logs, not matched by the glob
	w.write(e.t, target, numbered(200, "flip target line chaosid=target-%d")...)
	fifo := filepath.Join(logDir, "pipe.fifo")
	must(e, syscall.Mkfifo(fifo, 0o644))
	link := filepath.Join(logDir, "flip.log")
	flip := func(to string) { // atomically, as ln -sfn does not
		tmp := link + ".tmp"
		_ = os.Remove(tmp)
		if os.Symlink(to, tmp) == nil {
			_ = os.Rename(tmp, link)
		}
	}
	stop := make(chan struct{})
	flipped := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				flip(target)
				flipped <- n
				return
			case <-time.After(7 * time.Millisecond):
				if n%2 == 0 {
					flip(fifo)
				} else {
					flip(target)
				}
				n++
			}
		}
	}()
	healthy := 0
	canaryDone := make(chan struct{})
	go func() { defer close(canaryDone); w.canary(e.t, dir, name, 250) }()
	for i := 0; i < 10; i++ {
		time.Sleep(500 * time.Millisecond)
		if _, err := a.get(e.ctx, "/healthz"); err == nil {
			healthy++
		}
	}
	<-canaryDone
	close(stop)
	n := <-flipped
	e.deliveries(name, w, r, 20*time.Second)
	refused := refusals(a, "not_regular_file")
	a.stop(r)
	r.check(healthy == 10, "/healthz failed %d times of 10 while the link flipped", 10-healthy)
	r.check(refused >= 1, "flink_agent_tail_refused_files_total{reason=\"not_regular_file\"} = %v after %d flips", refused, n)
}

// caseThousandsOfFiles: a glob matching 5,000 small files: every line
// shipped once, the open-file limit (1,000) makes files take turns instead
// of starving, and that is said twice, not 244,876 times.
func caseThousandsOfFiles(e *env, r *result) {
	const name = "5000-files"
	a, _, logDir := e.fileCase(name)
	w := newWriter()
	for i := range 5000 {
		w.write(e.t, filepath.Join(logDir, fmt.Sprintf("flink--taskexecutor-%04d.log", i)),
			fmt.Sprintf("file %d first chaosid=f%d-a", i, i), fmt.Sprintf("file %d second chaosid=f%d-b", i, i))
	}
	e.deliveries(name, w, r, 90*time.Second)
	out := a.stop(r)
	warns := len(grep(out, "level=WARN"))
	r.check(warns <= 5, "%d warnings for 5,000 files", warns)
}

// caseTruncateRecreate: 20 plain truncates, then 20 deletes and
// recreations of one file, each after 250 lines were read: no line is
// shipped twice (it used to be 60,000-155,000 entries for 10,000 lines).
func caseTruncateRecreate(e *env, r *result) {
	const name = "truncate-recreate"
	a, _, logDir := e.fileCase(name)
	w := newWriter()
	path := filepath.Join(logDir, "flink--taskexecutor-0-trunc.log")
	var bytesWritten float64
	for round := range 40 {
		msgs := make([]string, 250)
		for i := range msgs {
			msgs[i] = fmt.Sprintf("round %d line %d chaosid=r%d-%d", round, i, round, i)
			bytesWritten += float64(len(header()) + len(msgs[i]) + 1)
		}
		w.write(e.t, path, msgs...)
		// Read before it goes: a truncation loses what was not read, by
		// its nature; this case is about duplicates.
		deadline := time.Now().Add(5 * time.Second)
		for a.metric("flink_agent_tail_bytes_total") < bytesWritten && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if round < 20 {
			must(e, os.Truncate(path, 0))
		} else {
			must(e, os.Remove(path))
		}
	}
	e.deliveries(name, w, r, 30*time.Second)
	a.stop(r)
}

// caseRenamedOutAndBack: a finished file renamed out of the glob for 4 s
// and back, then appended to: its lines are shipped once, the appended
// ones too.
func caseRenamedOutAndBack(e *env, r *result) {
	const name = "rename-out-and-back"
	a, _, logDir := e.fileCase(name)
	w := newWriter()
	path := filepath.Join(logDir, "flink--taskexecutor-0-done.log")
	w.write(e.t, path, numbered(500, "finished line chaosid=done-%d")...)
	e.deliveries(name, w, r, 20*time.Second)
	away := filepath.Join(logDir, "flink--taskexecutor-0-done.moved")
	must(e, os.Rename(path, away))
	time.Sleep(4 * time.Second)
	must(e, os.Rename(away, path))
	time.Sleep(2 * time.Second)
	w.write(e.t, path, "appended after the way back chaosid=done-after")
	r.problems = nil // the first count was a wait, not a verdict
	e.deliveries(name, w, r, 20*time.Second)
	a.stop(r)
}

// caseTwoPaths: one file under three names in the glob (itself, a
// symlink, a hard link): shipped once.
func caseTwoPaths(e *env, r *result) {
	const name = "one-file-three-names"
	a, _, logDir := e.fileCase(name)
	w := newWriter()
	file := filepath.Join(logDir, "flink--taskexecutor-0-real.log")
	w.write(e.t, file, numbered(300, "one file line chaosid=real-%d")...)
	must(e, os.Symlink(file, filepath.Join(logDir, "alias.log")))
	must(e, os.Link(file, filepath.Join(logDir, "hard.log")))
	time.Sleep(2 * time.Second) // scans see all three names
	e.deliveries(name, w, r, 20*time.Second)
	a.stop(r)
}

// caseUnreadable: a file nobody may read for 3 s (the agent runs as nobody
// when the test is root: root reads everything), then readable: one
// warning when that starts, one line when it ends, its lines shipped once.
func caseUnreadable(e *env, r *result) {
	const name = "unreadable-file"
	base, err := os.MkdirTemp("", "chaos-unreadable-")
	must(e, err)
	e.t.Cleanup(func() { _ = os.RemoveAll(base) })
	logDir := filepath.Join(base, "log")
	mkdir(e, logDir)
	bin := filepath.Join(base, "flink-agent")
	b, err := os.ReadFile(e.bin)
	must(e, err)
	must(e, os.WriteFile(bin, b, 0o755))
	for _, d := range []string{base, logDir} {
		must(e, os.Chmod(d, 0o777))
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	w := newWriter()
	locked := filepath.Join(logDir, "flink--taskexecutor-0-locked.log")
	w.write(e.t, locked, numbered(50, "locked line chaosid=locked-%d")...)
	must(e, os.Chmod(locked, 0))
	a := e.startAgentAs(cred, bin, name, base, e.baseConfig(name, base))
	w.canary(e.t, base, name, 150) // 3 s
	must(e, os.Chmod(locked, 0o644))
	e.deliveries(name, w, r, 20*time.Second)
	out := a.stop(r)
	r.check(len(grep(out, "cannot read log file")) == 1, "%d warnings of the unreadable file, want 1", len(grep(out, "cannot read log file")))
	r.check(len(grep(out, "no longer unreadable")) == 1, "%d notices of its end, want 1", len(grep(out, "no longer unreadable")))
}

// numbered is n messages: format filled with the number, a chaosid in it.
func numbered(n int, format string) []string {
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = fmt.Sprintf(format, i)
	}
	return msgs
}

func must(e *env, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}
