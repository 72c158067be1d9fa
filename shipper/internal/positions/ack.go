package positions

import (
	"sync"
	"sync/atomic"
)

// Ack tracks one file's acknowledgement: the end of the last event the
// reader handed on (to a batch), and the offset Loki has acknowledged.
// Hand is the reader's, Commit the sender's; the acknowledged offset is
// what gets saved.
type Ack struct {
	committed atomic.Int64 // acknowledged by Loki (sender writes)
	handed    int64        // end of the last event handed on (reader only)
}

// Hand records that the events up to end were handed on.
func (a *Ack) Hand(end int64) { a.handed = end }

// Commit records that the events up to end were acknowledged.
func (a *Ack) Commit(end int64) { a.committed.Store(end) }

// Committed is the acknowledged offset, the one saved.
func (a *Ack) Committed() int64 { return a.committed.Load() }

// Settled reports whether every event handed on is acknowledged.
func (a *Ack) Settled() bool { return a.committed.Load() >= a.handed }

// Reset makes off both handed on and acknowledged: everything before it
// needs no shipping (a file skipped as history, a duplicate copy, a file
// that starts over).
func (a *Ack) Reset(off int64) {
	a.committed.Store(off)
	a.handed = off
}

// Skip moves both offsets to end when every event handed on is
// acknowledged: bytes after a file's last event (blank lines in json mode)
// need no acknowledgement of their own.
func (a *Ack) Skip(end int64) {
	if a.handed < end && a.committed.Load() == a.handed {
		a.Reset(end)
	}
}

// Mark is where an acknowledgement moves a file's offset: the end of one
// entry of a batch.
type Mark struct {
	Ack *Ack
	End int64
}

// Commit acknowledges a batch's marks, in order: each file's offset moves
// to the end of its last entry.
func Commit(marks []Mark) {
	var last *Ack
	for i := range marks {
		m := &marks[i]
		if m.Ack != last && last != nil {
			last.Commit(marks[i-1].End)
		}
		last = m.Ack
	}
	if last != nil {
		last.Commit(marks[len(marks)-1].End)
	}
}

// Saver writes the entries a list function returns whenever asked to, and
// durably only when something changed since the last durable save.
type Saver struct {
	w    *Writer
	list func([]Entry) []Entry

	mu      sync.Mutex
	buf     []Entry
	version atomic.Int64
	durable int64 // version of the last durable save
}

// NewSaver saves what list appends to its argument through w.
func NewSaver(w *Writer, list func([]Entry) []Entry) *Saver {
	return &Saver{w: w, list: list}
}

// Changed notes that the positions may differ from the saved ones.
func (s *Saver) Changed() { s.version.Add(1) }

// Save writes the positions now: into the acknowledgement file, or
// durably.
func (s *Saver) Save(durable bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.version.Load()
	s.buf = s.list(s.buf[:0])
	if err := s.w.Write(s.buf, durable); err != nil {
		return err
	}
	if durable {
		s.durable = v
	}
	return nil
}

// Sync saves durably if anything changed since the last durable save.
func (s *Saver) Sync() error {
	s.mu.Lock()
	unchanged := s.version.Load() == s.durable
	s.mu.Unlock()
	if unchanged {
		return nil
	}
	return s.Save(true)
}

// Close releases the files.
func (s *Saver) Close() { s.w.Close() }
