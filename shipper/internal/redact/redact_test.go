package redact_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flink-agent/flink-agent/shipper/internal/flinklog"
	"github.com/flink-agent/flink-agent/shipper/internal/multiline"
	"github.com/flink-agent/flink-agent/shipper/internal/redact"
	"github.com/flink-agent/flink-agent/shipper/internal/redact/redacttest"
)

// newCounted returns a redactor whose rules count into
// flink_agent_redactions_total{rule} on reg, as the shipper's do.
func newCounted(s redact.Settings, reg *prometheus.Registry) (*redact.Redactor, *prometheus.CounterVec) {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flink_agent_redactions_total", Help: "Secrets removed."}, []string{"rule"})
	reg.MustRegister(v)
	return redact.New(s, func(rule string) redact.Counter { return v.WithLabelValues(rule) }), v
}

// event is one event of a log as the shipper groups it, with where its
// message starts (where redaction looks for triggers).
type event struct {
	text     []byte
	msgStart int
}

func events(b []byte) []event {
	var out []event
	p := multiline.New(multiline.Settings{MaxEventBytes: 1 << 30, Location: time.UTC})
	g := p.Grouper(func(ev *multiline.Event) error {
		out = append(out, event{append([]byte(nil), ev.Text...), ev.MsgStart})
		return nil
	}, nil)
	for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		_ = g.Line(l, 0, false)
	}
	_ = g.Flush()
	return out
}

// TestRedactionCorpus runs every corpus case through a redactor with the
// built-in rules and the corpus's user rule: secrets replaced exactly as
// expected and counted by rule, clean lines unchanged and not counted.
func TestRedactionCorpus(t *testing.T) {
	if n := len(redacttest.Corpus); n < 60 {
		t.Fatalf("the corpus has %d cases, want at least 60", n)
	}
	for _, tc := range redacttest.Corpus {
		reg := prometheus.NewRegistry()
		r, m := newCounted(redact.Settings{Rules: redacttest.UserRules}, reg)
		evs := events([]byte(tc.In))
		if len(evs) != 1 {
			t.Fatalf("%q is %d events", tc.In, len(evs))
		}
		in := evs[0].text
		got := string(r.Apply(in, evs[0].msgStart, strings.Contains(tc.In, "\n")))
		if got != tc.Want {
			t.Errorf("redact(%q)\n got %q\nwant %q", tc.In, got, tc.Want)
		}
		if string(in) != tc.In {
			t.Errorf("the input was modified: %q", in)
		}
		for _, rule := range tc.Rules {
			if n := testutil.ToFloat64(m.WithLabelValues(rule)); n < 1 {
				t.Errorf("%q: flink_agent_redactions_total{rule=%q} = %v", tc.In, rule, n)
			}
		}
		if len(tc.Rules) == 0 {
			if total := sum(t, reg); total != 0 {
				t.Errorf("%q: a clean line counted %v redactions", tc.In, total)
			}
		}
	}
}

// sum adds up every flink_agent_redactions_total series of reg.
func sum(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			n += m.GetCounter().GetValue()
		}
	}
	return n
}

// TestRedactionLeavesCleanLinesAlone feeds real Flink 1.20 logs from the
// test bed (JobManager and TaskManager, with stack traces and configuration
// dumps whose secrets Flink masked as ******), real logs of other Flink
// versions, S3A and the AWS SDKs, and the synthetic generator's output
// through the redactor: nothing may change.
func TestRedactionLeavesCleanLinesAlone(t *testing.T) {
	files, _ := filepath.Glob("../../../logscan/testdata/corpus/testbed/*.log")
	if len(files) == 0 {
		t.Fatal("no test bed logs in logscan/testdata/corpus/testbed")
	}
	// Real Flink, Hadoop S3A, AWS SDK and operator logs from issues and
	// mailing lists (logscan's and operatorlog's corpora).
	more, _ := filepath.Glob("../../../logscan/testdata/corpus/real/*.log")
	files = append(files, more...)
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	g := flinklog.Gen{MultilineEvery: 5, Start: time.Now()}
	for i := 0; i < 2000; i++ {
		all = g.Append(all)
	}
	for _, l := range []string{"Loading configuration property: s3.secret-key, ******",
		"Loading configuration property: security.ssl.internal.keystore-password, ******",
		"Password authentication failed for user flink",
		"Remoting started; listening on addresses :[pekko.tcp://flink@127.0.0.1:6123]"} {
		all = append(all, redacttest.Header+l+"\n"...)
	}
	evs := events(all)

	reg := prometheus.NewRegistry()
	r, _ := newCounted(redact.Settings{}, reg)
	for _, ev := range evs {
		if got := r.Apply(ev.text, ev.msgStart, bytes.IndexByte(ev.text, '\n') >= 0); !bytes.Equal(got, ev.text) {
			t.Errorf("changed a line without secrets:\n%q\n%q", ev.text, got)
		}
	}
	if len(evs) < 2000 {
		t.Fatalf("only %d events", len(evs))
	}
	if n := sum(t, reg); n != 0 {
		t.Errorf("%v redactions counted in lines without secrets", n)
	}
}
