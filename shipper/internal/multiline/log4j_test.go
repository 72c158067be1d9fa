package multiline

import (
	"testing"

	"github.com/flink-agent/flink-agent/internal/config"
)

// TestHeaderVariants: thread and level in the common layout variants, and
// the Flink Kubernetes Operator's layout (see operatorlog): logger before the
// bracketed level, the resource being reconciled after it.
func TestHeaderVariants(t *testing.T) {
	for _, tc := range []struct {
		line                  string
		level, logger, thread string
		msg                   string
		ns, name              string
	}{
		{"2024-05-01 12:00:00,123 INFO  org.apache.flink.runtime.Foo                              [] - msg", "info", "org.apache.flink.runtime.Foo", "", "msg", "", ""},
		{"2024-05-01 12:00:00,123 ERROR org.apache.flink.runtime.Foo [] - msg", "error", "org.apache.flink.runtime.Foo", "", "msg", "", ""},
		{"2024-05-01 12:00:00,123 [flink-pekko.actor.default-dispatcher-5] WARN  org.Foo - msg", "warn", "org.Foo", "flink-pekko.actor.default-dispatcher-5", "msg", "", ""},
		{"2024-05-01 12:00:00,123 WARN  [Source: x -> Sink: y (1/2)#0] org.Foo - msg", "warn", "org.Foo", "Source: x -> Sink: y (1/2)#0", "msg", "", ""},
		{"2024-05-01 12:00:00,123 DEBUG org.Foo [main] - msg", "debug", "org.Foo", "main", "msg", "", ""},
		{"2024-05-01 12:00:00,123 something else entirely", "", "", "", "", "", ""},
		{"2026-12-02 03:00:00,000 o.a.f.k.o.o.SnapshotObserver   [WARN ][flink/orders] Savepoint failed within grace period, retrying: x",
			"warn", "o.a.f.k.o.o.SnapshotObserver", "", "Savepoint failed within grace period, retrying: x", "flink", "orders"},
		{"2026-12-02 03:00:00,000 o.a.f.k.o.r.d.AbstractFlinkResourceReconciler [ERROR][prod/billing-v2] boom",
			"error", "o.a.f.k.o.r.d.AbstractFlinkResourceReconciler", "", "boom", "prod", "billing-v2"},
		{"2026-12-02 03:00:00,000 o.a.f.k.o.FlinkOperator        [INFO ] Starting Flink Kubernetes Operator",
			"info", "o.a.f.k.o.FlinkOperator", "", "Starting Flink Kubernetes Operator", "", ""},
		{"2026-12-02 03:00:00,000 i.j.o.p.e.EventProcessor       [DEBUG]cluster-scoped] msg", "debug", "i.j.o.p.e.EventProcessor", "", "msg", "", "cluster-scoped"},
		{"2026-12-02 03:00:00,000 o.a.f.k.o.l.AuditUtils         [INFO ][flink/orders] >>> Event[Job]       | Warning | SAVEPOINTERROR  | x",
			"info", "o.a.f.k.o.l.AuditUtils", "", ">>> Event[Job]       | Warning | SAVEPOINTERROR  | x", "flink", "orders"},
		// A bracket that is no level: not the operator's layout.
		{"2026-12-02 03:00:00,000 o.a.Foo [main] msg", "", "", "", "", "", ""},
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
		ns, name := string(b[h.nsStart:h.nsEnd]), string(b[h.nameStart:h.nameEnd])
		if lv != tc.level || logger != tc.logger || thread != tc.thread || msg != tc.msg || ns != tc.ns || name != tc.name {
			t.Errorf("%q: level %q logger %q thread %q msg %q resource %q/%q", tc.line, lv, logger, thread, msg, ns, name)
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
