// Package logtest holds what the tests of log consumers (logscan,
// operatorlog) share: a log file split into events the way the shipper
// groups them, and a DogStatsD client that records what it is sent.
package logtest

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/DataDog/datadog-go/v5/statsd"
	dto "github.com/prometheus/client_model/go"
)

// Log4jStart is the default start of an event: log4j's %d.
var Log4jStart = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} `)

// Events reads path and groups its lines into events as the shipper's
// multiline grouping does: an event starts at a line matching start, and
// its lines are joined by '\n'.
func Events(path string, start *regexp.Regexp) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var evs [][]byte
	var cur []byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Bytes()
		if start.Match(l) && cur != nil {
			evs = append(evs, cur)
			cur = nil
		}
		if cur != nil {
			cur = append(cur, '\n')
		}
		cur = append(cur, l...)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur != nil {
		evs = append(evs, cur)
	}
	return evs, nil
}

// Statsd records the counts ("name value tag,tag") and events sent to it.
type Statsd struct {
	statsd.NoOpClient
	mu     sync.Mutex
	Counts []string
	Events []*statsd.Event
}

// Count implements statsd.ClientInterface.
func (r *Statsd) Count(name string, value int64, tags []string, _ float64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Counts = append(r.Counts, fmt.Sprintf("%s %d %s", name, value, strings.Join(tags, ",")))
	return nil
}

// Event implements statsd.ClientInterface.
func (r *Statsd) Event(e *statsd.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Events = append(r.Events, e)
	return nil
}

// Label is the value of a gathered metric's label, "" when it has none.
func Label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
