package multiline

import (
	"testing"

	"github.com/flink-agent/flink-agent/internal/config"
)

// TestHeaderVariants: thread and level in the common layout variants.
func TestHeaderVariants(t *testing.T) {
	for _, tc := range []struct {
		line                  string
		level, logger, thread string
		msg                   string
	}{
		{"2024-05-01 12:00:00,123 INFO  org.apache.flink.runtime.Foo                              [] - msg", "info", "org.apache.flink.runtime.Foo", "", "msg"},
		{"2024-05-01 12:00:00,123 ERROR org.apache.flink.runtime.Foo [] - msg", "error", "org.apache.flink.runtime.Foo", "", "msg"},
		{"2024-05-01 12:00:00,123 [flink-pekko.actor.default-dispatcher-5] WARN  org.Foo - msg", "warn", "org.Foo", "flink-pekko.actor.default-dispatcher-5", "msg"},
		{"2024-05-01 12:00:00,123 WARN  [Source: x -> Sink: y (1/2)#0] org.Foo - msg", "warn", "org.Foo", "Source: x -> Sink: y (1/2)#0", "msg"},
		{"2024-05-01 12:00:00,123 DEBUG org.Foo [main] - msg", "debug", "org.Foo", "main", "msg"},
		{"2024-05-01 12:00:00,123 something else entirely", "", "", "", ""},
	} {
		var h header
		b := []byte(tc.line)
		parseHeader(b, &h)
		lv := ""
		if h.level != LevelUnknown {
			lv = h.level.String()
		}
		logger := string(b[h.loggerStart:h.loggerEnd])
		thread := string(b[h.threadStart:h.threadEnd])
		msg := ""
		if h.msgStart > 0 {
			msg = string(b[h.msgStart:])
		}
		if lv != tc.level || logger != tc.logger || thread != tc.thread || msg != tc.msg {
			t.Errorf("%q: level %q logger %q thread %q msg %q", tc.line, lv, logger, thread, msg)
		}
	}
}

// TestDefaultStartPattern: the configuration's default start pattern is
// the one matched without the regexp engine, and both agree.
func TestDefaultStartPattern(t *testing.T) {
	re := config.Default().Logs.Multiline.StartPattern.Regexp
	if re.String() != log4jStart {
		t.Fatalf("default start pattern %q, the built-in check is for %q", re, log4jStart)
	}
	if New(Settings{StartPattern: re}).startRE != nil {
		t.Error("the default pattern goes through the regexp engine")
	}
	for _, l := range []string{
		"2024-05-01 12:00:00,123 INFO  x", "2024-05-01 12:00:00,123", "2024-05-01 12:00:00.123 INFO", "\tat org.Foo.bar(Foo.java:1)",
		"2024-5-01 12:00:00,123", "２０２４-05-01 12:00:00,123", "",
	} {
		if got, want := isLog4jTime([]byte(l)), re.MatchString(l); got != want {
			t.Errorf("%q: built-in %v, regexp %v", l, got, want)
		}
	}
}
