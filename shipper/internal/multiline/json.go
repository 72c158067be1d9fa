package multiline

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// jsonRecord is what json mode reads of an event: top-level keys only,
// with the names of log4j2's JsonTemplateLayout (EcsLayout, GelfLayout)
// and JsonLayout, logback and most others. The first name of each list
// that is present wins. A parser reuses one record: RawMessage keeps its
// capacity, so decoding allocates nothing once warm.
type jsonRecord struct {
	Level       json.RawMessage `json:"level"`
	LogLevel    json.RawMessage `json:"log.level"`
	Severity    json.RawMessage `json:"severity"`
	LoggerName  json.RawMessage `json:"loggerName"`
	LoggerSnake json.RawMessage `json:"logger_name"`
	LogLogger   json.RawMessage `json:"log.logger"`
	Logger      json.RawMessage `json:"logger"`
	ThreadSnake json.RawMessage `json:"thread_name"`
	ThreadName  json.RawMessage `json:"threadName"`
	ProcThread  json.RawMessage `json:"process.thread.name"`
	Thread      json.RawMessage `json:"thread"`
	AtTimestamp json.RawMessage `json:"@timestamp"`
	Timestamp   json.RawMessage `json:"timestamp"`
	Time        json.RawMessage `json:"time"`
	TimeMillis  json.RawMessage `json:"timeMillis"`
	// log4j2 JsonLayout: "instant":{"epochSecond":1700000000,"nanoOfSecond":123000000}
	Instant json.RawMessage `json:"instant"`
}

// reset empties the values (a key absent from the next line leaves its
// field as it is), keeping their capacity.
func (r *jsonRecord) reset() {
	*r = jsonRecord{
		Level: r.Level[:0], LogLevel: r.LogLevel[:0], Severity: r.Severity[:0],
		LoggerName: r.LoggerName[:0], LoggerSnake: r.LoggerSnake[:0], LogLogger: r.LogLogger[:0], Logger: r.Logger[:0],
		ThreadSnake: r.ThreadSnake[:0], ThreadName: r.ThreadName[:0], ProcThread: r.ProcThread[:0], Thread: r.Thread[:0],
		AtTimestamp: r.AtTimestamp[:0], Timestamp: r.Timestamp[:0], Time: r.Time[:0], TimeMillis: r.TimeMillis[:0],
		Instant: r.Instant[:0],
	}
}

// pick returns the text of the first value that is a non-empty string or
// a number (decoded into scratch buffer i if it has escapes).
func (p *Parser) pick(i int, vs ...json.RawMessage) []byte {
	for _, v := range vs {
		if t := p.jsonText(v, i); len(t) > 0 {
			return t
		}
	}
	return nil
}

// parseJSON reads level, logger, thread and time from a one-line JSON
// object's top-level keys; it returns the time in unix nanoseconds or 0.
// A line that is not a JSON object says nothing (it is still shipped).
// h.jsonLogger and h.jsonThread stay valid until the next call.
func (p *Parser) parseJSON(line []byte, h *header) int64 {
	*h = header{}
	r := &p.rec
	r.reset()
	if json.Unmarshal(line, r) != nil {
		return 0
	}
	if v := p.pick(0, r.Level, r.LogLevel, r.Severity); len(v) <= 8 {
		var up [8]byte
		for i, c := range v {
			if c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			up[i] = c
		}
		h.level = parseLevel(up[:len(v)])
	}
	h.jsonLogger = p.pick(1, r.LoggerName, r.LoggerSnake, r.LogLogger, r.Logger)
	h.jsonThread = p.pick(2, r.ThreadSnake, r.ThreadName, r.ProcThread, r.Thread)
	if v := p.pick(0, r.AtTimestamp, r.Timestamp, r.Time, r.TimeMillis); v != nil {
		if ts, ok := jsonTime(v); ok {
			return ts
		}
	}
	if len(r.Instant) > 0 {
		var in struct {
			EpochSecond  int64 `json:"epochSecond"`
			NanoOfSecond int64 `json:"nanoOfSecond"`
		}
		if json.Unmarshal(r.Instant, &in) == nil && in.EpochSecond > 0 {
			return in.EpochSecond*1e9 + in.NanoOfSecond
		}
	}
	return 0
}

// jsonText is the text of a string or number value (decoded into scratch
// buffer i if it has escapes); nil for anything else.
func (p *Parser) jsonText(v json.RawMessage, i int) []byte {
	switch {
	case len(v) == 0:
		return nil
	case v[0] == '"':
		s := v[1 : len(v)-1]
		if bytes.IndexByte(s, '\\') < 0 {
			return s
		}
		var u string
		if json.Unmarshal(v, &u) != nil {
			return nil
		}
		p.scratch[i] = append(p.scratch[i][:0], u...)
		return p.scratch[i]
	case v[0] == '-' || isDigit(v[0]):
		return v
	}
	return nil
}

// jsonTime reads an RFC 3339 time or a Unix time in seconds, milliseconds,
// microseconds or nanoseconds (told apart by magnitude), or in seconds
// with a fraction (GELF).
func jsonTime(s []byte) (int64, bool) {
	if len(s) > 4 && s[4] == '-' {
		if t, err := time.Parse(time.RFC3339Nano, string(s)); err == nil {
			return t.UnixNano(), true
		}
		return 0, false
	}
	if n, err := strconv.ParseInt(string(s), 10, 64); err == nil {
		switch {
		case n > 1e17: // nanoseconds
			return n, true
		case n > 1e14: // microseconds
			return n * 1e3, true
		case n > 1e11: // milliseconds
			return n * 1e6, true
		default:
			return n * 1e9, true
		}
	}
	if f, err := strconv.ParseFloat(string(s), 64); err == nil && f > 0 && f < 1e11 {
		sec, frac := math.Modf(f)
		return int64(sec)*1e9 + int64(math.Round(frac*1e6))*1e3, true // microseconds: what a float64 holds
	}
	return 0, false
}
