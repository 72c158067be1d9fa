package shipper

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/flink-agent/flink-agent/internal/logevent"
	"github.com/flink-agent/flink-agent/shipper/internal/redact/redacttest"
)

// TestRedactionBeforeShipping checks the pipeline: what observers (and so
// Loki) receive is redacted, a PEM key spanning lines included.
func TestRedactionBeforeShipping(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	c := &collector{}
	opts.Observers = []logevent.Observer{c}
	var in bytes.Buffer
	for _, tc := range redacttest.Corpus {
		in.WriteString(tc.In + "\n")
	}
	appendFile(t, filepath.Join(dir, "flink--jobmanager-0.log"), in.Bytes())
	start(t, opts)
	eventually(t, 5*time.Second, "all events", func() bool { return c.count() == len(redacttest.Corpus) })
	for i, ev := range c.snapshot() {
		tc := redacttest.Corpus[i]
		if tc.User { // a user rule, not configured here
			continue
		}
		if string(ev.Line) != tc.Want {
			t.Errorf("shipped %q\nwant    %q", ev.Line, tc.Want)
		}
	}
}
