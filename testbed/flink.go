package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// JobClass is the test bed job's entry class (testbed/flinkjob).
const JobClass = "io.flinkagent.testbed.CheckpointingJob"

// Fault switches the test bed job reads at every snapshot, and source
// switches its readers check every 100 ms (see CheckpointingJob, PacedSource).
const (
	// FaultFail fails every snapshot's asynchronous phase: tasks decline
	// the checkpoint ("Asynchronous task checkpoint failed.") and keep running.
	FaultFail = "fail"
	// FaultFailSync makes every snapshot throw in its synchronous phase: the
	// task fails, so the checkpoint fails ("Task has failed.") and the job restarts.
	FaultFailSync = "fail-sync"
	// FaultSleepMS makes every snapshot sleep that many milliseconds: with a
	// value above the checkpoint timeout, checkpoints expire.
	FaultSleepMS = "sleep-ms"
	// SourceStall makes the source stop reading: its backlog
	// (pendingRecords) grows, the watermark and the output stand still,
	// checkpoints go on completing.
	SourceStall = "stall"
	// SourceLate with a value N makes every N-th record a minute late, so
	// the job's event-time window drops it (numLateRecordsDropped).
	SourceLate = "late"
)

// S3Endpoint is where Flink's flink-s3-fs-presto plugin sends its requests.
type S3Endpoint struct {
	URL       string // http://127.0.0.1:port
	AccessKey string
	SecretKey string
}

// FlinkOptions configures StartFlink. The zero value is a working cluster
// checkpointing nowhere; set CheckpointDir to checkpoint.
type FlinkOptions struct {
	Version string // default FlinkVersion()
	// LogDir receives flink--standalonesession-0-<host>.log and
	// flink--taskexecutor-0-<host>.log (plus the JVMs' stdout as *.out).
	// Default: a new directory under WorkDir.
	LogDir string
	// WorkDir holds config, control, tmp and default checkpoint dirs. Default:
	// a new temporary directory, removed by Stop.
	WorkDir string
	// CheckpointDir is a URI: file:///… or s3p://bucket/path. Default:
	// file://<WorkDir>/checkpoints.
	CheckpointDir string
	S3            *S3Endpoint // for s3p:// checkpoint dirs

	CheckpointInterval time.Duration // default 1s; negative disables checkpointing
	CheckpointTimeout  time.Duration // default 10s
	// TolerableFailedCheckpoints before Flink fails the job over; default
	// 1000 so fault injection does not restart the job. Set to -1 for 0.
	TolerableFailedCheckpoints int
	Slots                      int // TaskManager slots, default 8
	// LogMaxFileSize is the rolling appender's size trigger (log4j syntax,
	// e.g. "10KB"); default Flink's "100MB".
	LogMaxFileSize string
	LogMaxFiles    int // default Flink's 10
	// Extra is added to config.yaml last, overriding the keys above.
	Extra map[string]string
	// StartTimeout bounds waiting for REST to show the TaskManager; default 90s.
	StartTimeout time.Duration
}

// Flink is a running JobManager and TaskManager.
type Flink struct {
	Version    string
	LogDir     string
	WorkDir    string
	ConfDir    string
	ControlDir string // fault switch files; passed to jobs by SubmitJob
	JMLog      string // JobManager log4j file
	TMLog      string // TaskManager log4j file
	JM, TM     *Proc
	restURL    string
	jar        string
	client     *http.Client
	ownWork    bool
	stopOnce   sync.Once
}

// FlinkHome is the cached Flink assembled by `scripts/tools.sh flink`.
func FlinkHome(version string) string {
	return filepath.Join(CacheDir(), "flink-"+version)
}

// Java 17 needs these for Flink; they are Flink's default env.java.opts.all,
// which only Flink's bash scripts would otherwise apply.
var javaModuleOpts = []string{
	"--add-exports=java.base/sun.net.util=ALL-UNNAMED",
	"--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
	"--add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED",
	"--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
	"--add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED",
	"--add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED",
	"--add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED",
	"--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
	"--add-opens=java.base/java.lang=ALL-UNNAMED",
	"--add-opens=java.base/java.net=ALL-UNNAMED",
	"--add-opens=java.base/java.io=ALL-UNNAMED",
	"--add-opens=java.base/java.nio=ALL-UNNAMED",
	"--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
	"--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
	"--add-opens=java.base/java.text=ALL-UNNAMED",
	"--add-opens=java.base/java.time=ALL-UNNAMED",
	"--add-opens=java.base/java.util=ALL-UNNAMED",
	"--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
	"--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
	"--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED",
}

// log4j2 properties reproducing Flink's conf/log4j.properties (the rolling
// MainAppender and its layout); size and count are parameters so tests can
// make it rotate.
const log4jTemplate = `monitorInterval=30
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = MainAppender
logger.pekko.name = org.apache.pekko
logger.pekko.level = INFO
logger.kafka.name= org.apache.kafka
logger.kafka.level = INFO
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = WARN
logger.zookeeper.name = org.apache.zookeeper
logger.zookeeper.level = INFO
logger.shaded_zookeeper.name = org.apache.flink.shaded.zookeeper3
logger.shaded_zookeeper.level = INFO
appender.main.name = MainAppender
appender.main.type = RollingFile
appender.main.append = true
appender.main.fileName = ${sys:log.file}
appender.main.filePattern = ${sys:log.file}.%%i
appender.main.layout.type = PatternLayout
appender.main.layout.pattern = %%d{yyyy-MM-dd HH:mm:ss,SSS} %%-5p %%-60c %%x - %%m%%n
appender.main.policies.type = Policies
appender.main.policies.size.type = SizeBasedTriggeringPolicy
appender.main.policies.size.size = %s
appender.main.policies.startup.type = OnStartupTriggeringPolicy
appender.main.strategy.type = DefaultRolloverStrategy
appender.main.strategy.max = %d
logger.netty.name = org.jboss.netty.channel.DefaultChannelPipeline
logger.netty.level = OFF
`

// StartFlink writes a config dir and starts a JobManager and a TaskManager
// JVM on free loopback ports, returning once REST shows the TaskManager with
// all its slots. On error nothing is left running and the error carries the
// tail of the failing JVM's log.
func StartFlink(ctx context.Context, o FlinkOptions) (*Flink, error) {
	if o.Version == "" {
		o.Version = FlinkVersion()
	}
	home := FlinkHome(o.Version)
	if _, err := os.Stat(filepath.Join(home, ".complete")); err != nil {
		return nil, fmt.Errorf("flink %s is not installed in %s: run `make tools` (or `FLINK_VERSION=%s scripts/tools.sh flink job`)", o.Version, home, o.Version)
	}
	java, err := Tool("java")
	if err != nil {
		return nil, err
	}
	f := &Flink{Version: o.Version, WorkDir: o.WorkDir, client: &http.Client{Timeout: 30 * time.Second}}
	if f.WorkDir == "" {
		if f.WorkDir, err = os.MkdirTemp("", "testbed-flink-"); err != nil {
			return nil, err
		}
		f.ownWork = true
	}
	fail := func(err error) (*Flink, error) {
		f.Stop()
		return nil, err
	}
	f.LogDir = o.LogDir
	if f.LogDir == "" {
		f.LogDir = filepath.Join(f.WorkDir, "log")
	}
	f.ConfDir = filepath.Join(f.WorkDir, "conf")
	f.ControlDir = filepath.Join(f.WorkDir, "control")
	tmp := filepath.Join(f.WorkDir, "tmp")
	for _, d := range []string{f.LogDir, f.ConfDir, f.ControlDir, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fail(err)
		}
	}
	host, err := os.Hostname()
	if err != nil {
		return fail(err)
	}
	f.JMLog = filepath.Join(f.LogDir, "flink--standalonesession-0-"+host+".log")
	f.TMLog = filepath.Join(f.LogDir, "flink--taskexecutor-0-"+host+".log")

	ports := make([]int, 5)
	for i := range ports {
		if ports[i], err = FreePort(); err != nil {
			return fail(err)
		}
	}
	restPort := ports[0]
	f.restURL = "http://" + Addr(restPort)

	ver, err := ParseVersion(o.Version)
	if err != nil {
		return fail(err)
	}
	if o.S3 != nil {
		if _, err := os.Stat(filepath.Join(home, "plugins", "s3-fs-presto", "VERSION")); err != nil {
			return fail(fmt.Errorf("flink %s has no flink-s3-fs-presto plugin (Maven Central has none for its line): S3 checkpoints need another version", o.Version))
		}
	}
	cfg, err := flinkConfig(o, f, ports, tmp)
	if err != nil {
		return fail(err)
	}
	// 1.19 and later read conf/config.yaml (standard YAML; 2.x reads nothing
	// else); 1.18 reads only flink-conf.yaml, whose parser splits lines at
	// ": " and keeps quotes.
	confFile, conf := "config.yaml", cfg.yaml()
	if !ver.AtLeast(1, 19) {
		confFile = "flink-conf.yaml"
		if conf, err = cfg.legacy(); err != nil {
			return fail(err)
		}
	}
	if err := os.WriteFile(filepath.Join(f.ConfDir, confFile), []byte(conf), 0o644); err != nil {
		return fail(err)
	}
	maxSize, maxFiles := o.LogMaxFileSize, o.LogMaxFiles
	if maxSize == "" {
		maxSize = "100MB"
	}
	if maxFiles <= 0 {
		maxFiles = 10
	}
	log4j := filepath.Join(f.ConfDir, "log4j.properties")
	if err := os.WriteFile(log4j, []byte(fmt.Sprintf(log4jTemplate, maxSize, maxFiles)), 0o644); err != nil {
		return fail(err)
	}

	env := []string{"FLINK_PLUGINS_DIR=" + filepath.Join(home, "plugins"), "FLINK_CONF_DIR=" + f.ConfDir}
	jvm := func(heap string, logFile string, extra ...string) []string {
		args := []string{
			"-Xms" + heap, "-Xmx" + heap, "-XX:MaxMetaspaceSize=256m",
			// C1 only: these JVMs run briefly, and the machine's cores are shared.
			"-XX:TieredStopAtLevel=1", "-XX:+UseG1GC",
		}
		args = append(args, extra...)
		args = append(args, javaModuleOpts...)
		return append(args,
			"-Dlog.file="+logFile,
			"-Dlog4j.configurationFile=file:"+log4j,
			"-classpath", filepath.Join(home, "lib", "*"))
	}
	jmArgs := append(jvm("256m", f.JMLog),
		"org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint", "--configDir", f.ConfDir)
	if f.JM, err = StartProc("jobmanager", f.LogDir, env, java, jmArgs...); err != nil {
		return fail(err)
	}
	// Heap = framework.heap + task.heap; direct = framework.off-heap +
	// task.off-heap + network, as Flink's scripts would compute them.
	tmArgs := append(jvm("224m", f.TMLog, "-XX:MaxDirectMemorySize=256m"),
		"org.apache.flink.runtime.taskexecutor.TaskManagerRunner", "--configDir", f.ConfDir)
	if f.TM, err = StartProc("taskmanager", f.LogDir, env, java, tmArgs...); err != nil {
		return fail(err)
	}

	timeout := o.StartTimeout
	if timeout <= 0 {
		timeout = 90 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	slots := o.Slots
	if slots <= 0 {
		slots = 8
	}
	// Either JVM dying is fatal: WaitFor watches the JobManager, tmDone the TaskManager.
	wctx, stopWait := context.WithCancelCause(wctx)
	defer stopWait(nil)
	go func() {
		select {
		case <-f.TM.Done():
			stopWait(errTMExited)
		case <-wctx.Done():
		}
	}()
	err = WaitFor(wctx, f.JM, 250*time.Millisecond, func(ctx context.Context) error {
		var ov struct {
			TaskManagers int `json:"taskmanagers"`
			SlotsTotal   int `json:"slots-total"`
		}
		if err := f.GetJSON(ctx, "/overview", &ov); err != nil {
			return err
		}
		if ov.TaskManagers < 1 || ov.SlotsTotal < slots {
			return fmt.Errorf("overview: %d taskmanagers, %d slots", ov.TaskManagers, ov.SlotsTotal)
		}
		return nil
	})
	if err != nil {
		msg := err.Error() + "\n--- " + f.JMLog + " (tail) ---\n" + tailFile(f.JMLog, 4000)
		if f.TM.Exited() {
			msg = errTMExited.Error() + ": " + msg
			msg += "\n--- " + f.TM.LogPath + " (tail) ---\n" + f.TM.Tail(4000) +
				"\n--- " + f.TMLog + " (tail) ---\n" + tailFile(f.TMLog, 4000)
		}
		return fail(errors.New("flink did not start: " + msg))
	}
	return f, nil
}

var errTMExited = errors.New("taskmanager exited")

func flinkConfig(o FlinkOptions, f *Flink, ports []int, tmp string) (flinkConf, error) {
	slots := o.Slots
	if slots <= 0 {
		slots = 8
	}
	interval, timeout := o.CheckpointInterval, o.CheckpointTimeout
	if interval == 0 {
		interval = time.Second
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	tolerable := o.TolerableFailedCheckpoints
	switch {
	case tolerable == 0:
		tolerable = 1000
	case tolerable < 0:
		tolerable = 0
	}
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + " ms" }
	c := flinkConf{
		"jobmanager.rpc.address":        "127.0.0.1",
		"jobmanager.bind-host":          "127.0.0.1",
		"jobmanager.rpc.port":           strconv.Itoa(ports[1]),
		"rest.address":                  "127.0.0.1",
		"rest.bind-address":             "127.0.0.1",
		"rest.port":                     strconv.Itoa(ports[0]),
		"blob.server.port":              strconv.Itoa(ports[2]),
		"taskmanager.host":              "127.0.0.1",
		"taskmanager.bind-host":         "127.0.0.1",
		"taskmanager.rpc.port":          strconv.Itoa(ports[3]),
		"taskmanager.data.port":         strconv.Itoa(ports[4]),
		"taskmanager.numberOfTaskSlots": strconv.Itoa(slots),
		// TaskManagerRunner started without Flink's scripts needs every
		// component set explicitly (BashJavaUtils would derive them).
		"taskmanager.cpu.cores":                                strconv.Itoa(slots),
		"taskmanager.memory.framework.heap.size":               "64m",
		"taskmanager.memory.task.heap.size":                    "160m",
		"taskmanager.memory.framework.off-heap.size":           "96m",
		"taskmanager.memory.task.off-heap.size":                "32m",
		"taskmanager.memory.network.min":                       "64m",
		"taskmanager.memory.network.max":                       "64m",
		"taskmanager.memory.managed.size":                      "16m",
		"taskmanager.memory.jvm-metaspace.size":                "256m",
		"taskmanager.memory.jvm-overhead.min":                  "192m",
		"taskmanager.memory.jvm-overhead.max":                  "192m",
		"io.tmp.dirs":                                          tmp,
		"web.tmpdir":                                           filepath.Join(tmp, "web"),
		"web.upload.dir":                                       filepath.Join(tmp, "upload"),
		"state.backend.type":                                   "hashmap",
		"execution.checkpointing.timeout":                      ms(timeout),
		"execution.checkpointing.tolerable-failed-checkpoints": strconv.Itoa(tolerable),
		"restart-strategy.type":                                "fixed-delay",
		"restart-strategy.fixed-delay.attempts":                "1000",
		"restart-strategy.fixed-delay.delay":                   "1 s",
		// Both JVMs start at once; a TaskManager that finds no ResourceManager
		// yet retries after this instead of the default 10 s.
		"cluster.registration.error-delay": "500",
		"heartbeat.timeout":                "30000",
		"blob.storage.directory":           filepath.Join(tmp, "blob"),
	}
	if o.CheckpointInterval >= 0 {
		c["execution.checkpointing.interval"] = ms(interval)
	}
	dir := o.CheckpointDir
	if dir == "" {
		dir = "file://" + filepath.Join(f.WorkDir, "checkpoints")
	}
	// 1.x reads state.checkpoints.dir, 2.x execution.checkpointing.dir; each
	// ignores the other's key.
	c["state.checkpoints.dir"] = dir
	c["execution.checkpointing.dir"] = dir
	if s := o.S3; s != nil {
		c["s3.endpoint"] = s.URL
		c["s3.path.style.access"] = "true"
		c["s3.access-key"] = s.AccessKey
		c["s3.secret-key"] = s.SecretKey
		c["s3.ssl.enabled"] = strconv.FormatBool(strings.HasPrefix(s.URL, "https://"))
		// Few, short retries so throttling surfaces within seconds.
		c["s3.max-error-retries"] = "0"
		c["s3.max-client-retries"] = "1"
		c["s3.max-backoff-time"] = "200ms"
		c["s3.max-retry-time"] = "2s"
		c["s3.connect-timeout"] = "2s"
		c["s3.socket-timeout"] = "5s"
	}
	for k, v := range o.Extra {
		c[k] = v
	}
	return c, nil
}

// flinkConf is a Flink configuration, key → value.
type flinkConf map[string]string

func (c flinkConf) keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// yaml writes config.yaml: every value a JSON string, which is a YAML scalar.
func (c flinkConf) yaml() string {
	var b strings.Builder
	b.WriteString("# written by testbed.StartFlink\n")
	for _, k := range c.keys() {
		v, _ := json.Marshal(c[k])
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	return b.String()
}

// legacy writes Flink 1.18's flink-conf.yaml: "key: value" lines, values
// unquoted (its parser cuts a line at "#", so no value may hold one).
func (c flinkConf) legacy() (string, error) {
	var b strings.Builder
	b.WriteString("# written by testbed.StartFlink\n")
	for _, k := range c.keys() {
		if strings.ContainsAny(c[k], "#\n") {
			return "", fmt.Errorf("flink-conf.yaml cannot hold %s: %q", k, c[k])
		}
		fmt.Fprintf(&b, "%s: %s\n", k, c[k])
	}
	return b.String(), nil
}

// RESTURL is the JobManager's REST base URL, http://127.0.0.1:port.
func (f *Flink) RESTURL() string { return f.restURL }

// Get returns the body of a REST GET; non-2xx is an error with the body.
func (f *Flink) Get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.restURL+path, nil)
	if err != nil {
		return nil, err
	}
	return f.do(req)
}

// GetJSON decodes a REST GET into v.
func (f *Flink) GetJSON(ctx context.Context, path string, v any) error {
	b, err := f.Get(ctx, path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// HTTPError is a non-2xx REST answer.
type HTTPError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Body)
}

func (f *Flink) do(req *http.Request) ([]byte, error) {
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return b, &HTTPError{req.Method, req.URL.Path, resp.StatusCode, string(b)}
	}
	return b, nil
}

// JobOptions are the test bed job's arguments.
type JobOptions struct {
	Jar              string  // default JobJar(f.Version)
	EntryClass       string  // default JobClass
	Parallelism      int     // default 2
	RecordsPerSecond float64 // default 100 (across all subtasks)
	// Name is the job's name (default the job's own); jobs sharing a
	// cluster need different names, since metrics are labelled by name.
	Name string
	// ControlDir holds this job's fault switches (default f.ControlDir,
	// shared by every job that does not set its own); see SetFaultIn.
	ControlDir string
	// Config is passed as the run request's flinkConfiguration: per-job
	// settings such as execution.checkpointing.timeout or
	// state.checkpoints.dir that override the cluster's.
	Config map[string]string
	Args   []string
}

// SubmitJob uploads the job jar (once) and runs it, returning the job id.
// The job gets --control-dir f.ControlDir so SetFault reaches it.
func (f *Flink) SubmitJob(ctx context.Context, o JobOptions) (string, error) {
	if o.Jar == "" {
		o.Jar = JobJar(f.Version)
	}
	if o.EntryClass == "" {
		o.EntryClass = JobClass
	}
	if o.Parallelism <= 0 {
		o.Parallelism = 2
	}
	if o.RecordsPerSecond <= 0 {
		o.RecordsPerSecond = 100
	}
	if f.jar == "" {
		id, err := f.uploadJar(ctx, o.Jar)
		if err != nil {
			return "", err
		}
		f.jar = id
	}
	if o.ControlDir == "" {
		o.ControlDir = f.ControlDir
	} else if err := os.MkdirAll(o.ControlDir, 0o755); err != nil {
		return "", err
	}
	args := []string{
		"--control-dir", o.ControlDir,
		"--parallelism", strconv.Itoa(o.Parallelism),
		"--records-per-second", strconv.FormatFloat(o.RecordsPerSecond, 'f', -1, 64),
	}
	if o.Name != "" {
		args = append(args, "--job-name", o.Name)
	}
	args = append(args, o.Args...)
	run := map[string]any{
		"entryClass":      o.EntryClass,
		"programArgsList": args,
		"parallelism":     o.Parallelism,
	}
	if len(o.Config) > 0 {
		run["flinkConfiguration"] = o.Config
	}
	body, _ := json.Marshal(run)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.restURL+"/jars/"+url.PathEscape(f.jar)+"/run", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	b, err := f.do(req)
	if err != nil {
		return "", fmt.Errorf("run job: %w", err)
	}
	var r struct {
		JobID string `json:"jobid"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.JobID == "" {
		return "", fmt.Errorf("run job: unexpected answer %q", b)
	}
	return r.JobID, nil
}

func (f *Flink) uploadJar(ctx context.Context, path string) (string, error) {
	jar, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("job jar: %w (run `make tools`)", err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name="jarfile"; filename=%q`, filepath.Base(path))}
	h["Content-Type"] = []string{"application/x-java-archive"}
	part, err := mw.CreatePart(h)
	if err != nil {
		return "", err
	}
	if _, err := part.Write(jar); err != nil {
		return "", err
	}
	if err := mw.Close(); err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.restURL+"/jars/upload", &body)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	b, err := f.do(req)
	if err != nil {
		return "", fmt.Errorf("upload jar: %w", err)
	}
	var r struct {
		Filename string `json:"filename"`
		Status   string `json:"status"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Filename == "" {
		return "", fmt.Errorf("upload jar: unexpected answer %q", b)
	}
	return filepath.Base(r.Filename), nil
}

// CheckpointCounts is /jobs/:id/checkpoints "counts".
type CheckpointCounts struct {
	Restored   int64 `json:"restored"`
	Total      int64 `json:"total"`
	InProgress int64 `json:"in_progress"`
	Completed  int64 `json:"completed"`
	Failed     int64 `json:"failed"`
}

// Checkpoints returns the job's checkpoint counts from REST.
func (f *Flink) Checkpoints(ctx context.Context, jobID string) (CheckpointCounts, error) {
	var r struct {
		Counts CheckpointCounts `json:"counts"`
	}
	err := f.GetJSON(ctx, "/jobs/"+jobID+"/checkpoints", &r)
	return r.Counts, err
}

// WaitCheckpointsFunc polls the job's checkpoint counts until ok accepts
// them; the error names the last counts seen and carries the JobManager log's tail.
func (f *Flink) WaitCheckpointsFunc(ctx context.Context, jobID string, ok func(CheckpointCounts) bool) (CheckpointCounts, error) {
	var last CheckpointCounts
	err := WaitFor(ctx, f.JM, 250*time.Millisecond, func(ctx context.Context) error {
		c, err := f.Checkpoints(ctx, jobID)
		if err != nil {
			return err
		}
		last = c
		if !ok(c) {
			return fmt.Errorf("checkpoint counts %+v", c)
		}
		return nil
	})
	if err != nil {
		return last, fmt.Errorf("%w\n--- %s (tail) ---\n%s", err, f.JMLog, tailFile(f.JMLog, 4000))
	}
	return last, nil
}

// WaitCheckpoints waits until at least minCompleted checkpoints completed.
func (f *Flink) WaitCheckpoints(ctx context.Context, jobID string, minCompleted int64) (CheckpointCounts, error) {
	return f.WaitCheckpointsFunc(ctx, jobID, func(c CheckpointCounts) bool { return c.Completed >= minCompleted })
}

// WaitJobRunning waits until the job and all its tasks are RUNNING, so that
// checkpoints can be triggered.
func (f *Flink) WaitJobRunning(ctx context.Context, jobID string) error {
	return WaitFor(ctx, f.JM, 250*time.Millisecond, func(ctx context.Context) error {
		var j struct {
			State    string `json:"state"`
			Vertices []struct {
				Status string `json:"status"`
			} `json:"vertices"`
		}
		if err := f.GetJSON(ctx, "/jobs/"+jobID, &j); err != nil {
			return err
		}
		if j.State != "RUNNING" {
			return fmt.Errorf("job state %s", j.State)
		}
		for _, v := range j.Vertices {
			if v.Status != "RUNNING" {
				return fmt.Errorf("vertex status %s", v.Status)
			}
		}
		return nil
	})
}

// CancelJob asks Flink to cancel a job (it does not wait for CANCELED).
func (f *Flink) CancelJob(ctx context.Context, jobID string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, f.restURL+"/jobs/"+jobID+"?mode=cancel", nil)
	if err != nil {
		return err
	}
	if _, err := f.do(req); err != nil {
		return fmt.Errorf("cancel %s: %w", jobID, err)
	}
	return nil
}

// WaitJobState waits until the job is in state.
func (f *Flink) WaitJobState(ctx context.Context, jobID, state string) error {
	return WaitFor(ctx, f.JM, 250*time.Millisecond, func(ctx context.Context) error {
		var j struct {
			State string `json:"state"`
		}
		if err := f.GetJSON(ctx, "/jobs/"+jobID, &j); err != nil {
			return err
		}
		if j.State != state {
			return fmt.Errorf("job state %s, want %s", j.State, state)
		}
		return nil
	})
}

// SetFault turns a fault switch of the test bed job on (FaultFail,
// FaultSleepMS); the job reads it at its next snapshot.
func (f *Flink) SetFault(kind, value string) error { return SetFaultIn(f.ControlDir, kind, value) }

// SetFaultIn turns a fault switch on in a job's own control directory
// (JobOptions.ControlDir).
func SetFaultIn(dir, kind, value string) error {
	if kind == "" || strings.ContainsAny(kind, `/\`) {
		return fmt.Errorf("bad fault kind %q", kind)
	}
	p := filepath.Join(dir, kind)
	if err := os.WriteFile(p+".tmp", []byte(value), 0o644); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p) // the job never reads a half-written value
}

// ClearFaults turns every fault switch off.
func (f *Flink) ClearFaults() error {
	ents, err := os.ReadDir(f.ControlDir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		errs = append(errs, os.Remove(filepath.Join(f.ControlDir, e.Name())))
	}
	return errors.Join(errs...)
}

// Stop stops both JVMs (SIGTERM, then SIGKILL after a grace period) and
// removes the work dir if StartFlink created it.
func (f *Flink) Stop() {
	f.stopOnce.Do(func() {
		var wg sync.WaitGroup
		for _, p := range []*Proc{f.TM, f.JM} {
			if p == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = p.Stop(10 * time.Second)
			}()
		}
		wg.Wait()
		if f.ownWork {
			_ = os.RemoveAll(f.WorkDir)
		}
	})
}

func tailFile(path string, n int64) string {
	fh, err := os.Open(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer fh.Close()
	if st, err := fh.Stat(); err == nil && st.Size() > n {
		_, _ = fh.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(fh)
	return string(b)
}
