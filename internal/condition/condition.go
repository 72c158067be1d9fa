// Package condition logs a recurring problem twice: a warning when it
// starts and a line when it ends, saying how often it occurred and for how
// long — never once per occurrence. Fifty failed pushes a second are two
// log lines, not three million an hour.
package condition

import (
	"log/slog"
	"sync"
	"time"
)

// Warning is one condition, e.g. "Loki push failing". Safe for concurrent
// use; it logs outside its lock.
type Warning struct {
	log *slog.Logger
	msg string
	now func() time.Time

	mu sync.Mutex
	st state
}

type state struct {
	active bool
	count  int64
	since  time.Time
}

// New returns the condition msg, logged on log.
func New(log *slog.Logger, msg string) *Warning {
	return &Warning{log: log, msg: msg, now: time.Now}
}

// Fail records one occurrence. The first of a run logs msg at warning
// level with attrs (what went wrong this time, e.g. "err", err) and
// reports true; the others are only counted.
func (w *Warning) Fail(attrs ...any) bool {
	w.mu.Lock()
	started := w.st.fail(w.now())
	w.mu.Unlock()
	if started {
		w.log.Warn(w.msg, append([]any{"condition", "started"}, attrs...)...)
	}
	return started
}

// OK ends a run, if one is going on: msg is logged at info level with how
// many times it occurred and for how long, and OK reports true.
func (w *Warning) OK(attrs ...any) bool {
	w.mu.Lock()
	ended, n, d := w.st.ok(w.now())
	w.mu.Unlock()
	if ended {
		w.log.Info(w.msg, append([]any{"condition", "ended", "occurrences", n, "duration", d}, attrs...)...)
	}
	return ended
}

// Active reports whether a run is going on.
func (w *Warning) Active() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st.active
}

func (s *state) fail(now time.Time) bool {
	s.count++
	if s.active {
		return false
	}
	s.active, s.since = true, now
	return true
}

func (s *state) ok(now time.Time) (bool, int64, time.Duration) {
	if !s.active {
		return false, 0, 0
	}
	n, d := s.count, now.Sub(s.since).Round(time.Millisecond)
	*s = state{}
	return true, n, d
}

// Set is one condition per key — per file, per endpoint — each logged
// with key=<k>. Keys in no run hold no memory.
type Set[K comparable] struct {
	log *slog.Logger
	msg string
	key string
	now func() time.Time

	mu sync.Mutex
	m  map[K]*state
}

// NewSet returns the condition msg per key, the key logged as attribute
// keyAttr.
func NewSet[K comparable](log *slog.Logger, msg, keyAttr string) *Set[K] {
	return &Set[K]{log: log, msg: msg, key: keyAttr, now: time.Now, m: map[K]*state{}}
}

// Fail records one occurrence for k; see Warning.Fail.
func (s *Set[K]) Fail(k K, attrs ...any) bool {
	s.mu.Lock()
	st := s.m[k]
	if st == nil {
		st = &state{}
		s.m[k] = st
	}
	started := st.fail(s.now())
	s.mu.Unlock()
	if started {
		s.log.Warn(s.msg, append([]any{s.key, k, "condition", "started"}, attrs...)...)
	}
	return started
}

// OK ends k's run, if one is going on; see Warning.OK. Call it also when
// k goes away (a deleted file), so that the end is logged and k's memory
// freed.
func (s *Set[K]) OK(k K, attrs ...any) bool {
	s.mu.Lock()
	var ended bool
	var n int64
	var d time.Duration
	if st := s.m[k]; st != nil {
		ended, n, d = st.ok(s.now())
		delete(s.m, k)
	}
	s.mu.Unlock()
	if ended {
		s.log.Info(s.msg, append([]any{s.key, k, "condition", "ended", "occurrences", n, "duration", d}, attrs...)...)
	}
	return ended
}

// Active is the number of keys in a run.
func (s *Set[K]) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
