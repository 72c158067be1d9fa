package operatorlog

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/internal/logevent"
)

// Options configure a Recognizer.
type Options struct {
	// Registerer receives the metrics; required, never the default registry.
	Registerer prometheus.Registerer
	Statsd     *dogstatsd.Client // nil: DogStatsD disabled
	Logger     *slog.Logger
	Identity   identity.Identity
	// MaxResources bounds the resource label pairs; later resources are
	// counted as resource_namespace="other", resource_name="other".
	// Default 200.
	MaxResources int
	// EventInterval: at most one Datadog event per kind of trouble and
	// resource in this long (the operator repeats some warnings on every
	// reconciliation). Default 10m.
	EventInterval time.Duration
	// Clock is time.Now outside tests.
	Clock func() time.Time
}

// Other is both resource labels' value once MaxResources resources are known.
const Other = "other"

const (
	// A log call and the audit line of the event it raised are one
	// occurrence when this close (they are written in the same
	// reconciliation, milliseconds apart).
	pairWindow      = 5 * time.Second
	maxEventMessage = 300
)

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
	statsd     dogstatsd.Metric
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

// Recognizer counts the operator's troubles. Its methods are safe for
// concurrent use; the shipper calls Observe from one goroutine.
type Recognizer struct {
	log      *slog.Logger
	sd       *dogstatsd.Client
	id       identity.Identity
	maxRes   int
	interval time.Duration
	clock    func() time.Time
	counters [numFamilies]*prometheus.CounterVec

	mu        sync.Mutex
	resources map[resource]bool
	last      map[key]occurrence
	lastEvent map[key]time.Time
}

type resource struct{ ns, name string }

type key struct {
	f Family
	r resource
}

type occurrence struct {
	t      time.Time
	form   form
	paired bool
}

// Trouble is one recognised occurrence.
type Trouble struct {
	Family    Family
	Snapshot  string // Snapshot family only
	Namespace string
	Name      string
	Serious   bool
	Source    string // where in the operator's source the line comes from
	form      form
}

// New creates a Recognizer and registers its metrics.
func New(o Options) (*Recognizer, error) {
	if o.Registerer == nil {
		return nil, fmt.Errorf("operatorlog: Options.Registerer is required")
	}
	r := &Recognizer{
		log: o.Logger, sd: o.Statsd, id: o.Identity,
		maxRes: o.MaxResources, interval: o.EventInterval, clock: o.Clock,
		resources: map[resource]bool{}, last: map[key]occurrence{}, lastEvent: map[key]time.Time{},
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.maxRes <= 0 {
		r.maxRes = 200
	}
	if r.interval <= 0 {
		r.interval = 10 * time.Minute
	}
	if r.clock == nil {
		r.clock = time.Now
	}
	for f := range numFamilies {
		labels := []string{"resource_namespace", "resource_name"}
		if f == Snapshot {
			labels = append(labels, "snapshot")
		}
		r.counters[f] = prometheus.NewCounterVec(prometheus.CounterOpts{Name: families[f].name, Help: families[f].help}, labels)
		if err := o.Registerer.Register(r.counters[f]); err != nil {
			return nil, fmt.Errorf("operatorlog metrics: %w", err)
		}
	}
	return r, nil
}

// Observe implements logevent.Observer.
func (r *Recognizer) Observe(ev *logevent.Event) {
	switch ev.Component {
	case identity.JobManager, identity.TaskManager:
		return // Flink's own logs
	}
	r.Scan(ev.Time, ev.Line)
}

// Scan analyses one event (its lines joined by '\n'); t is its time, zero
// for the time in the line. line is not retained.
func (r *Recognizer) Scan(t time.Time, line []byte) {
	var h Header
	if !ParseHeader(line, &h) {
		return
	}
	tr, ok := Recognize(&h)
	if !ok {
		return
	}
	if t.IsZero() {
		t = h.Time
	}
	if now := r.clock(); t.After(now) {
		t = now // a zone mismatch must not put occurrences in the future
	}
	r.record(t, tr, line)
}

// Recognize classifies a parsed line. It allocates only for a line it
// recognises.
func Recognize(h *Header) (Trouble, bool) {
	var tr Trouble
	var f form
	switch string(h.Level) {
	case "WARN", "ERROR":
		ru := matchLine(h)
		if ru == nil {
			return tr, false
		}
		tr = Trouble{Family: ru.family, Snapshot: ru.snapshot, Serious: ru.serious, Source: ru.source}
		f = formLine
	case "INFO":
		ru := matchEvent(h.Message)
		if ru == nil {
			return tr, false
		}
		tr = Trouble{Family: ru.family, Snapshot: ru.snapshot, Serious: ru.serious, Source: ru.source}
		f = formEvent
	default:
		return tr, false
	}
	tr.Namespace, tr.Name = string(h.Namespace), string(h.Name)
	if tr.Namespace == "" && tr.Name == "" {
		// Outside the MDC (not expected for these lines): JOSDK names the
		// resource in its message.
		tr.Namespace, tr.Name = resourceIDIn(h.Message)
	}
	tr.form = f
	return tr, true
}

func matchLine(h *Header) *rule {
	class := simpleClass(h.Logger)
	for i := range lineRules {
		ru := &lineRules[i]
		if string(h.Level) == ru.level && bytes.HasPrefix(h.Message, []byte(ru.prefix)) && string(class) == ru.class {
			return ru
		}
	}
	return nil
}

var auditEvent = []byte(">>> Event[")

// matchEvent recognises the audit line of a Warning event:
// ">>> Event[Job]        | Warning | REASON          | message".
func matchEvent(msg []byte) *eventRule {
	if !bytes.HasPrefix(msg, auditEvent) {
		return nil
	}
	fields := bytes.SplitN(msg, []byte(" | "), 4)
	if len(fields) < 4 || string(bytes.TrimSpace(fields[1])) != "Warning" {
		return nil
	}
	reason := bytes.TrimSpace(fields[2])
	text := fields[3]
	for i := range eventRules {
		ru := &eventRules[i]
		if string(reason) == ru.reason && (ru.prefix == "" || bytes.HasPrefix(text, []byte(ru.prefix))) {
			return ru
		}
	}
	return nil
}

var (
	ridName = []byte("ResourceID{name='")
	ridNS   = []byte("', namespace='")
)

// resourceIDIn reads JOSDK's ResourceID{name='app', namespace='ns'}.
func resourceIDIn(msg []byte) (ns, name string) {
	i := bytes.Index(msg, ridName)
	if i < 0 {
		return "", ""
	}
	rest := msg[i+len(ridName):]
	j := bytes.Index(rest, ridNS)
	if j < 0 {
		return "", ""
	}
	n := rest[:j]
	rest = rest[j+len(ridNS):]
	k := bytes.IndexByte(rest, '\'')
	if k < 0 {
		return "", ""
	}
	return string(rest[:k]), string(n)
}

func (r *Recognizer) record(t time.Time, tr Trouble, line []byte) {
	r.mu.Lock()
	res := r.label(resource{tr.Namespace, tr.Name})
	k := key{tr.Family, res}
	if prev, ok := r.last[k]; ok && !prev.paired && prev.form != tr.form && absDur(t.Sub(prev.t)) <= pairWindow {
		// The other half of an occurrence already counted.
		prev.paired = true
		r.last[k] = prev
		r.mu.Unlock()
		return
	}
	r.last[k] = occurrence{t: t, form: tr.form}
	announce := false
	if tr.Serious && r.sd.Enabled() && r.clock().Sub(t) <= r.interval {
		// Replayed old lines (catching up after a restart) are counted but
		// do not announce what is long over.
		if le, ok := r.lastEvent[k]; !ok || t.Sub(le) >= r.interval {
			r.lastEvent[k] = t
			announce = true
		}
	}
	r.mu.Unlock()

	labels := []string{res.ns, res.name}
	if tr.Family == Snapshot {
		labels = append(labels, tr.Snapshot)
	}
	r.counters[tr.Family].WithLabelValues(labels...).Inc()
	tags := make([]string, 0, 3)
	if res.ns != "" {
		tags = append(tags, dogstatsd.Tag("resource_namespace", res.ns))
	}
	if res.name != "" {
		tags = append(tags, dogstatsd.Tag("resource_name", res.name))
	}
	if tr.Family == Snapshot {
		tags = append(tags, dogstatsd.Tag("snapshot", tr.Snapshot))
	}
	fam := families[tr.Family]
	r.sd.Count(fam.statsd, 1, tags...)
	if announce {
		r.event(t, tr, res, line, tags)
	}
}

// label caps the resource labels' values. Called with r.mu held.
func (r *Recognizer) label(res resource) resource {
	if res == (resource{}) || r.resources[res] {
		return res
	}
	if len(r.resources) >= r.maxRes {
		return resource{Other, Other}
	}
	r.resources[res] = true
	return res
}

func (r *Recognizer) event(t time.Time, tr Trouble, res resource, line []byte, tags []string) {
	fam := families[tr.Family]
	who := res.ns + "/" + res.name
	if res == (resource{}) {
		who = "the operator"
	}
	first := line
	if i := bytes.IndexByte(first, '\n'); i >= 0 {
		first = first[:i]
	}
	var h Header
	msg := string(first)
	if ParseHeader(first, &h) {
		msg = string(h.Message)
	}
	if len(msg) > maxEventMessage {
		msg = msg[:maxEventMessage] + "…"
	}
	text := fmt.Sprintf("Flink Kubernetes Operator log: %s\n\nFurther occurrences are counted in %s; the next event for %s is sent after %s.",
		msg, fam.statsd.Name, who, r.interval)
	keyParts := []string{"flink-agent:operator", tr.Family.String(), res.ns, res.name}
	if r.id.Cluster != "" {
		keyParts = append(keyParts[:1], append([]string{r.id.Cluster}, keyParts[1:]...)...)
	}
	alert := statsd.Error
	if tr.Family == Snapshot {
		alert = statsd.Warning
	}
	r.sd.Event(&statsd.Event{
		Title:          fmt.Sprintf("%s: %s", fam.title, who),
		Text:           text,
		Timestamp:      t,
		AggregationKey: strings.Join(keyParts, ":"),
		Priority:       statsd.Normal,
		SourceTypeName: "flink",
		AlertType:      alert,
		Tags:           tags,
	})
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

var _ logevent.Observer = (*Recognizer)(nil)
