// Package multiline turns a file's lines into events: in log4j mode a line
// matching the start pattern begins an event and every other line (a stack
// trace's "\tat …", "Caused by: …") continues it; in json mode each line is
// one event. It also reads what an event's first line says: time, level,
// logger, thread, and where the message starts.
package multiline

import (
	"bytes"
	"regexp"
	"strconv"
	"time"
)

// Settings configure grouping. They are validated by internal/config.
type Settings struct {
	// JSON: one event per line (logs.multiline.mode: json); else log4j.
	JSON bool
	// StartPattern (log4j mode) matches the first line of an event.
	// Flink's timestamp pattern is recognised and matched without the
	// regexp engine.
	StartPattern *regexp.Regexp
	// MaxEventBytes caps an event; the rest is dropped with a marker.
	MaxEventBytes int
	// Location of log4j timestamps (the agent's time zone).
	Location *time.Location
}

// log4jStart is the default start pattern, Flink's
// %d{yyyy-MM-dd HH:mm:ss,SSS}: isLog4jTime matches exactly what it does.
const log4jStart = `^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}`

// internCap is how many distinct logger and thread names are kept as
// strings.
const internCap = 4096

// Parser holds what the groupers of all files share: the settings, the
// timestamp cache and the interned names. Like its groupers it is used by
// one goroutine.
type Parser struct {
	json     bool
	startRE  *regexp.Regexp // nil: isLog4jTime
	maxEvent int
	ts       tsParser
	loggers  interner
	threads  interner
	resnames interner   // operator resources' namespaces and names
	rec      jsonRecord // json mode's scratch
	scratch  [3][]byte  // decoded json values with escapes
}

// New returns a parser for s.
func New(s Settings) *Parser {
	p := &Parser{json: s.JSON, maxEvent: s.MaxEventBytes, ts: tsParser{loc: s.Location},
		loggers: newInterner(internCap), threads: newInterner(internCap), resnames: newInterner(internCap)}
	if s.StartPattern != nil && s.StartPattern.String() != log4jStart {
		p.startRE = s.StartPattern
	}
	return p
}

// Event is a complete event, or (for a Grouper's begin) the first line of
// a log4j event just read.
type Event struct {
	Text   []byte // the lines joined by '\n'; valid only during the call
	Lines  int
	End    int64  // file offset after its last line: acknowledging it moves the file's position there
	Time   int64  // unix nanoseconds, from the first line; 0: it has none
	Level  Level  // Unknown when the line does not say
	Logger string // "" when unknown
	Thread string
	// The Kubernetes resource a Flink Kubernetes Operator line is about
	// (its "[namespace/name]"); "" in other layouts.
	ResourceNamespace, ResourceName string
	MsgStart                        int // where the message starts in Text (after the log4j header), 0 if unknown
}

// Grouper assembles one file's events. Line takes each line in order;
// complete events go to emit, which may fail (the shipper stopping): the
// event is then kept and the error returned.
type Grouper struct {
	p     *Parser
	emit  func(*Event) error
	begin func(*Event) // nil, or sees each log4j event's first line at once

	ev      []byte // the event being assembled
	lines   int
	dropped int // bytes over the cap
	end     int64
	ts      int64
	hdr     header
	out     Event
}

// Grouper returns the grouper of one file. begin, if not nil, is called
// with the first line of each log4j event as soon as it is read, before
// its continuation lines (Event.Text is that line, Logger and Thread are
// empty).
func (p *Parser) Grouper(emit func(*Event) error, begin func(*Event)) *Grouper {
	return &Grouper{p: p, emit: emit, begin: begin}
}

// Pending reports whether an event is being assembled.
func (g *Grouper) Pending() bool { return g.lines > 0 }

// Release gives back the event buffer while nothing is pending: a file
// closed for inactivity costs no memory but its bookkeeping.
func (g *Grouper) Release() {
	if g.lines == 0 {
		g.ev = nil
	}
}

// Flush completes the event being assembled: the file ended, or no line
// came for the idle timeout.
func (g *Grouper) Flush() error {
	if g.lines == 0 {
		return nil
	}
	return g.flush()
}

// Line takes one line (without its newline) ending at file offset end;
// join: it is the next piece of a line longer than the read buffer.
func (g *Grouper) Line(line []byte, end int64, join bool) error {
	p := g.p
	if join {
		if g.lines == 0 {
			// The rest of a line whose start was completed already (by
			// the idle flush between two pieces): an event of its own,
			// not lost.
			g.start(line, end, false)
		} else {
			g.add(line, end, false)
		}
		if p.json && jsonComplete(line) {
			return g.flush()
		}
		return nil
	}
	if p.json {
		// A line is an event. One that does not end a JSON object may be
		// the first piece of a longer line: it waits for its pieces, the
		// next line or the idle flush, so a record is never cut in two.
		if g.lines > 0 {
			if err := g.flush(); err != nil {
				return err
			}
		}
		if len(bytes.TrimSpace(line)) == 0 {
			return nil
		}
		g.start(line, end, false)
		if jsonComplete(line) {
			return g.flush()
		}
		return nil
	}
	var start bool
	if p.startRE == nil {
		start = isLog4jTime(line)
	} else {
		start = p.startRE.Match(line)
	}
	if start {
		if g.lines > 0 {
			if err := g.flush(); err != nil {
				return err
			}
		}
		g.start(line, end, true)
		if g.begin != nil {
			ev := &g.out
			*ev = Event{Text: g.ev, Lines: 1, End: end, Time: g.ts, Level: g.hdr.level}
			g.begin(ev)
			ev.Text = nil
		}
		return nil
	}
	if g.lines == 0 {
		// A continuation without its start (file begins mid-trace).
		g.start(line, end, false)
		return nil
	}
	g.add(line, end, true)
	return nil
}

// start begins an event with line; start: it matched the start pattern.
func (g *Grouper) start(line []byte, end int64, start bool) {
	if g.ev == nil {
		g.ev = make([]byte, 0, 512)
	}
	limit := g.p.maxEvent
	keep := len(line)
	if keep > limit {
		keep = utf8Cut(line, limit)
	}
	g.ev = append(g.ev[:0], line[:keep]...)
	g.dropped = len(line) - keep
	g.lines = 1
	g.end = end
	g.ts = 0
	g.hdr = header{}
	if g.p.json {
		return // parsed when complete (flush)
	}
	if start && isLog4jTime(g.ev) {
		if ts, ok := g.p.ts.parse(g.ev); ok {
			g.ts = ts
		}
		parseHeader(g.ev, &g.hdr)
	}
}

// add appends a line (newline: a line of its own; else the next piece of
// the last one), within the cap.
func (g *Grouper) add(line []byte, end int64, newline bool) {
	g.end = end
	if newline {
		g.lines++
	}
	need := len(line)
	if newline {
		need++
	}
	room := g.p.maxEvent - len(g.ev)
	if need <= room {
		if newline {
			g.ev = append(g.ev, '\n')
		}
		g.ev = append(g.ev, line...)
		return
	}
	if room > 1 {
		if newline {
			g.ev = append(g.ev, '\n')
			room--
			need--
		}
		keep := utf8Cut(line, room)
		g.ev = append(g.ev, line[:keep]...)
		need -= keep
	}
	g.dropped += need
}

// jsonComplete reports whether a line (or its last piece) ends a JSON
// object.
func jsonComplete(b []byte) bool {
	b = bytes.TrimRight(b, " \t\r")
	return len(b) > 0 && b[len(b)-1] == '}'
}

// flush hands the event on and starts afresh.
func (g *Grouper) flush() error {
	if g.p.json {
		g.ts = g.p.parseJSON(g.ev, &g.hdr)
	}
	if g.dropped > 0 {
		g.ev = append(g.ev, " … [truncated by flink-agent: "...)
		g.ev = strconv.AppendInt(g.ev, int64(g.dropped), 10)
		g.ev = append(g.ev, " bytes dropped]"...)
		g.dropped = 0
	}
	h := &g.hdr
	ev := &g.out
	*ev = Event{Text: g.ev, Lines: g.lines, End: g.end, Time: g.ts, Level: h.level, MsgStart: h.msgStart}
	switch {
	case h.loggerEnd > h.loggerStart:
		ev.Logger = g.p.loggers.get(g.ev[h.loggerStart:h.loggerEnd])
	case h.jsonLogger != nil:
		ev.Logger = g.p.loggers.get(h.jsonLogger)
	}
	switch {
	case h.threadEnd > h.threadStart:
		ev.Thread = g.p.threads.get(g.ev[h.threadStart:h.threadEnd])
	case h.jsonThread != nil:
		ev.Thread = g.p.threads.get(h.jsonThread)
	}
	if h.nsEnd > h.nsStart {
		ev.ResourceNamespace = g.p.resnames.get(g.ev[h.nsStart:h.nsEnd])
	}
	if h.nameEnd > h.nameStart {
		ev.ResourceName = g.p.resnames.get(g.ev[h.nameStart:h.nameEnd])
	}
	if err := g.emit(ev); err != nil {
		return err
	}
	ev.Text = nil
	g.ev = g.ev[:0]
	g.lines, g.ts = 0, 0
	return nil
}

// utf8Cut returns a length <= limit that does not split a UTF-8 sequence.
func utf8Cut(b []byte, limit int) int {
	if limit >= len(b) {
		return len(b)
	}
	n := limit
	for n > 0 && n > limit-4 && b[n]&0xC0 == 0x80 {
		n--
	}
	return n
}

// interner turns logger and thread names into strings once: the hot path
// looks them up without allocating.
type interner struct {
	m   map[string]string
	max int
	// A direct-mapped cache in front of the map: a comparison of a few
	// dozen bytes instead of hashing the whole name, and most events
	// come from a handful of loggers.
	recent [256]string
}

func newInterner(limit int) interner { return interner{m: make(map[string]string), max: limit} }

func (in *interner) get(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	n := len(b)
	slot := (n*7 ^ int(b[n-1])<<1 ^ int(b[n/2])<<3 ^ int(b[n*3/4])<<2) & 255
	if s := in.recent[slot]; s == string(b) {
		return s
	}
	s, ok := in.m[string(b)]
	if !ok {
		s = string(b)
		if len(in.m) < in.max {
			in.m[s] = s
		}
	}
	in.recent[slot] = s
	return s
}
