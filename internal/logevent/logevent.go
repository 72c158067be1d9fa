// Package logevent is what the log shipper hands to the code that analyses
// logs (logscan, and any later consumer): one event after multiline
// grouping and redaction, and the interfaces that receive it. It is a leaf:
// the shipper and its observers both import it, and neither imports the
// other.
package logevent

import "time"

// Event is one log record after multiline grouping and redaction.
type Event struct {
	Time   time.Time // from the line; the read time when it has none
	Line   []byte    // the whole event, lines joined by '\n'; valid only during Observe
	Level  string    // lower-case (info, warn, …); "" when unknown
	Logger string
	Thread string
	// The Kubernetes resource a Flink Kubernetes Operator line is about
	// (its "[namespace/name]"); "" in other layouts.
	ResourceNamespace, ResourceName string
	File                            string // path of the file it was read from
	Component                       string // jobmanager, taskmanager, operator or ""
}

// Observer analyses events. Observe is called synchronously on the
// shipper's reader goroutine, so it must be fast, and must not retain
// ev.Line (copy it). The string fields may be kept.
type Observer interface {
	Observe(ev *Event)
}

// HeaderObserver is an Observer that also sees each log4j event's first line
// as soon as it is read, before continuation lines and the multiline idle
// flush (logs.multiline.idle_timeout) complete the event: a sub-second signal
// for one-line records such as Flink's checkpoint lifecycle. ev.Line is that
// first line, not yet redacted, so nothing derived from it may leave the
// process; the full event still reaches Observe.
type HeaderObserver interface {
	Observer
	ObserveHeader(ev *Event)
}
