// Package ddevent turns checkpointwatch's events into Datadog events: one
// per failed checkpoint, with Flink's raw failure message and, when the
// collector fetched them, the checkpoint's per-vertex details; one per job
// restart, with its root exception.
package ddevent

import (
	"fmt"
	"strings"

	"github.com/DataDog/datadog-go/v5/statsd"

	cw "github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/excerpt"
	"github.com/flink-agent/flink-agent/internal/identity"
)

const (
	textMax = 3900 // Datadog caps event text at 4000 characters
	keyMax  = 100  // and aggregation keys at 100
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
	text := e.Cause
	if text == "" {
		text = "(no exception recorded)"
	}
	s.sd.Event(&statsd.Event{
		Title:          fmt.Sprintf("Flink job %s restarted", e.Job.Name),
		Text:           excerpt.Bytes(text, textMax),
		AggregationKey: s.key("flink-restart", e.Job.Name),
		SourceTypeName: "flink",
		AlertType:      statsd.Warning,
		Tags:           []string{dogstatsd.Tag("job_name", e.Job.Name), dogstatsd.Tag("job_id", e.Job.ID)},
	})
}
