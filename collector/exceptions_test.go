package collector

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExceptionsCaptured decodes every version's captured exception history
// (the test bed's job after a snapshot failed its task): Flink 1.x has the
// history beside the deprecated root-exception, 2.x only the history; 1.18
// says where with location, 1.19 and 1.20 with both, 2.x with endpoint.
func TestExceptionsCaptured(t *testing.T) {
	for _, v := range []string{"1.18.1", "1.19.3", "1.20.0", "1.20.5", "2.0.2", "2.1.3", "2.2.0", "2.2.1"} {
		t.Run(v, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "flink-"+v, "jobs_id_exceptions.json"))
			if err != nil {
				t.Fatal(err)
			}
			var b exceptionsBody
			if err := json.Unmarshal(raw, &b); err != nil {
				t.Fatal(err)
			}
			if legacy := !strings.HasPrefix(v, "2."); (b.Root != "") != legacy {
				t.Errorf("root-exception present: %v, want %v", b.Root != "", legacy)
			}
			exs, newest := b.newExceptions(0)
			if len(exs) == 0 || len(exs) != len(b.History.Entries) {
				t.Fatalf("%d exceptions from %d entries", len(exs), len(b.History.Entries))
			}
			for i, x := range exs {
				if x.Class != "java.lang.Exception" || !strings.HasPrefix(x.Message, "java.lang.Exception: Could not perform checkpoint ") {
					t.Errorf("entry %d: class %q, message %q", i, x.Class, x.Message)
				}
				if !strings.HasPrefix(x.RootCause, "Caused by: java.io.IOException: testbed fault switch: failing snapshot of checkpoint ") {
					t.Errorf("entry %d: root cause %q", i, x.RootCause)
				}
				if strings.Count(x.RootCause, "\n") > rootCauseFrames {
					t.Errorf("entry %d: root cause longer than %d frames: %q", i, rootCauseFrames, x.RootCause)
				}
				if !strings.HasPrefix(x.Task, "Source: sequence -> throttle (") || !strings.HasPrefix(x.Location, "localhost:") {
					t.Errorf("entry %d: task %q at %q", i, x.Task, x.Location)
				}
				if x.FailureLabels == nil {
					t.Errorf("entry %d: no failureLabels object (Flink 1.15+ sends one, empty without enrichers)", i)
				}
				if i > 0 && x.Time.After(exs[i-1].Time) {
					t.Errorf("entry %d is newer than entry %d: newest first", i, i-1)
				}
			}
			if want := exs[0].Time.UnixMilli(); newest != want {
				t.Errorf("newest %d, want %d", newest, want)
			}
			// A second look finds nothing new; a look from between the two
			// entries finds the newer one only.
			if again, _ := b.newExceptions(newest); len(again) != 0 {
				t.Errorf("%d exceptions again", len(again))
			}
			if len(exs) > 1 {
				mid := exs[1].Time.UnixMilli()
				if got, _ := b.newExceptions(mid); len(got) != 1 || got[0].Time != exs[0].Time {
					t.Errorf("since the older entry: %+v", got)
				}
			}
		})
	}
}

// Before the exception history (or with an empty one) the deprecated
// root-exception is the one entry.
func TestExceptionsRootOnly(t *testing.T) {
	var b exceptionsBody
	raw := `{"root-exception":"org.apache.flink.util.FlinkRuntimeException: Exceeded checkpoint tolerable failure threshold.\n\tat a.b(C.java:1)","timestamp":1700000000000,"all-exceptions":[],"truncated":false,"exceptionHistory":{"entries":[],"truncated":false}}`
	if err := json.Unmarshal([]byte(raw), &b); err != nil {
		t.Fatal(err)
	}
	exs, _ := b.newExceptions(0)
	if len(exs) != 1 || exs[0].Class != "org.apache.flink.util.FlinkRuntimeException" || exs[0].RootCause != "" ||
		!exs[0].Time.Equal(time.UnixMilli(1700000000000)) {
		t.Errorf("%+v", exs)
	}
}
