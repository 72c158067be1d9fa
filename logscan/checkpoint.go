package logscan

import (
	"bytes"
	"strconv"
	"time"

	"github.com/flink-agent/flink-agent/internal/labelvalue"
)

// Kind is a checkpoint or job lifecycle event recognised in a JobManager log.
type Kind uint8

// Lifecycle kinds.
const (
	KindNone Kind = iota
	// KindTriggered: "Triggering checkpoint N (type=…) @ ts for job J."
	KindTriggered
	// KindCompleted: "Completed checkpoint N for job J (B bytes,
	// checkpointDuration=D ms, finalizationTime=F ms)." or the older
	// "(B bytes in D ms)."
	KindCompleted
	// KindExpired: "Checkpoint N of job J expired before completing."
	KindExpired
	// KindDeclined: "Decline checkpoint N by task T of job J at L." with the
	// task's cause chain.
	KindDeclined
	// KindFailed: "Failed to trigger or complete checkpoint N for job J.
	// (K consecutive failed attempts so far)" with the CheckpointException.
	KindFailed
	// KindDiscarded: "Discarding checkpoint N of job J." (Flink ≤ 1.9) with
	// the cause.
	KindDiscarded
	// KindGlobalFailure: "Trying to recover from a global failure." with
	// the cause, e.g. "Exceeded checkpoint tolerable failure threshold."
	KindGlobalFailure
	// KindJobState: "Job NAME (J) switched from state A to B."
	KindJobState
	numKinds
)

var kindNames = [numKinds]string{"none", "triggered", "completed", "expired", "declined", "failed",
	"discarded", "global_failure", "job_state"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Lifecycle is one parsed lifecycle event.
type Lifecycle struct {
	Kind         Kind
	JobID        string
	CheckpointID int64 // -1 when the line gives none
	Savepoint    bool
	// TriggerTime is the "@ ts" of a Triggering line.
	TriggerTime time.Time
	StateBytes  int64         // Completed; -1 when absent
	Duration    time.Duration // Completed; -1 when absent
	// Consecutive is "(K consecutive failed attempts so far)"; -1 when absent.
	Consecutive int
	Task        string // Declined
	Location    string // Declined: the TaskManager
	// Message is Flink's failure message (the CheckpointException's, as
	// REST's failure_message says it) for failure kinds, the cause for a
	// global failure.
	Message string
	// ToleranceExceeded: a global failure caused by "Exceeded checkpoint
	// tolerable failure threshold".
	ToleranceExceeded bool
	JobName           string // JobState
	From, To          string // JobState
}

// The prefilter: every checkpoint lifecycle header names its job ("for job
// <id>", "of job <id>", "Job <name> (<id>) switched"), and the global
// failure line says so. The needles start with bytes that are rare in log
// text ('j', 'J', 'y'): bytes.Index jumps from one occurrence of the first
// byte to the next, so an ordinary line costs three short scans.
var (
	litJob           = []byte("job ")
	litJobUpper      = []byte("Job ")
	litGlobalFailure = []byte("ying to recover from a global failure")

	litRecoverGlobal = []byte("Trying to recover from a global failure")
	litJobSwitched   = []byte(") switched from state ")
	litTriggering    = []byte("Triggering checkpoint ")
	litCompleted     = []byte("Completed checkpoint ")
	litExpired       = []byte(" expired before completing")
	litDecline       = []byte("Decline checkpoint ")
	litFailedTo      = []byte("Failed to trigger or complete checkpoint ")
	litDiscarding    = []byte("Discarding checkpoint ")

	litForJob       = []byte(" for job ")
	litOfJob        = []byte(" of job ")
	litByTask       = []byte(" by task ")
	litAt           = []byte(" at ")
	litAtSign       = []byte(" @ ")
	litBytesComma   = []byte(" bytes, checkpointDuration=")
	litBytesIn      = []byte(" bytes in ")
	litCheckpointSp = []byte("Checkpoint ")
	litConsecutive  = []byte(" consecutive failed attempts so far")
	litTolerance    = []byte("Exceeded checkpoint tolerable failure threshold")
	litAvepoint     = []byte("avepoint") // SavepointType{name='Savepoint'…}, SAVEPOINT
	litMs           = []byte(" ms")
)

// firstLine is the event's header line: lifecycle messages are single lines,
// and what follows is their stack trace.
func firstLine(ev []byte) []byte {
	if i := bytes.IndexByte(ev, '\n'); i >= 0 {
		ev = ev[:i]
	}
	return bytes.TrimRight(ev, "\r")
}

// mayBeLifecycle is the prefilter: every lifecycle header contains one of
// these literals.
func mayBeLifecycle(h []byte) bool {
	return bytes.Contains(h, litJob) || bytes.Contains(h, litJobUpper) || bytes.Contains(h, litGlobalFailure)
}

// parseLifecycle recognises ev's header. It returns KindNone for other
// events, and ok=false when a header carries a lifecycle literal but not in
// a known form (counted: Flink changed its wording).
func parseLifecycle(ev []byte, out *Lifecycle) (kind Kind, pattern string, ok bool) {
	h := firstLine(ev)
	if !mayBeLifecycle(h) {
		return KindNone, "", true
	}
	*out = Lifecycle{CheckpointID: -1, StateBytes: -1, Duration: -1, Consecutive: -1}
	switch {
	case bytes.Contains(h, litTriggering):
		return KindTriggered, "triggered", parseTriggered(h, out)
	case bytes.Contains(h, litCompleted):
		return KindCompleted, "completed", parseCompleted(h, out)
	case bytes.Contains(h, litExpired):
		return KindExpired, "expired", parseExpired(h, out)
	case bytes.Contains(h, litDecline):
		ok := parseDeclined(h, out)
		out.Message = causeMessage(ev)
		if out.Message == "" {
			out.Message = "Checkpoint was declined."
		}
		return KindDeclined, "declined", ok
	case bytes.Contains(h, litFailedTo):
		ok := parseFailed(h, out)
		out.Message = causeMessage(ev)
		return KindFailed, "failed", ok
	case bytes.Contains(h, litDiscarding):
		ok := parseDiscarded(h, out)
		out.Message = causeMessage(ev)
		if out.Message == "" {
			out.Message = "Checkpoint was declined."
		}
		return KindDiscarded, "discarded", ok
	case bytes.Contains(h, litRecoverGlobal):
		out.Kind = KindGlobalFailure
		out.Message = causeMessage(ev)
		out.ToleranceExceeded = bytes.Contains(ev, litTolerance)
		return KindGlobalFailure, "global_failure", true
	case bytes.Contains(h, litJobSwitched):
		return KindJobState, "job_state", parseJobState(h, out)
	}
	return KindNone, "", true
}

// Triggering checkpoint 1 (type=CheckpointType{name='Checkpoint', …}) @ 1733192286634 for job 49b3….
// Triggering checkpoint 66 @ 1558107788056 for job dd4f….
func parseTriggered(h []byte, out *Lifecycle) bool {
	out.Kind = KindTriggered
	rest, ok := after(h, litTriggering)
	if !ok {
		return false
	}
	if out.CheckpointID, rest, ok = readInt(rest); !ok {
		return false
	}
	at := bytes.Index(rest, litAtSign)
	fj := bytes.Index(rest, litForJob)
	if at < 0 || fj < at {
		return false
	}
	out.Savepoint = bytes.Contains(rest[:at], litAvepoint)
	if ms, _, ok := readInt(rest[at+len(litAtSign):]); ok {
		out.TriggerTime = time.UnixMilli(ms)
	}
	out.JobID, ok = readJobID(rest[fj+len(litForJob):])
	return ok
}

// Completed checkpoint 1 for job 49b3… (1680 bytes, checkpointDuration=362 ms, finalizationTime=0 ms).
// Completed checkpoint 818 for job 345d… (4126714 bytes in 674 ms).
func parseCompleted(h []byte, out *Lifecycle) bool {
	out.Kind = KindCompleted
	rest, ok := after(h, litCompleted)
	if !ok {
		return false
	}
	if out.CheckpointID, rest, ok = readInt(rest); !ok {
		return false
	}
	if rest, ok = after(rest, litForJob); !ok {
		return false
	}
	if out.JobID, ok = readJobID(rest); !ok {
		return false
	}
	rest = rest[32:]
	if len(rest) < 2 || rest[0] != ' ' || rest[1] != '(' {
		return false
	}
	var n int64
	if n, rest, ok = readInt(rest[2:]); !ok {
		return false
	}
	out.StateBytes = n
	switch {
	case bytes.HasPrefix(rest, litBytesComma):
		rest = rest[len(litBytesComma):]
	case bytes.HasPrefix(rest, litBytesIn):
		rest = rest[len(litBytesIn):]
	default:
		return false
	}
	if n, rest, ok = readInt(rest); !ok || !bytes.HasPrefix(rest, litMs) {
		return false
	}
	out.Duration = time.Duration(n) * time.Millisecond
	return true
}

// Checkpoint 17 of job 9ee5… expired before completing.
func parseExpired(h []byte, out *Lifecycle) bool {
	out.Kind = KindExpired
	out.Message = "Checkpoint expired before completing."
	for from := 0; ; {
		i := bytes.Index(h[from:], litCheckpointSp)
		if i < 0 {
			return false
		}
		rest := h[from+i+len(litCheckpointSp):]
		from += i + len(litCheckpointSp)
		id, r, ok := readInt(rest)
		if !ok || !bytes.HasPrefix(r, litOfJob) {
			continue
		}
		out.CheckpointID = id
		out.JobID, ok = readJobID(r[len(litOfJob):])
		return ok
	}
}

// Decline checkpoint 6 by task 5897…_1_0 of job a263… at 127.0.0.1:41363-2a0aa7 @ localhost (dataPort=34591).
// Decline checkpoint 66 by task e65f… of job dd4f….
func parseDeclined(h []byte, out *Lifecycle) bool {
	out.Kind = KindDeclined
	rest, ok := after(h, litDecline)
	if !ok {
		return false
	}
	if out.CheckpointID, rest, ok = readInt(rest); !ok {
		return false
	}
	if !bytes.HasPrefix(rest, litByTask) {
		return false
	}
	rest = rest[len(litByTask):]
	oj := bytes.Index(rest, litOfJob)
	if oj < 0 {
		return false
	}
	out.Task = string(rest[:oj])
	rest = rest[oj+len(litOfJob):]
	if out.JobID, ok = readJobID(rest); !ok {
		return false
	}
	rest = rest[32:]
	if bytes.HasPrefix(rest, litAt) {
		out.Location = string(bytes.TrimSuffix(bytes.TrimSpace(rest[len(litAt):]), []byte(".")))
	}
	return true
}

// Failed to trigger or complete checkpoint 6 for job a263…. (0 consecutive failed attempts so far)
// Failed to trigger or complete checkpoint for job a263…. (2 consecutive failed attempts so far)
func parseFailed(h []byte, out *Lifecycle) bool {
	out.Kind = KindFailed
	rest, ok := after(h, litFailedTo)
	if !ok {
		return false
	}
	if id, r, ok := readInt(rest); ok {
		out.CheckpointID, rest = id, r
	}
	if rest, ok = after(rest, []byte("for job ")); !ok {
		return false
	}
	if out.JobID, ok = readJobID(rest); !ok {
		return false
	}
	if i := bytes.Index(rest, litConsecutive); i > 0 {
		j := i
		for j > 0 && isDigit(rest[j-1]) {
			j--
		}
		if n, err := strconv.Atoi(string(rest[j:i])); err == nil {
			out.Consecutive = n
		}
	}
	return true
}

// Discarding checkpoint 66 of job dd4f….
func parseDiscarded(h []byte, out *Lifecycle) bool {
	out.Kind = KindDiscarded
	rest, ok := after(h, litDiscarding)
	if !ok {
		return false
	}
	if out.CheckpointID, rest, ok = readInt(rest); !ok || !bytes.HasPrefix(rest, litOfJob) {
		return false
	}
	out.JobID, ok = readJobID(rest[len(litOfJob):])
	return ok
}

// Job Flink Streaming Job (dd4f…) switched from state RUNNING to FAILING.
func parseJobState(h []byte, out *Lifecycle) bool {
	out.Kind = KindJobState
	i := bytes.Index(h, litJobSwitched)
	if i < 33 || h[i-33] != '(' {
		return false
	}
	id, ok := readJobID(h[i-32:])
	if !ok {
		return false
	}
	out.JobID = id
	// The name may contain anything, "Job " included: it starts at the
	// message ("… - Job "), or failing that at the first "Job ".
	pre := h[:i-33]
	k := bytes.Index(pre, []byte(" - Job "))
	if k >= 0 {
		k += len(" - Job ")
	} else if k = bytes.Index(pre, []byte("Job ")); k >= 0 {
		k += len("Job ")
	} else {
		return false
	}
	out.JobName = labelvalue.Cap(string(bytes.TrimSpace(pre[k:])))
	rest := h[i+len(litJobSwitched):]
	sp := bytes.Index(rest, []byte(" to "))
	if sp <= 0 {
		return false
	}
	out.From = string(rest[:sp])
	to := rest[sp+4:]
	end := 0
	for end < len(to) && to[end] >= 'A' && to[end] <= 'Z' {
		end++
	}
	if end == 0 {
		return false
	}
	out.To = string(to[:end])
	return true
}

// causeMessage is the message of the exception that follows the header: the
// second line of the event, without its exception class names
// ("org.apache.flink.util.SerializedThrowable: org.apache.flink.runtime.
// checkpoint.CheckpointException: Asynchronous task checkpoint failed." →
// "Asynchronous task checkpoint failed.").
func causeMessage(ev []byte) string {
	i := bytes.IndexByte(ev, '\n')
	if i < 0 {
		return ""
	}
	l := firstLine(ev[i+1:])
	l = bytes.TrimLeft(l, " \t")
	if bytes.HasPrefix(l, []byte("at ")) || bytes.HasPrefix(l, []byte("... ")) {
		return "" // a stack frame: the header had no exception of its own
	}
	l = bytes.TrimPrefix(l, []byte("Caused by: "))
	for {
		j := bytes.Index(l, []byte(": "))
		if j <= 0 || !isClassName(l[:j]) {
			break
		}
		l = l[j+2:]
	}
	l = bytes.TrimSpace(l)
	if len(l) > maxMessage {
		l = l[:maxMessage]
	}
	return string(l)
}

const maxMessage = 512

// isClassName: a dotted Java identifier such as java.io.IOException.
func isClassName(b []byte) bool {
	dot := false
	for _, c := range b {
		switch {
		case c == '.':
			dot = true
		case identByte(c):
		default:
			return false
		}
	}
	return dot
}

func after(b, lit []byte) ([]byte, bool) {
	i := bytes.Index(b, lit)
	if i < 0 {
		return nil, false
	}
	return b[i+len(lit):], true
}

// readInt reads a non-negative decimal at the start of b.
func readInt(b []byte) (int64, []byte, bool) {
	var n int64
	i := 0
	for i < len(b) && isDigit(b[i]) && i < 19 {
		n = n*10 + int64(b[i]-'0')
		i++
	}
	if i == 0 {
		return 0, b, false
	}
	return n, b[i:], true
}

// readJobID reads Flink's 32-hex-digit job id at the start of b.
func readJobID(b []byte) (string, bool) {
	if len(b) < 32 {
		return "", false
	}
	for _, c := range b[:32] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	if len(b) > 32 && (b[32] >= '0' && b[32] <= '9' || b[32] >= 'a' && b[32] <= 'f') {
		return "", false
	}
	return string(b[:32]), true
}

func isDigit(c byte) bool { return c-'0' < 10 }
