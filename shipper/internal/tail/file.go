package tail

import (
	"os"
	"time"

	"github.com/flink-agent/flink-agent/shipper/internal/fingerprint"
	"github.com/flink-agent/flink-agent/shipper/internal/positions"
)

// fileState is where a file is in its life.
type fileState int

const (
	stNew    fileState = iota // opened by a scan, not classified yet
	stActive                  // being read
	stCopy                    // a copytruncate copy of copyOf: read only if copyOf turns out truncated
	stDone                    // read to its end (or skipped on the first start); closed
	stOrphan                  // its inode was truncated: looking for the copy that holds the rest
)

// group is a log file and its rotated predecessors (x.log, x.log.1, …),
// read oldest first: one Loki stream.
type group struct {
	id   int
	path string // the live name; rotated files are path.N
}

// File is one file (one inode) the tailer knows.
type File struct {
	// Ack is how far the file's lines are shipped and acknowledged; the
	// tailer saves Ack.Committed() and resets it when the file starts
	// over.
	Ack positions.Ack

	sink        Sink
	g           *group
	path        string
	suffix      int // N of path.N, 0 for the live name
	id          devIno
	fp          fingerprint.Fingerprint
	gen         uint64 // read order within a group: older data first
	state       fileState
	copyOf      *File
	live        bool      // the inode is at the group's live name
	gone        bool      // not found by the last scan
	deleted     bool      // seen unlinked: it cannot come back
	restored    bool      // from the positions file, not yet checked on disk
	size        int64     // at the last scan
	mtime       time.Time // at the last scan
	f           *os.File
	head        []byte    // leading bytes of a stNew file, for classification
	fresh       bool      // opened by this scan: its size has not been compared yet
	missed      int       // consecutive scans that did not find it
	sizeSince   time.Time // when a stNew file's size last changed
	history     bool      // found by the first scan of a first start
	quietOrphan bool      // truncated or replaced while the agent was down: no copy expected
	orphanScans int       // scans that looked for an orphan's copy

	readOff  int64  // next byte to read
	partial  []byte // an incomplete line starting at readOff-len(partial)
	midLine  bool   // the line being read did not fit the read buffer and continues
	eof      bool   // the last read reached the end
	lastData time.Time
	readErrs int // consecutive failed reads: logged when they start and end
}

// Path is where the file is now (it changes when the file is rotated).
func (t *File) Path() string { return t.path }

// GroupPath is the live name of the file's group: the file itself, or
// the file it was rotated from (x.log for x.log.1).
func (t *File) GroupPath() string { return t.g.path }

// saved reports whether the file belongs in the positions file. Copies
// waiting for a truncation and orphans are decided again after a restart.
func (t *File) saved() bool {
	return t.state == stActive || (t.state == stDone && !t.gone)
}

// unlinked reports whether an open file has been deleted.
func (t *File) unlinked() bool {
	if t.f == nil {
		return false
	}
	fi, err := t.f.Stat()
	return err == nil && nlink(fi) == 0
}

func (t *File) close() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
}

// skip marks the file read to size without shipping anything: history, or
// a copy whose content was read from its original.
func (t *File) skip(size int64) {
	t.readOff = size
	t.Ack.Reset(size)
}

// warnRead logs a failing read when failures start; readOK when they end.
func (tl *Tailer) warnRead(t *File, err error) {
	if t.readErrs == 0 {
		tl.log.Warn("reading log file failed; retrying, told again when that ends", "file", t.path, "err", err)
	}
	t.readErrs++
}

func (tl *Tailer) readOK(t *File) {
	if t.readErrs > 0 {
		tl.log.Info("reading log file works again", "file", t.path, "failed_reads", t.readErrs)
		t.readErrs = 0
	}
}
