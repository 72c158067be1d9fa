package operatorlog

import (
	"fmt"
	"strings"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/dogstatsd"
)

// Occurrence is one counted trouble, as the Recognizer decided it: the
// resource labels are capped, a log line and its event's audit line are one
// occurrence, and Announce says whether it is news for a Datadog event.
type Occurrence struct {
	Time     time.Time
	Trouble  Trouble
	Announce bool   // serious, and the first for its kind and resource in EventInterval
	Message  string // the line's message, cut; set only when Announce
}

// Sink acts on occurrences. The Recognizer calls it outside its lock, on
// the shipper's reader goroutine: it must be quick.
type Sink interface {
	Occurred(o *Occurrence)
}

// Metric names: a public contract (dashboards, alerts, README).
const (
	MetricDeployment = "flink_operator_deployment_failures_total"
	MetricSnapshot   = "flink_operator_snapshot_failures_total"
	MetricRollback   = "flink_operator_rollback_failures_total"
	MetricJobManager = "flink_operator_jobmanager_unrecoverable_total"
	MetricReconcile  = "flink_operator_reconcile_errors_total"
)

var families = [numFamilies]struct {
	name, help string
	statsd     dogstatsd.CountMetric
	title      string
}{
	Deployment: {MetricDeployment, "Failed deployments and upgrades of Flink resources seen in the Flink Kubernetes Operator's log (JobManager containers failing, cancellation errors, rollbacks, failed session job submissions).",
		dogstatsd.OperatorDeploymentFailures, "Flink deployment failed"},
	Snapshot: {MetricSnapshot, "Savepoints and checkpoints triggered by the Flink Kubernetes Operator that failed, by snapshot (savepoint, checkpoint, or snapshot for a FlinkStateSnapshot).",
		dogstatsd.OperatorSnapshotFailures, "Flink snapshot failed"},
	Rollback: {MetricRollback, "Failed upgrades the Flink Kubernetes Operator could not roll back (missing HA metadata).",
		dogstatsd.OperatorRollbackFailures, "Flink rollback not possible"},
	JobManager: {MetricJobManager, "Lost or unhealthy JobManager deployments the Flink Kubernetes Operator could not recover (no HA metadata).",
		dogstatsd.OperatorJobManagerUnrecoverable, "Flink JobManager lost and not recoverable"},
	Reconcile: {MetricReconcile, "Reconciliations of Flink resources that ended in an exception in the Flink Kubernetes Operator.",
		dogstatsd.OperatorReconcileErrors, "Flink operator reconciliation failing"},
}

// promSink counts occurrences in one counter family per kind.
type promSink struct {
	counters [numFamilies]*prometheus.CounterVec
}

func newPromSink(reg prometheus.Registerer) (*promSink, error) {
	p := &promSink{}
	for f := range numFamilies {
		labels := []string{"resource_namespace", "resource_name"}
		if f == Snapshot {
			labels = append(labels, "snapshot")
		}
		p.counters[f] = prometheus.NewCounterVec(prometheus.CounterOpts{Name: families[f].name, Help: families[f].help}, labels)
		if err := reg.Register(p.counters[f]); err != nil {
			return nil, fmt.Errorf("operatorlog metrics: %w", err)
		}
	}
	return p, nil
}

func (p *promSink) Occurred(o *Occurrence) {
	tr := &o.Trouble
	if tr.Family == Snapshot {
		p.counters[Snapshot].WithLabelValues(tr.Namespace, tr.Name, tr.Snapshot).Inc()
		return
	}
	p.counters[tr.Family].WithLabelValues(tr.Namespace, tr.Name).Inc()
}

// statsdSink sends each occurrence as a DogStatsD count.
type statsdSink struct{ sd *dogstatsd.Client }

func (s statsdSink) Occurred(o *Occurrence) {
	if !s.sd.Enabled() {
		return
	}
	s.sd.Count(families[o.Trouble.Family].statsd, 1, tags(&o.Trouble)...)
}

func tags(tr *Trouble) []string {
	t := make([]string, 0, 3)
	if tr.Namespace != "" {
		t = append(t, dogstatsd.Tag("resource_namespace", tr.Namespace))
	}
	if tr.Name != "" {
		t = append(t, dogstatsd.Tag("resource_name", tr.Name))
	}
	if tr.Family == Snapshot {
		t = append(t, dogstatsd.Tag("snapshot", tr.Snapshot))
	}
	return t
}

// eventSink sends a Datadog event for each announced occurrence.
type eventSink struct {
	sd       *dogstatsd.Client
	cluster  string
	interval time.Duration
}

func (e *eventSink) Occurred(o *Occurrence) {
	if !o.Announce || !e.sd.Enabled() {
		return
	}
	tr := &o.Trouble
	fam := families[tr.Family]
	who := tr.Namespace + "/" + tr.Name
	if tr.Namespace == "" && tr.Name == "" {
		who = "the operator"
	}
	text := fmt.Sprintf("Flink Kubernetes Operator log: %s\n\nFurther occurrences are counted in %s; the next event for %s is sent after %s.",
		o.Message, fam.statsd.Name, who, e.interval)
	keyParts := []string{"flink-agent:operator", tr.Family.String(), tr.Namespace, tr.Name}
	if e.cluster != "" {
		keyParts = []string{"flink-agent:operator", e.cluster, tr.Family.String(), tr.Namespace, tr.Name}
	}
	alert := statsd.Error
	if tr.Family == Snapshot {
		alert = statsd.Warning
	}
	e.sd.Event(&statsd.Event{
		Title:          fmt.Sprintf("%s: %s", fam.title, who),
		Text:           text,
		Timestamp:      o.Time,
		AggregationKey: strings.Join(keyParts, ":"),
		Priority:       statsd.Normal,
		SourceTypeName: "flink",
		AlertType:      alert,
		Tags:           tags(tr),
	})
}
