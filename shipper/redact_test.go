package shipper

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/shipper/internal/flinklog"
)

const hdr = "2024-05-01 12:00:00,123 INFO  org.apache.flink.configuration.GlobalConfiguration            [] - "

// redactionCorpus is every secret form the issue names, in the shapes
// Flink, Hadoop, the AWS SDK and JVM options print them, with the exact
// expected result and the rules that fire.
var redactionCorpus = []struct {
	in, want string
	rules    []string
}{
	// AWS access key ids.
	{hdr + "Using access key AKIAIOSFODNN7EXAMPLE for s3://bucket", hdr + "Using access key AKIA[REDACTED] for s3://bucket", []string{"aws_access_key_id"}},
	{hdr + "credentials from STS: ASIAY34FZKBOKMUTVV7A expires 2024-05-01", hdr + "credentials from STS: ASIA[REDACTED] expires 2024-05-01", []string{"aws_access_key_id"}},
	// Flink's S3 filesystem options, as Flink logs its configuration.
	{hdr + "Loading configuration property: s3.access-key, AKIAIOSFODNN7EXAMPLE", hdr + "Loading configuration property: s3.access-key, [REDACTED]", []string{"s3_access_key"}},
	{hdr + "Loading configuration property: s3.secret-key, wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", hdr + "Loading configuration property: s3.secret-key, [REDACTED]", []string{"s3_secret_key"}},
	{hdr + "s3.secret-key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", hdr + "s3.secret-key: [REDACTED]", []string{"s3_secret_key"}},
	{hdr + "s3.access.key=minioadmin s3.secret.key=minioadmin", hdr + "s3.access.key=[REDACTED] s3.secret.key=[REDACTED]", []string{"s3_access_key", "s3_secret_key"}},
	{hdr + `{"s3.access-key":"minio","s3.secret-key":"minio123"}`, hdr + `{"s3.access-key":"[REDACTED]","s3.secret-key":"[REDACTED]"}`, []string{"s3_access_key", "s3_secret_key"}},
	// Hadoop S3A, global and per bucket.
	{hdr + "fs.s3a.secret.key=s3cr3t fs.s3a.access.key=minio", hdr + "fs.s3a.secret.key=[REDACTED] fs.s3a.access.key=minio", []string{"s3a_secret_key"}},
	{hdr + "Loading configuration property: fs.s3a.bucket.prod-checkpoints.secret.key, s3cr3t", hdr + "Loading configuration property: fs.s3a.bucket.prod-checkpoints.secret.key, [REDACTED]", []string{"s3a_secret_key"}},
	// The AWS CLI / SDK credentials file and environment.
	{hdr + "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", hdr + "aws_secret_access_key = [REDACTED]", []string{"aws_secret_access_key"}},
	{hdr + "env: AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", hdr + "env: AWS_SECRET_ACCESS_KEY=[REDACTED]", []string{"aws_secret_access_key"}},
	// Passwords.
	{hdr + "connecting with password=hunter2 to db", hdr + "connecting with password=[REDACTED] to db", []string{"password"}},
	{hdr + "Password: hunter2", hdr + "Password: [REDACTED]", []string{"password"}},
	{hdr + `{"user":"flink","password":"hunter2"}`, hdr + `{"user":"flink","password":"[REDACTED]"}`, []string{"password"}},
	{hdr + "Loading configuration property: security.ssl.internal.keystore-password, hunter2", hdr + "Loading configuration property: security.ssl.internal.keystore-password, [REDACTED]", []string{"password"}},
	{hdr + "JVM Options: -Djavax.net.ssl.trustStorePassword=changeit -Xmx1g", hdr + "JVM Options: -Djavax.net.ssl.trustStorePassword=[REDACTED] -Xmx1g", []string{"password"}},
	{hdr + "sasl.jaas.config passwd=topsecret;", hdr + "sasl.jaas.config passwd=[REDACTED];", []string{"password"}},
	// Bearer tokens.
	{hdr + "request headers: Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmbGluayJ9.c2lnbmF0dXJl", hdr + "request headers: Authorization: Bearer [REDACTED]", []string{"bearer_token"}},
	{hdr + "authorization=bearer abc.def-ghi_jkl", hdr + "authorization=bearer [REDACTED]", []string{"bearer_token"}},
	// Credentials in URLs.
	{hdr + "Opening jdbc:postgresql://flink:hunter2@db:5432/app", hdr + "Opening jdbc:postgresql://flink:[REDACTED]@db:5432/app", []string{"url_password"}},
	// PEM private keys: whole, and cut off by the event size cap.
	{hdr + "loaded key\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\nabcdef==\n-----END RSA PRIVATE KEY-----\nnext",
		hdr + "loaded key\n-----BEGIN RSA PRIVATE KEY-----[REDACTED]-----END RSA PRIVATE KEY-----\nnext", []string{"private_key"}},
	{hdr + "loaded key\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ",
		hdr + "loaded key\n-----BEGIN PRIVATE KEY-----[REDACTED]-----END PRIVATE KEY-----", []string{"private_key"}},
	// A user rule.
	{hdr + "kafka token=abc123def ok", hdr + "kafka token=<hidden> ok", []string{"kafka_token"}},
}

var userRules = []config.RedactionRule{{Name: "kafka_token", Regex: config.MustRegexp(`token=[a-z0-9]+`), Replacement: "token=<hidden>"}}

func TestRedactionCorpus(t *testing.T) {
	for _, tc := range redactionCorpus {
		reg := prometheus.NewRegistry()
		m, _ := newMetrics(reg)
		r := newRedactor(config.Redaction{Rules: userRules}, m)
		in := []byte(tc.in)
		var h header
		parseHeader(in, &h)
		got := string(r.apply(in, h.msgStart, strings.Contains(tc.in, "\n")))
		if got != tc.want {
			t.Errorf("redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
		if string(in) != tc.in {
			t.Errorf("the input was modified: %q", in)
		}
		for _, rule := range tc.rules {
			if n := testutil.ToFloat64(m.redactions.WithLabelValues(rule)); n < 1 {
				t.Errorf("%q: flink_agent_redactions_total{rule=%q} = %v", tc.in, rule, n)
			}
		}
	}
}

// TestRedactionLeavesCleanLinesAlone feeds real Flink 1.20 logs from the
// test bed (JobManager and TaskManager, with stack traces and configuration
// dumps whose secrets Flink masked as ******) and the synthetic generator's
// output through the redactor: nothing may change.
func TestRedactionLeavesCleanLinesAlone(t *testing.T) {
	files, _ := filepath.Glob("../logscan/testdata/corpus/testbed/*.log")
	if len(files) == 0 {
		t.Fatal("no test bed logs in ../logscan/testdata/corpus/testbed")
	}
	var events [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, splitEvents(b)...)
	}
	g := flinklog.Gen{MultilineEvery: 5, Start: time.Now()}
	var b []byte
	for i := 0; i < 2000; i++ {
		b = g.Append(b)
	}
	events = append(events, splitEvents(b)...)
	events = append(events, []byte(hdr+"Loading configuration property: s3.secret-key, ******"),
		[]byte(hdr+"Loading configuration property: security.ssl.internal.keystore-password, ******"),
		[]byte(hdr+"Password authentication failed for user flink"),
		[]byte(hdr+"Remoting started; listening on addresses :[pekko.tcp://flink@127.0.0.1:6123]"))

	reg := prometheus.NewRegistry()
	m, _ := newMetrics(reg)
	r := newRedactor(config.Redaction{}, m)
	for _, ev := range events {
		var h header
		if isLog4jTime(ev) {
			parseHeader(ev, &h)
		}
		if got := r.apply(ev, h.msgStart, bytes.IndexByte(ev, '\n') >= 0); !bytes.Equal(got, ev) {
			t.Errorf("changed a line without secrets:\n%q\n%q", ev, got)
		}
	}
	if len(events) < 2000 {
		t.Fatalf("only %d events", len(events))
	}
	if n, _ := testutil.GatherAndCount(reg, "flink_agent_redactions_total"); n != 0 {
		// Series exist per rule; all must be zero.
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			for _, mm := range mf.GetMetric() {
				if mm.GetCounter().GetValue() != 0 {
					t.Errorf("%s %v = %v", mf.GetName(), mm.GetLabel(), mm.GetCounter().GetValue())
				}
			}
		}
	}
}

// splitEvents splits a log4j file into events at the timestamp pattern.
func splitEvents(b []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
		if len(out) == 0 || isLog4jTime(l) {
			out = append(out, append([]byte(nil), l...))
			continue
		}
		last := &out[len(out)-1]
		*last = append(append(*last, '\n'), l...)
	}
	return out
}

// TestRedactionBeforeShipping checks the pipeline: what observers (and so
// Loki) receive is redacted, a PEM key spanning lines included.
func TestRedactionBeforeShipping(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	c := &collector{}
	opts.Observers = []Observer{c}
	var in bytes.Buffer
	for _, tc := range redactionCorpus {
		in.WriteString(tc.in + "\n")
	}
	appendFile(t, filepath.Join(dir, "flink--jobmanager-0.log"), in.Bytes())
	start(t, opts)
	eventually(t, 5*time.Second, "all events", func() bool { return c.count() == len(redactionCorpus) })
	for i, ev := range c.snapshot() {
		tc := redactionCorpus[i]
		if tc.rules[0] == "kafka_token" { // a user rule, not configured here
			continue
		}
		if string(ev.Line) != tc.want {
			t.Errorf("shipped %q\nwant    %q", ev.Line, tc.want)
		}
	}
}
