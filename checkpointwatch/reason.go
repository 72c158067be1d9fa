package checkpointwatch

import "strings"

// Reason is the classified cause of a failed checkpoint: the value of the
// reason label and the reason: tag.
type Reason string

// The reasons, from Flink's CheckpointFailureReason messages.
const (
	ReasonExpired        Reason = "expired"
	ReasonDeclined       Reason = "declined"
	ReasonAsyncFailure   Reason = "async_failure"
	ReasonIO             Reason = "io"
	ReasonTaskFailure    Reason = "task_failure"
	ReasonTriggerFailure Reason = "trigger_failure"
	ReasonOther          Reason = "other"
)

// Reasons lists every reason, in the order documentation shows them.
func Reasons() []Reason {
	return []Reason{ReasonExpired, ReasonDeclined, ReasonAsyncFailure, ReasonIO, ReasonTaskFailure, ReasonTriggerFailure, ReasonOther}
}

// Valid reports whether r is one of Reasons().
func (r Reason) Valid() bool {
	for _, v := range Reasons() {
		if r == v {
			return true
		}
	}
	return false
}

// rule maps a CheckpointFailureReason message to a reason. counted mirrors
// CheckpointFailureReason.isCountedAgainstFailureThreshold: only those
// failures bring a job closer to tolerable_failed_checkpoints.
type rule struct {
	substr  string
	reason  Reason
	counted bool
}

// rules are matched in order, so the specific "declined (…)" variants come
// before the plain "Checkpoint was declined". A CheckpointException built
// with its own message ends in " Failure reason: <reason message>", which
// these substrings also find.
var rules = []rule{
	{"expired before completing", ReasonExpired, true},
	{"Asynchronous task checkpoint failed", ReasonAsyncFailure, true},
	{"sharing the ChannelState file", ReasonAsyncFailure, false},
	{"IO-problem detected", ReasonIO, true},
	{"Failure to finalize checkpoint", ReasonIO, true},
	{"Checkpoint was declined (", ReasonDeclined, false}, // tasks not ready, task is closing, …
	{"barrier from newer checkpoint", ReasonDeclined, false},
	{"Task received cancellation from one of its inputs", ReasonDeclined, false},
	{"declined because one input stream is finished", ReasonDeclined, false},
	{"Task does not support checkpointing", ReasonDeclined, false},
	{"alignment phase needed to buffer more", ReasonDeclined, false},
	{"Checkpoint was declined", ReasonDeclined, true},
	{"Task has failed", ReasonTaskFailure, false},
	{"Task local checkpoint failure", ReasonTaskFailure, false},
	{"FailoverRegion is restarting", ReasonTaskFailure, false},
	{"The job has failed", ReasonTaskFailure, false},
	{"Unknown task for the checkpoint to notify", ReasonTaskFailure, false},
	{"Trigger checkpoint failure", ReasonTriggerFailure, false},
	{"Not all required tasks are currently running", ReasonTriggerFailure, false},
	{"Periodic checkpoint scheduler is shut down", ReasonTriggerFailure, false},
	{"maximum number of queued checkpoint requests", ReasonTriggerFailure, false},
	{"maximum number of concurrent checkpoints", ReasonTriggerFailure, false},
	{"minimum time between checkpoints is still pending", ReasonTriggerFailure, false},
	{"Blocking output edge exists", ReasonTriggerFailure, false},
	{"Another checkpoint request has already been queued", ReasonTriggerFailure, false},
	{"An Exception occurred while triggering the checkpoint", ReasonTriggerFailure, false},
	{"Checkpoint has been subsumed", ReasonOther, false},
	{"Checkpoint Coordinator is suspending", ReasonOther, false},
	{"CheckpointCoordinator shutdown", ReasonOther, false},
}

// Classify maps a failure message (REST failure_message, or the exception
// message of a log line) to its reason, and tells whether Flink counts such a
// failure against tolerable_failed_checkpoints.
func Classify(message string) (r Reason, counted bool) {
	for _, ru := range rules {
		if strings.Contains(message, ru.substr) {
			return ru.reason, ru.counted
		}
	}
	return ReasonOther, false
}

// countedReason is Classify's counted for a reason given without a message
// (a log parser that classified by itself).
func countedReason(r Reason) bool {
	switch r {
	case ReasonExpired, ReasonAsyncFailure, ReasonIO:
		return true
	}
	return false
}
