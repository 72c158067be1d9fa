package testbed

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestS3ThrottleSwitch(t *testing.T) {
	s, err := StartS3("bucket")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do(http.MethodPut, "/bucket/a/key", "hello"); code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	if code, body := do(http.MethodGet, "/bucket/a/key", ""); code != 200 || body != "hello" {
		t.Fatalf("GET: %d %q", code, body)
	}
	if keys, err := s.Keys("bucket", "a/"); err != nil || len(keys) != 1 || keys[0] != "a/key" {
		t.Fatalf("Keys = %v, %v", keys, err)
	}

	s.SetThrottle(1)
	code, body := do(http.MethodPut, "/bucket/a/other", "x")
	if code != http.StatusServiceUnavailable ||
		!strings.Contains(body, "<Code>SlowDown</Code><Message>Please reduce your request rate.</Message>") {
		t.Fatalf("throttled PUT: %d %s", code, body)
	}
	resp, err := http.Head(s.URL + "/bucket/a/key")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Status != "503 Slow Down" || resp.Header.Get("x-amz-request-id") == "" {
		t.Fatalf("throttled HEAD: %q %v", resp.Status, resp.Header)
	}
	if keys, _ := s.Keys("bucket", "a/other"); len(keys) != 0 {
		t.Fatalf("a throttled PUT stored %v", keys)
	}

	s.SetThrottle(0.5)
	for range 200 {
		do(http.MethodGet, "/bucket/a/key", "")
	}
	s.SetThrottle(0)
	if code, _ := do(http.MethodGet, "/bucket/a/key", ""); code != 200 {
		t.Fatalf("GET after throttling off: %d", code)
	}
	// 2 + 2 + 200 + 1 requests; 2 + about 100 of them throttled.
	if got := s.Requests(); got != 205 {
		t.Errorf("Requests() = %d, want 205", got)
	}
	if got := s.Throttled(); got < 2+60 || got > 2+140 {
		t.Errorf("Throttled() = %d, want 2 + about 100", got)
	}
}

// TestFlinkS3Throttling checkpoints through flink-s3-fs-presto to the fake
// S3 endpoint, throttles it, and expects real SlowDown exceptions in the
// JobManager log and failed checkpoints, then recovery.
func TestFlinkS3Throttling(t *testing.T) {
	NeedsTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s3, err := StartS3("flink")
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Stop()
	f := startFlink(t, ctx, FlinkOptions{
		LogDir:             testLogDir(t),
		CheckpointDir:      "s3p://flink/checkpoints",
		S3:                 s3.Endpoint(),
		CheckpointInterval: time.Second,
		CheckpointTimeout:  10 * time.Second,
		Slots:              2,
		Extra: map[string]string{
			// Write every state handle to S3 (nothing inlined into _metadata),
			// so the TaskManagers' uploads are throttled too.
			"state.storage.fs.memory-threshold":             "0",
			"execution.checkpointing.data-inline-threshold": "0",
		},
	})
	job, err := f.SubmitJob(ctx, JobOptions{Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.WaitCheckpoints(ctx, job, 2)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s3.Keys("flink", "checkpoints/"+job+"/")
	if err != nil {
		t.Fatal(err)
	}
	var metadata int
	for _, k := range keys {
		if strings.HasSuffix(k, "/_metadata") {
			metadata++
		}
	}
	t.Logf("checkpoints to S3: %+v; %d objects, %d _metadata; %d requests", c, len(keys), metadata, s3.Requests())
	if metadata == 0 {
		t.Fatalf("no _metadata object under checkpoints/%s/ in %v", job, keys)
	}

	s3.SetThrottle(1)
	before := c
	if c, err = f.WaitCheckpointsFunc(ctx, job, func(c CheckpointCounts) bool { return c.Failed >= before.Failed+2 }); err != nil {
		t.Fatal(err)
	}
	t.Logf("throttled: %+v; %d of %d requests throttled", c, s3.Throttled(), s3.Requests())
	// The TaskManagers' HEAD requests get bodiless answers ("Slow Down", from
	// the status line), the JobManager's cleanup DELETEs and LISTs the XML.
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`com\.amazonaws\.services\.s3\.model\.AmazonS3Exception: Slow Down \(Service: Amazon S3; Status Code: 503; Error Code: 503 Slow Down; Request ID: [0-9A-F]+;`),
		regexp.MustCompile(`com\.amazonaws\.services\.s3\.model\.AmazonS3Exception: Please reduce your request rate\. \(Service: Amazon S3; Status Code: 503; Error Code: SlowDown; Request ID: [0-9A-F]+;`),
	} {
		t.Logf("JobManager: %s", strings.TrimSpace(waitLog(t, ctx, f.JMLog, re)))
	}
	t.Logf("JobManager: %s", waitLog(t, ctx, f.JMLog, regexp.MustCompile(`WARN  org\.apache\.flink\.runtime\.checkpoint\.CheckpointFailureManager +\[\] - Failed to trigger or complete checkpoint \d+ for job `+job)))

	s3.SetThrottle(0)
	if c, err = f.WaitCheckpoints(ctx, job, c.Completed+2); err != nil {
		t.Fatal(err)
	}
	t.Logf("throttling off: %+v", c)
}
