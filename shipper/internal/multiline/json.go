package multiline

import (
	"bytes"
	"strconv"
	"time"
	"unsafe"
)

// JSON-mode field names, as written by log4j2's JsonTemplateLayout
// (EcsLayout, GelfLayout) and JsonLayout, logback and most others.
var (
	jsonLevelKeys  = [][]byte{[]byte(`"level"`), []byte(`"log.level"`), []byte(`"severity"`)}
	jsonLoggerKeys = [][]byte{[]byte(`"loggerName"`), []byte(`"logger_name"`), []byte(`"log.logger"`), []byte(`"logger"`)}
	jsonThreadKeys = [][]byte{[]byte(`"thread_name"`), []byte(`"threadName"`), []byte(`"process.thread.name"`), []byte(`"thread"`)}
	jsonTimeKeys   = [][]byte{[]byte(`"@timestamp"`), []byte(`"timestamp"`), []byte(`"time"`), []byte(`"timeMillis"`)}
)

// parseJSON finds level, logger, thread and time in a one-line JSON
// object without decoding it; it returns the time in unix nanoseconds or
// 0. Values with escapes are taken as written.
func parseJSON(line []byte, h *header) int64 {
	*h = header{}
	if s, e, ok := jsonValue(line, jsonLevelKeys); ok {
		var up [8]byte
		if n := e - s; n <= len(up) {
			for i, c := range line[s:e] {
				if c >= 'a' && c <= 'z' {
					c -= 'a' - 'A'
				}
				up[i] = c
			}
			h.level = parseLevel(up[:n])
		}
	}
	if s, e, ok := jsonValue(line, jsonLoggerKeys); ok {
		h.loggerStart, h.loggerEnd = s, e
	}
	if s, e, ok := jsonValue(line, jsonThreadKeys); ok {
		h.threadStart, h.threadEnd = s, e
	}
	if s, e, ok := jsonValue(line, jsonTimeKeys); ok {
		v := line[s:e]
		if n, err := strconv.ParseInt(unsafe.String(&v[0], len(v)), 10, 64); err == nil {
			switch {
			case n > 1e17: // nanoseconds
				return n
			case n > 1e14: // microseconds
				return n * 1e3
			case n > 1e11: // milliseconds
				return n * 1e6
			default:
				return n * 1e9
			}
		}
		if t, err := time.Parse(time.RFC3339Nano, unsafe.String(&v[0], len(v))); err == nil {
			return t.UnixNano()
		}
	}
	// log4j2 JsonLayout: "instant":{"epochSecond":1700000000,"nanoOfSecond":123000000}
	if i := bytes.Index(line, []byte(`"epochSecond"`)); i >= 0 {
		sec, _ := jsonNumber(line[i+len(`"epochSecond"`):])
		var nano int64
		if j := bytes.Index(line, []byte(`"nanoOfSecond"`)); j >= 0 {
			nano, _ = jsonNumber(line[j+len(`"nanoOfSecond"`):])
		}
		if sec > 0 {
			return sec*1e9 + nano
		}
	}
	return 0
}

// jsonValue returns the range of the first key's string or number value.
func jsonValue(line []byte, keys [][]byte) (int, int, bool) {
	for _, k := range keys {
		i := bytes.Index(line, k)
		if i < 0 {
			continue
		}
		p := i + len(k)
		for p < len(line) && (line[p] == ' ' || line[p] == '\t') {
			p++
		}
		if p >= len(line) || line[p] != ':' {
			continue
		}
		p++
		for p < len(line) && (line[p] == ' ' || line[p] == '\t') {
			p++
		}
		if p >= len(line) {
			continue
		}
		if line[p] == '"' {
			e := p + 1
			for e < len(line) && line[e] != '"' {
				if line[e] == '\\' {
					e++
				}
				e++
			}
			if e <= len(line) && e > p+1 {
				return p + 1, min(e, len(line)), true
			}
			continue
		}
		e := p
		for e < len(line) && (isDigit(line[e]) || line[e] == '-' || line[e] == '.') {
			e++
		}
		if e > p {
			return p, e, true
		}
	}
	return 0, 0, false
}

func jsonNumber(b []byte) (int64, bool) {
	p := 0
	for p < len(b) && (b[p] == ' ' || b[p] == ':') {
		p++
	}
	var n int64
	s := p
	for p < len(b) && isDigit(b[p]) {
		n = n*10 + int64(b[p]-'0')
		p++
	}
	return n, p > s
}
