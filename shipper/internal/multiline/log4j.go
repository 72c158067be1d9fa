package multiline

import (
	"bytes"
	"encoding/binary"
	"time"
)

// Level is an event's severity.
type Level uint8

// Levels; LevelUnknown is an event whose line names none.
const (
	LevelUnknown Level = iota
	LevelTrace
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
	LevelFatal
	NumLevels
)

// levelNames are lower-case, as Grafana's log volume and Loki's
// detected_level use them; "unknown" is the metric label for events
// without a level.
var levelNames = [NumLevels]string{"unknown", "trace", "debug", "info", "warn", "error", "fatal"}

func (l Level) String() string { return levelNames[l] }

// parseLevel recognises log4j's level names (and WARNING/SEVERE from JUL).
func parseLevel(b []byte) Level {
	switch len(b) {
	case 4:
		switch string(b) {
		case "INFO", "info":
			return LevelInfo
		case "WARN", "warn":
			return LevelWarn
		}
	case 5:
		switch string(b) {
		case "ERROR", "error":
			return LevelError
		case "DEBUG", "debug":
			return LevelDebug
		case "TRACE", "trace":
			return LevelTrace
		case "FATAL", "fatal":
			return LevelFatal
		}
	case 6:
		if string(b) == "SEVERE" {
			return LevelError
		}
	case 7:
		if string(b) == "WARNING" {
			return LevelWarn
		}
	}
	return LevelUnknown
}

// isLog4jTime reports whether b starts with "yyyy-MM-dd HH:mm:ss,SSS"
// (Flink's %d{yyyy-MM-dd HH:mm:ss,SSS}); it is the default start pattern,
// matched without the regexp engine because it runs on every line.
func isLog4jTime(b []byte) bool {
	if len(b) < 23 {
		return false
	}
	_ = b[22]
	return isDigit(b[0]) && isDigit(b[1]) && isDigit(b[2]) && isDigit(b[3]) && b[4] == '-' &&
		isDigit(b[5]) && isDigit(b[6]) && b[7] == '-' && isDigit(b[8]) && isDigit(b[9]) && b[10] == ' ' &&
		isDigit(b[11]) && isDigit(b[12]) && b[13] == ':' && isDigit(b[14]) && isDigit(b[15]) && b[16] == ':' &&
		isDigit(b[17]) && isDigit(b[18]) && b[19] == ',' && isDigit(b[20]) && isDigit(b[21]) && isDigit(b[22])
}

func isDigit(c byte) bool { return c-'0' < 10 }

func num2(b []byte) int { return int(b[0]-'0')*10 + int(b[1]-'0') }

// tsParser turns log4j timestamps into times in loc. Consecutive lines
// share the hour almost always, so the hour's start is cached and only
// minutes, seconds and milliseconds are added per line.
type tsParser struct {
	loc     *time.Location
	hourKey [13]byte
	hour    int64 // unix nanoseconds at the start of hourKey
	valid   bool
}

// parse reads a timestamp validated by isLog4jTime; ok is false for
// impossible dates (month 13), which then fall back to the read time.
func (p *tsParser) parse(b []byte) (int64, bool) {
	if !p.valid || !bytes.Equal(p.hourKey[:], b[:13]) {
		year := int(b[0]-'0')*1000 + int(b[1]-'0')*100 + num2(b[2:])
		month, day, hour := num2(b[5:]), num2(b[8:]), num2(b[11:])
		if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 {
			return 0, false
		}
		t := time.Date(year, time.Month(month), day, hour, 0, 0, 0, p.loc)
		if t.Day() != day { // 31 February
			return 0, false
		}
		copy(p.hourKey[:], b[:13])
		p.hour = t.UnixNano()
		p.valid = true
	}
	mins, sec := num2(b[14:]), num2(b[17:])
	if mins > 59 || sec > 60 {
		return 0, false
	}
	ms := int(b[20]-'0')*100 + num2(b[21:])
	return p.hour + int64(mins)*int64(time.Minute) + int64(sec)*int64(time.Second) + int64(ms)*int64(time.Millisecond), true
}

// header is what the first line of an event says about it. logger and
// thread are ranges into the line.
type header struct {
	level                  Level
	loggerStart, loggerEnd int
	threadStart, threadEnd int
	// The Flink Kubernetes Operator's "[namespace/name]" (its MDC).
	nsStart, nsEnd     int
	nameStart, nameEnd int
	msgStart           int // where the message starts (after " - "), 0 if unknown
	// json mode: logger and thread decoded from their keys (the parser's
	// scratch, valid until the next line is parsed).
	jsonLogger, jsonThread []byte
}

// parseHeader reads level, logger and thread after a 23-byte timestamp.
// It understands Flink's layout "%d %-5p %-60c %x - %m%n" and the common
// variants with "[%t]" before or after the level; whatever it does not
// recognise is left empty rather than guessed.
func parseHeader(line []byte, h *header) {
	*h = header{}
	if parseFlinkHeader(line, h) || parseOperatorHeader(line, h) {
		return
	}
	p := skipSpaces(line, 23)
	if p < len(line) && line[p] == '[' {
		p = h.thread(line, p)
	}
	end := tokenEnd(line, p)
	if lv := parseLevel(line[p:end]); lv != LevelUnknown {
		h.level = lv
		p = skipSpaces(line, end)
	} else {
		return
	}
	if p < len(line) && line[p] == '[' && h.threadEnd == 0 {
		p = h.thread(line, p)
	}
	end = tokenEnd(line, p)
	if end > p && isLoggerName(line[p:end]) {
		h.loggerStart, h.loggerEnd = p, end
		p = skipSpaces(line, end)
	}
	// A non-empty "[...]" before " - " is the thread in "%c [%t] - %m"
	// layouts; Flink's own "%x" prints an empty "[]" there.
	if p+1 < len(line) && line[p] == '[' {
		if h.threadEnd == 0 && line[p+1] != ']' {
			p = h.thread(line, p)
		} else if i := bytes.IndexByte(line[p:], ']'); i >= 0 {
			p = skipSpaces(line, p+i+1)
		}
	}
	if p+1 < len(line) && line[p] == '-' && line[p+1] == ' ' {
		h.msgStart = p + 2
	}
}

// level4 maps the first four bytes of a %-5p level to the level.
func level4(b []byte) Level {
	switch binary.LittleEndian.Uint32(b) {
	case 'I' | 'N'<<8 | 'F'<<16 | 'O'<<24:
		return LevelInfo
	case 'W' | 'A'<<8 | 'R'<<16 | 'N'<<24:
		return LevelWarn
	case 'E' | 'R'<<8 | 'R'<<16 | 'O'<<24:
		return LevelError
	case 'D' | 'E'<<8 | 'B'<<16 | 'U'<<24:
		return LevelDebug
	case 'T' | 'R'<<8 | 'A'<<16 | 'C'<<24:
		return LevelTrace
	case 'F' | 'A'<<8 | 'T'<<16 | 'A'<<24:
		return LevelFatal
	}
	return LevelUnknown
}

// parseFlinkHeader is parseHeader for exactly Flink's default layout
// "%d %-5p %-60c %x - ": the level fills bytes 24-28 and the logger starts
// at 30. It reports false for anything else.
func parseFlinkHeader(line []byte, h *header) bool {
	if len(line) < 36 || line[23] != ' ' || line[29] != ' ' || line[30] == ' ' {
		return false
	}
	lv := level4(line[24:28])
	if lv == LevelUnknown || (line[28] != ' ' && line[28] != 'R' && line[28] != 'G' && line[28] != 'E' && line[28] != 'L') {
		return false
	}
	end := tokenEnd(line, 30)
	if !isLoggerName(line[30:end]) {
		return false
	}
	p := skipSpaces(line, end)
	if p+4 < len(line) && line[p] == '[' && line[p+1] == ']' && line[p+2] == ' ' && line[p+3] == '-' && line[p+4] == ' ' {
		h.level, h.loggerStart, h.loggerEnd, h.msgStart = lv, 30, end, p+5
		return true
	}
	return false
}

// parseOperatorHeader reads the Flink Kubernetes Operator's layout, its
// console pattern without colour codes:
//
//	%d %-30c{1.} [%-5level]%notEmpty{[%X{resource.namespace}/}%notEmpty{%X{resource.name}]} %msg%n
//
// "2026-12-02 03:00:00,000 o.a.f.k.o.o.SnapshotObserver   [WARN ][ns/app] msg":
// the logger comes before the bracketed level, and the resource being
// reconciled follows it. It reports false for anything else.
func parseOperatorHeader(line []byte, h *header) bool {
	if len(line) < 32 || line[23] != ' ' || line[24] == ' ' || line[24] == '[' {
		return false
	}
	end := tokenEnd(line, 24)
	if !isLoggerName(line[24:end]) {
		return false
	}
	p := skipSpaces(line, end)
	if p+3 > len(line) || line[p] != '[' {
		return false
	}
	rb := bytes.IndexByte(line[p:min(len(line), p+8)], ']') // the level's closing bracket
	if rb < 0 {
		return false
	}
	lv := parseLevel(bytes.TrimRight(line[p+1:p+rb], " "))
	if lv == LevelUnknown {
		return false
	}
	p += rb + 1
	switch {
	case p < len(line) && line[p] == '[': // [namespace/ then name]
		slash := bytes.IndexByte(line[p:], '/')
		if slash < 0 || bytes.ContainsAny(line[p:p+slash], "] ") {
			return false
		}
		h.nsStart, h.nsEnd = p+1, p+slash
		p += slash + 1
		if e := bytes.IndexAny(line[p:], "] "); e >= 0 && line[p+e] == ']' {
			h.nameStart, h.nameEnd = p, p+e
			p += e + 1
		}
	case p < len(line) && line[p] != ' ': // name] without a namespace
		e := bytes.IndexAny(line[p:], "] ")
		if e < 0 || line[p+e] != ']' {
			return false
		}
		h.nameStart, h.nameEnd = p, p+e
		p += e + 1
	}
	if p < len(line) && line[p] == ' ' {
		p++
	}
	h.level, h.loggerStart, h.loggerEnd, h.msgStart = lv, 24, end, p
	return true
}

// thread records "[name]" starting at p and returns the position after it.
func (h *header) thread(line []byte, p int) int {
	i := bytes.IndexByte(line[p:], ']')
	if i < 0 {
		return p
	}
	if i > 1 {
		h.threadStart, h.threadEnd = p+1, p+i
	}
	return skipSpaces(line, p+i+1)
}

func skipSpaces(b []byte, p int) int {
	// Eight at a time: the logger column is padded to 60 characters.
	for p+8 <= len(b) && binary.LittleEndian.Uint64(b[p:]) == 0x2020202020202020 {
		p += 8
	}
	for p < len(b) && b[p] == ' ' {
		p++
	}
	return p
}

func tokenEnd(b []byte, p int) int {
	if i := bytes.IndexByte(b[p:], ' '); i >= 0 {
		return p + i
	}
	return len(b)
}

// loggerChars are the bytes of Java class and logger names (1), others 0.
var loggerChars = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '$' || c == '-' {
			t[c] = 1
		}
	}
	return t
}()

// isLoggerName accepts Java class and logger names (letters, digits, '.',
// '_', '$', '-').
func isLoggerName(b []byte) bool {
	if len(b) == 0 || len(b) > 256 {
		return false
	}
	t := &loggerChars
	i := 0
	// Eight at a time, one branch: this runs on every event.
	for ; i+8 <= len(b); i += 8 {
		w := b[i : i+8 : i+8]
		if t[w[0]]&t[w[1]]&t[w[2]]&t[w[3]]&t[w[4]]&t[w[5]]&t[w[6]]&t[w[7]] == 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if t[b[i]] == 0 {
			return false
		}
	}
	return true
}
