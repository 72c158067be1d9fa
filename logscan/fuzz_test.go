package logscan

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flink-agent/flink-agent/internal/labelvalue"
)

// corpusEvents seeds a fuzz target with the lines of logscan's corpus (real
// and synthetic Flink, S3A, EMRFS and AWS SDK logs) that carry one of
// literal, each different.
func corpusEvents(f *testing.F, literal ...string) {
	files, _ := filepath.Glob("testdata/corpus/*/*.log")
	if len(files) == 0 {
		f.Fatal("no corpus in testdata/corpus")
	}
	seen := map[string]bool{}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, l := range bytes.Split(b, []byte("\n")) {
			// The same form differs in its ids and times only.
			form := string(bytes.Map(func(r rune) rune {
				if r >= '0' && r <= '9' || r >= 'a' && r <= 'f' {
					return '0'
				}
				return r
			}, l))
			for _, lit := range literal {
				if bytes.Contains(l, []byte(lit)) && !seen[form] {
					seen[form] = true
					f.Add(bytes.Clone(l))
				}
			}
		}
	}
}

// FuzzLifecycle: any event is a lifecycle event, none, or an unrecognised
// form, without a panic; what is parsed out of it is in it.
func FuzzLifecycle(f *testing.F) {
	corpusEvents(f, "job ", "Job ", "global failure")
	f.Fuzz(func(t *testing.T, ev []byte) {
		var lc Lifecycle
		kind, _, ok := parseLifecycle(ev, &lc)
		if kind >= numKinds {
			t.Fatalf("kind %d", kind)
		}
		if !ok || kind == KindNone {
			return
		}
		for _, s := range []string{lc.JobID, lc.Task, lc.Location, lc.From, lc.To} {
			if !bytes.Contains(ev, []byte(s)) {
				t.Fatalf("%q is not in %q", s, ev)
			}
		}
		// The job name is a label value (labelvalue.Cap) of a part of the
		// event: apart from U+FFFD for invalid bytes and a long name's
		// "~hash" suffix, it is in the event.
		if lc.JobName != labelvalue.Cap(lc.JobName) {
			t.Fatalf("job name %q is not a label value", lc.JobName)
		}
		name := lc.JobName
		if i := strings.LastIndexByte(name, '~'); i >= 0 && len(name)-i == 9 {
			name = name[:i]
		}
		for _, piece := range strings.Split(name, "\uFFFD") {
			if !bytes.Contains(ev, []byte(piece)) {
				t.Fatalf("job name %q (%q) is not in %q", lc.JobName, piece, ev)
			}
		}
		if lc.CheckpointID < -1 {
			t.Fatalf("checkpoint id %d from %q", lc.CheckpointID, ev)
		}
	})
}

// FuzzThrottle: any event is S3 throttling or not, without a panic; the
// bucket is part of the event and the operation one of the known names.
func FuzzThrottle(f *testing.F) {
	corpusEvents(f, "SlowDown", "Slow Down", "educe your request rate", "Throttled", "429", "Too")
	known := map[string]bool{"": true}
	for _, op := range operations {
		known[op] = true
	}
	for _, op := range s3aOperations {
		known[op] = true
	}
	f.Fuzz(func(t *testing.T, ev []byte) {
		var th Throttle
		if !detectThrottle(ev, &th) {
			return
		}
		if len(th.Bucket) > 0 && !bytes.Contains(ev, th.Bucket) {
			t.Fatalf("bucket %q is not in %q", th.Bucket, ev)
		}
		if !known[th.Operation] || th.Form == "" {
			t.Fatalf("operation %q form %q from %q", th.Operation, th.Form, ev)
		}
	})
}
