// Package ddevent turns checkpointwatch's events into Datadog events: one
// per failed checkpoint, with Flink's raw failure message and, when the
// collector fetched them, the checkpoint's per-vertex details; one per job
// restart, with its root exception, the root cause's first lines and
// Flink's failure labels.
package ddevent

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"

	cw "github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/excerpt"
	"github.com/flink-agent/flink-agent/internal/identity"
)

const (
	textMax = 3900 // Datadog caps event text at 4000 characters
	keyMax  = 100  // and aggregation keys at 100
	// titleMax keeps titles readable (Datadog cuts them at 100 characters).
	titleMax = 100
	// maxTags bounds an event's tags (failure labels add some).
	maxTags = 20
	// maxWaiting bounds the failures held for their details; the oldest is
	// sent without them when more wait.
	maxWaiting = 64
)

// Sink sends Datadog events through the DogStatsD client.
type Sink struct {
	sd      *dogstatsd.Client
	id      identity.Identity
	waiting []cw.CheckpointFailed // failures whose details the collector is fetching
}

// New returns the sink. The identity scopes aggregation keys, so that jobs
// of one name in two clusters are not grouped together.
func New(sd *dogstatsd.Client, id identity.Identity) *Sink { return &Sink{sd: sd, id: id} }

// Handle sends the events that become Datadog events.
func (s *Sink) Handle(ev cw.Event) {
	if !s.sd.Enabled() {
		return
	}
	switch e := ev.(type) {
	case cw.CheckpointFailed:
		if !e.DetailsWanted {
			s.failed(e, "")
			return
		}
		if len(s.waiting) >= maxWaiting {
			s.failed(s.waiting[0], "")
			s.waiting = s.waiting[1:]
		}
		s.waiting = append(s.waiting, e)
	case cw.CheckpointDetails:
		for i, f := range s.waiting {
			if f.Job.ID == e.Job.ID && f.Checkpoint.ID == e.CheckpointID {
				s.waiting = append(s.waiting[:i], s.waiting[i+1:]...)
				s.failed(f, e.Summary)
				return
			}
		}
	case cw.JobRestarted:
		s.restarted(e)
	}
}

func (s *Sink) key(kind, name string) string {
	return excerpt.Cut(kind+":"+s.id.Cluster+"/"+s.id.Namespace+"/"+name, keyMax)
}

func (s *Sink) failed(e cw.CheckpointFailed, details string) {
	cp := e.Checkpoint
	var text strings.Builder
	msg := cp.FailureMessage
	if msg == "" {
		msg = "(Flink gave no failure message)"
	}
	text.WriteString(msg)
	if e.Throttled {
		text.WriteString("\n\nAttributed to S3 throttling.")
	}
	if details != "" {
		text.WriteString("\n\n")
		text.WriteString(details)
	}
	fmt.Fprintf(&text, "\n\njob_id %s, checkpoint %d, %d consecutive counted failures", e.Job.ID, cp.ID, e.Consecutive)
	if e.Until >= 0 {
		fmt.Fprintf(&text, ", %d more tolerated before Flink fails the job", e.Until)
	}
	ts := cp.Failure
	if ts.IsZero() {
		ts = e.At
	}
	s.sd.Event(&statsd.Event{
		Title:          fmt.Sprintf("Flink checkpoint %d of %s failed: %s", cp.ID, e.Job.Name, e.Reason),
		Text:           excerpt.Bytes(text.String(), textMax),
		Timestamp:      ts,
		AggregationKey: s.key("flink-checkpoint", e.Job.Name),
		Priority:       statsd.Normal,
		SourceTypeName: "flink",
		AlertType:      statsd.Error,
		Tags: []string{dogstatsd.Tag("job_name", e.Job.Name), dogstatsd.Tag("job_id", e.Job.ID),
			dogstatsd.Tag("reason", string(e.Reason)), dogstatsd.Tag("kind", cw.Kind(cp.Savepoint))},
	})
}

func (s *Sink) restarted(e cw.JobRestarted) {
	title := fmt.Sprintf("Flink job %s restarted", e.Job.Name)
	tags := []string{dogstatsd.Tag("job_name", e.Job.Name), dogstatsd.Tag("job_id", e.Job.ID)}
	var text strings.Builder
	if len(e.Exceptions) == 0 {
		text.WriteString(e.Cause)
		if e.Cause == "" {
			text.WriteString("(no exception recorded)")
		}
	} else {
		x := e.Exceptions[0]
		title += ": " + shortClass(x.Class)
		tags = append(tags, dogstatsd.Tag("exception", x.Label))
		text.WriteString(x.Message)
		if x.Task != "" {
			fmt.Fprintf(&text, "\nTask %s at %s", x.Task, x.Location)
		}
		if x.RootCause != "" {
			text.WriteString("\n\nRoot cause:\n")
			text.WriteString(x.RootCause)
		}
		if len(x.FailureLabels) > 0 {
			text.WriteString("\n\nFailure labels:")
			for _, k := range sortedKeys(x.FailureLabels) {
				fmt.Fprintf(&text, " %s=%s", k, x.FailureLabels[k])
				if len(tags) < maxTags {
					tags = append(tags, dogstatsd.Tag("failure_label_"+k, x.FailureLabels[k]))
				}
			}
		}
		if more := e.Exceptions[1:]; len(more) > 0 {
			fmt.Fprintf(&text, "\n\nEarlier since the last look (%d):", len(more))
			for _, m := range more {
				fmt.Fprintf(&text, "\n- %s %s", m.Time.UTC().Format(time.RFC3339), excerpt.Bytes(m.Message, 200))
			}
		}
	}
	s.sd.Event(&statsd.Event{
		Title:          excerpt.Bytes(title, titleMax),
		Text:           excerpt.Bytes(text.String(), textMax),
		AggregationKey: s.key("flink-restart", e.Job.Name),
		SourceTypeName: "flink",
		AlertType:      statsd.Warning,
		Tags:           tags,
	})
}

// shortClass is a class name without its package, for titles.
func shortClass(c string) string {
	if i := strings.LastIndexByte(c, '.'); i >= 0 && i+1 < len(c) {
		return c[i+1:]
	}
	return c
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
