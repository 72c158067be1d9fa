package operatorlog

import (
	"bytes"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/dogstatsd"
	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/internal/labelvalue"
	"github.com/flink-agent/flink-agent/internal/logevent"
)

// Options configure a Recognizer.
type Options struct {
	// Registerer receives the metrics; required, never the default registry.
	Registerer prometheus.Registerer
	Statsd     *dogstatsd.Client // nil: DogStatsD disabled
	Identity   identity.Identity // its cluster names Datadog events' aggregation keys
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
	// Extra sinks get every occurrence after the standard ones
	// (Prometheus, DogStatsD, Datadog events).
	Extra []Sink
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

// Recognizer counts the operator's troubles. Its methods are safe for
// concurrent use; the shipper calls Observe from one goroutine.
type Recognizer struct {
	maxRes   int
	interval time.Duration
	clock    func() time.Time
	events   bool // a sink sends Datadog events: worth deciding announcements
	sinks    []Sink

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
		maxRes: o.MaxResources, interval: o.EventInterval, clock: o.Clock,
		resources: map[resource]bool{}, last: map[key]occurrence{}, lastEvent: map[key]time.Time{},
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
	prom, err := newPromSink(o.Registerer)
	if err != nil {
		return nil, err
	}
	r.sinks = append([]Sink{prom, statsdSink{o.Statsd}, &eventSink{sd: o.Statsd, cluster: o.Identity.Cluster, interval: r.interval}}, o.Extra...)
	r.events = o.Statsd.Enabled() || len(o.Extra) > 0
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
	// Label values: Kubernetes bounds its names, a log line does not.
	tr.Namespace, tr.Name = labelvalue.Cap(tr.Namespace), labelvalue.Cap(tr.Name)
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
	if tr.Serious && r.events && r.clock().Sub(t) <= r.interval {
		// Replayed old lines (catching up after a restart) are counted but
		// do not announce what is long over.
		if le, ok := r.lastEvent[k]; !ok || t.Sub(le) >= r.interval {
			r.lastEvent[k] = t
			announce = true
		}
	}
	r.mu.Unlock()

	tr.Namespace, tr.Name = res.ns, res.name
	o := Occurrence{Time: t, Trouble: tr, Announce: announce}
	if announce {
		o.Message = message(line)
	}
	for _, s := range r.sinks {
		s.Occurred(&o)
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

// message is the first line's message, cut for an event.
func message(line []byte) string {
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	var h Header
	msg := string(line)
	if ParseHeader(line, &h) {
		msg = string(h.Message)
	}
	if len(msg) > maxEventMessage {
		n := maxEventMessage
		for n > 0 && !utf8.RuneStart(msg[n]) { // not inside a character
			n--
		}
		msg = msg[:n] + "…"
	}
	return msg
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

var _ logevent.Observer = (*Recognizer)(nil)
