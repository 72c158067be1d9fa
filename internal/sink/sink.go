// Package sink wires checkpointwatch to its sinks: Prometheus series
// (promsink), DogStatsD points and service checks (statsdsink), Datadog
// events (ddevent). A new sink is one more entry here; the watch does not
// change.
package sink

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	cw "github.com/flink-agent/flink-agent/checkpointwatch"
	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/internal/sink/ddevent"
	"github.com/flink-agent/flink-agent/internal/sink/promsink"
	"github.com/flink-agent/flink-agent/internal/sink/statsdsink"
)

// Options are what the standard sinks need.
type Options struct {
	Registerer prometheus.Registerer // required
	Statsd     *dogstatsd.Client     // nil: DogStatsD disabled
	Identity   identity.Identity
	Logger     *slog.Logger
	StuckRatio float64 // flink.stuck_ratio, validated
	// NameGrace (flink.job_name_grace, validated) and NoREST: when the
	// log's checkpoint events of a job without a name are published under
	// its id (checkpointwatch.Options).
	NameGrace time.Duration
	NoREST    bool
	Clock     func() time.Time // nil: time.Now
	// Extra sinks get every event after the standard ones.
	Extra []cw.Sink
}

// Watch builds a checkpoint watch that feeds the standard sinks.
func Watch(o Options) (*cw.Watch, error) {
	var w *cw.Watch
	prom, err := promsink.New(o.Registerer, func() []cw.JobStatus { return w.Statuses() })
	if err != nil {
		return nil, err
	}
	sinks := cw.Sinks{prom, statsdsink.New(o.Statsd), ddevent.New(o.Statsd, o.Identity)}
	w = cw.New(cw.Options{Sink: append(sinks, o.Extra...), Logger: o.Logger, StuckRatio: o.StuckRatio,
		NameGrace: o.NameGrace, NoREST: o.NoREST, Clock: o.Clock})
	return w, nil
}
