package chaos

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fakeJM is a JobManager's REST API in the test process, for fault
// injection: it answers from the real Flink 1.20 answers the collector's
// golden tests use (collector/testdata/flink-1.20.0), for as many jobs as a
// case wants, each after a delay, and lets a case replace any answer.
type fakeJM struct {
	srv      *httptest.Server
	fixtures map[string][]byte // file name → body
	delay    time.Duration

	mu       sync.Mutex
	jobs     []fakeJob
	override func(w http.ResponseWriter, r *http.Request) bool // true: answered
	polled   map[string]int                                    // job id → /checkpoints requests
}

type fakeJob struct{ id, name, state string }

// fixtureJob is the job id and name in the recorded answers.
const (
	fixtureJob  = "62585e56162757d4cd89ea47bbb3eca8"
	fixtureName = "flink-agent testbed checkpointing job"
)

func newFakeJM(e *env, jobs []fakeJob, delay time.Duration) *fakeJM {
	dir := "../collector/testdata/flink-1.20.0"
	f := &fakeJM{fixtures: map[string][]byte{}, delay: delay, jobs: jobs, polled: map[string]int{}}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			e.t.Fatal(err)
		}
		f.fixtures[filepath.Base(p)] = b
	}
	if len(f.fixtures) < 10 {
		e.t.Fatalf("no Flink answers in %s", dir)
	}
	f.srv = httptest.NewServer(f)
	e.t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeJM) URL() string { return f.srv.URL }

// jobsFor makes n running jobs named prefix-<i>.
func jobsFor(n int, prefix string) []fakeJob {
	jobs := make([]fakeJob, n)
	for i := range jobs {
		jobs[i] = fakeJob{id: fmt.Sprintf("%032x", 0xc4a05000000+i), name: fmt.Sprintf("%s-%d", prefix, i), state: "RUNNING"}
	}
	return jobs
}

func (f *fakeJM) setOverride(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	f.override = h
	f.mu.Unlock()
}

// observed is how many jobs had their checkpoints read at least once.
func (f *fakeJM) observed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.polled)
}

func (f *fakeJM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	f.mu.Lock()
	override, jobs := f.override, f.jobs
	f.mu.Unlock()
	if override != nil && override(w, r) {
		return
	}
	p := r.URL.Path
	switch {
	case p == "/jobs/overview":
		f.overview(w, jobs)
	case p == "/overview":
		f.fixture(w, "overview.json", nil)
	case p == "/config":
		f.fixture(w, "config.json", nil)
	case p == "/jobmanager/config":
		f.fixture(w, "jobmanager_config.json", nil)
	case p == "/jobmanager/metrics":
		f.fixture(w, "jobmanager_metrics.json", nil)
	case p == "/taskmanagers/metrics":
		f.fixture(w, "taskmanagers_metrics_agg.json", nil)
	case strings.HasPrefix(p, "/jobs/"):
		parts := strings.Split(strings.TrimPrefix(p, "/jobs/"), "/")
		j, ok := find(jobs, parts[0])
		if !ok {
			http.Error(w, `{"errors":["Job could not be found."]}`, http.StatusNotFound)
			return
		}
		switch rest := strings.Join(parts[1:], "/"); {
		case rest == "":
			f.fixture(w, "jobs_id.json", &j)
		case rest == "checkpoints":
			f.mu.Lock()
			f.polled[j.id]++
			f.mu.Unlock()
			f.fixture(w, "jobs_id_checkpoints.json", &j)
		case rest == "checkpoints/config":
			f.fixture(w, "jobs_id_checkpoints_config.json", &j)
		case strings.HasPrefix(rest, "checkpoints/details/"):
			f.fixture(w, "jobs_id_checkpoints_details_completed.json", &j)
		case rest == "exceptions":
			f.fixture(w, "jobs_id_exceptions.json", &j)
		default:
			http.NotFound(w, r)
		}
	default:
		http.NotFound(w, r)
	}
}

func find(jobs []fakeJob, id string) (fakeJob, bool) {
	for _, j := range jobs {
		if j.id == id {
			return j, true
		}
	}
	return fakeJob{}, false
}

// fixture answers a recorded body, as job j when j is not nil.
func (f *fakeJM) fixture(w http.ResponseWriter, name string, j *fakeJob) {
	b := f.fixtures[name]
	if j != nil {
		b = bytes.ReplaceAll(b, []byte(fixtureJob), []byte(j.id))
		n, _ := json.Marshal(j.name)
		b = bytes.ReplaceAll(b, []byte(`"`+fixtureName+`"`), n)
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(b)
}

func (f *fakeJM) overview(w http.ResponseWriter, jobs []fakeJob) {
	var b bytes.Buffer
	b.WriteString(`{"jobs":[`)
	for i, j := range jobs {
		if i > 0 {
			b.WriteByte(',')
		}
		n, _ := json.Marshal(j.name)
		fmt.Fprintf(&b, `{"jid":%q,"name":%s,"start-time":1795477766188,"end-time":-1,"duration":25895,"state":%q,"last-modification":1795477788516,`+
			`"tasks":{"running":4,"canceling":0,"canceled":0,"total":4,"created":0,"scheduled":0,"deploying":0,"reconciling":0,"finished":0,"initializing":0,"failed":0}}`,
			j.id, n, j.state)
	}
	b.WriteString(`]}`)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(b.Bytes())
}

// hugeBody answers n bytes of a valid-looking jobs list, written as it is
// produced: the test process never holds it.
func hugeBody(w http.ResponseWriter, n int64) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	job := []byte(`{"jid":"00000000000000000000000000000000","name":"padding","state":"FINISHED"},`)
	head := []byte(`{"jobs":[`)
	_, _ = w.Write(head)
	written := int64(len(head))
	for written+int64(len(job)) < n-2 {
		if _, err := w.Write(job); err != nil {
			return
		}
		written += int64(len(job))
	}
	pad := bytes.Repeat([]byte(" "), int(n-2-written))
	_, _ = w.Write(append(pad, "]}"...))
}

// gzipBomb answers a gzip stream that inflates to members MiB of spaces
// (repeated gzip members of 1 MiB each: a few hundred bytes on the wire
// per MiB).
func gzipBomb(w http.ResponseWriter, members int) {
	var one bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&one, gzip.BestCompression)
	_, _ = zw.Write(bytes.Repeat([]byte(" "), 1<<20))
	_ = zw.Close()
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Content-Encoding", "gzip")
	_, _ = w.Write([]byte{}) // headers first
	for i := 0; i < members; i++ {
		if _, err := w.Write(one.Bytes()); err != nil {
			return
		}
	}
}
