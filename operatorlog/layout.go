// Package operatorlog reads the Flink Kubernetes Operator's log and turns
// its lifecycle troubles into signals: failed deployments and upgrades,
// failed savepoints and checkpoints, impossible rollbacks, JobManager losses
// the operator cannot recover from, and reconciliation errors. Each is
// counted per FlinkDeployment or FlinkSessionJob (resource_namespace,
// resource_name, bounded), sent to DogStatsD, and the serious ones become
// Datadog events.
//
// The lines it knows are taken from the operator's source (see rules.go and
// testdata/corpus/README.md). The Recognizer decides (which line, which
// resource, one occurrence or two, news or repeat) and hands each occurrence
// to its sinks: Prometheus counters, DogStatsD counts, Datadog events. It is
// a logevent.Observer, like logscan's Scanner: it runs on the shipper's
// reader goroutine, and events that are not operator warnings or audit
// events cost a header parse and nothing else.
package operatorlog

import (
	"bytes"
	"time"
)

// Header is the start of one line in the operator's layout, the console
// pattern of its Helm chart without colour codes:
//
//	%d %-30c{1.} [%-5level]%notEmpty{[%X{resource.namespace}/}%notEmpty{%X{resource.name}]} %msg%n%throwable
//
// e.g. `2026-12-02 03:00:00,000 o.a.f.k.o.r.d.AbstractJobReconciler [WARN ][ns/app] Savepoint failed …`.
// The byte slices point into the line.
type Header struct {
	Time      time.Time // in UTC: the pattern has no zone
	Logger    []byte    // abbreviated (o.a.f.k.o.FlinkOperator)
	Level     []byte    // TRACE, DEBUG, INFO, WARN, ERROR, FATAL
	Namespace []byte    // from the MDC; empty outside a reconciliation
	Name      []byte
	Message   []byte // the rest of the first line
}

// TimeLayout is log4j's default %d.
const TimeLayout = "2006-01-02 15:04:05,000"

// ParseHeader parses the first line of an event in the operator's layout. It
// returns false for anything else, among them Flink's own layout
// (`… INFO  org.apache… [] - …`), where a level follows the time.
func ParseHeader(line []byte, h *Header) bool {
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	const tl = len(TimeLayout)
	if len(line) < tl+4 || line[4] != '-' || line[10] != ' ' || line[19] != ',' || line[tl] != ' ' {
		return false
	}
	rest := line[tl+1:]
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return false
	}
	logger := rest[:sp]
	rest = bytes.TrimLeft(rest[sp:], " ")
	if len(rest) < 3 || rest[0] != '[' {
		return false
	}
	end := bytes.IndexByte(rest, ']')
	if end < 0 {
		return false
	}
	level := bytes.TrimRight(rest[1:end], " ")
	if !isLevel(level) {
		return false
	}
	rest = rest[end+1:]
	var ns, name []byte
	switch {
	case len(rest) > 0 && rest[0] == '[':
		// [namespace/ then name]
		slash := bytes.IndexByte(rest, '/')
		stop := bytes.IndexAny(rest, "] ")
		if slash < 0 || (stop >= 0 && stop < slash) {
			return false
		}
		ns = rest[1:slash]
		rest = rest[slash+1:]
		if e := bytes.IndexAny(rest, "] "); e >= 0 && rest[e] == ']' {
			name, rest = rest[:e], rest[e+1:]
		}
	case len(rest) > 0 && rest[0] != ' ':
		// name] without a namespace (a cluster-scoped resource)
		e := bytes.IndexAny(rest, "] ")
		if e < 0 || rest[e] != ']' {
			return false
		}
		name, rest = rest[:e], rest[e+1:]
	}
	if len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	t, err := time.Parse(TimeLayout, string(line[:tl]))
	if err != nil {
		return false
	}
	*h = Header{Time: t, Logger: logger, Level: level, Namespace: ns, Name: name, Message: rest}
	return true
}

func isLevel(b []byte) bool {
	switch string(b) {
	case "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL":
		return true
	}
	return false
}

// simpleClass is the logger's last segment: the class name, in full even
// when %c{1.} abbreviated the package.
func simpleClass(logger []byte) []byte {
	if i := bytes.LastIndexByte(logger, '.'); i >= 0 {
		return logger[i+1:]
	}
	return logger
}
