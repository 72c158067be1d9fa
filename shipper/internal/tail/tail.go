// Package tail finds log files and reads them, losing nothing across
// rotation:
//
//   - discovery: the logs.paths globs and their rotated siblings (x.log.N),
//     on fsnotify events and every poll interval (scan.go, watch.go);
//   - identity: a file is its device and inode plus a fingerprint of its
//     leading bytes (package fingerprint), which tells a reused inode from
//     the file that had it and a copytruncate copy from its original;
//   - rotation: rename, copytruncate, deletion and inode reuse, while running
//     and while the agent was stopped (scan.go);
//   - admission: only regular files whose real path lies inside the
//     directories the globs name, decided on the opened descriptor
//     (open.go);
//   - reading: pread into one buffer shared by all files, split into lines
//     (read.go); a file keeps only its unfinished last line.
//
// Each file's lines, with the offset after each, go to the Sink its
// creator attached; each file carries its acknowledgement (positions.Ack),
// advanced by whoever ships its events. Every file found is opened at once
// and kept open until read to its end, so that a file rotated away and
// deleted stays readable; a live file read to its end is closed after
// Settings.CloseInactive without new data, or earlier when the open-file
// limit is reached and other files wait, and reopened by identity when it
// grows (close.go).
//
// A Tailer is driven by one goroutine (the reader). Positions, Stalled and
// LastProgress may be called from any goroutine.
package tail

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flink-agent/flink-agent/shipper/internal/positions"
)

// Settings are validated by internal/config.
type Settings struct {
	Paths         []string      // logs.paths: globs of live files
	PollInterval  time.Duration // logs.poll_interval: scans without notifications
	CloseInactive time.Duration // logs.close_inactive: a file read to its end is closed after this without new data (0: never)
	MaxOpenFiles  int           // logs.max_open_files: descriptors held for tailing (0: no limit)
	// Cadence is the shortest time between two wake-ups by file
	// notifications while writes keep coming: notifications in between
	// are merged (by the kernel), and one read takes what they announced.
	Cadence time.Duration
}

// Observer is told what the tailer refuses or cannot do; metrics are its
// business. It may be nil.
type Observer interface {
	// Refused: a file was not admitted (once per file and reason).
	Refused(reason string)
}

// Refusal reasons (flink_agent_tail_refused_files_total{reason}).
const (
	ReasonNotRegular = "not_regular_file" // FIFO, socket, device, directory
	ReasonOutside    = "outside_log_directories"
	ReasonUnreadable = "unreadable" // permission denied
)

const (
	readBufSize = 128 << 10 // shared by all files; longer lines are read in pieces
	maxPerRound = 1 << 20   // bytes read from one file before visiting the others
)

// Sink receives one file's lines, in order.
type Sink interface {
	// Line is one line without its newline ("\r\n" too), ending at file
	// offset end; join: the next piece of a line longer than the read
	// buffer. An error stops reading (the line is not consumed).
	Line(line []byte, end int64, join bool) error
	// Pending reports whether lines are held for an event not yet
	// complete.
	Pending() bool
	// Flush completes what is pending: the file ended, or it was idle.
	Flush() error
}

// Tailer finds and reads the files.
type Tailer struct {
	globs   []string
	poll    time.Duration
	log     *slog.Logger
	newSink func(*File) Sink
	obs     Observer
	watch   *watcher
	s       Settings
	buf     []byte // the read buffer, shared: one reader reads one file at a time

	now        time.Time // of the current reading round or scan
	nextScan   time.Time
	scanWanted atomic.Bool
	notify     chan struct{}
	bytesRead  int64 // since TakeBytesRead
	openFiles  int
	more       bool // the last reading round left bytes to read

	// For the stall check (other goroutines): when the reader last read
	// something or found nothing left to read, and how many bytes the
	// last scan saw waiting to be read.
	progress atomic.Int64 // unix nanoseconds
	unread   atomic.Int64

	dirs    []string            // real paths of the directories the globs name
	refused map[string]*refusal // by path: told once
	limited int                 // scans that found the open-file limit in the way, while it lasts
	tombs   map[devIno]tomb     // files that left the globs (close.go)

	// The open-file limit, per scan: idle files to close first, and how
	// many files had to wait.
	evictable   []*File
	evictSorted bool
	blocked     int

	// The registry: changed by the reader under mu, read by Positions.
	mu         sync.Mutex
	files      []*File // in read order (gen)
	byID       map[devIno]*File
	groups     map[string]*group
	groupBusy  []bool // per group, during a reading round
	nextGen    uint64
	firstStart bool
	cands      []cand
	candIdx    map[devIno]int
	finishing  []*File // truncated without a copy: their last event is closed after the scan
}

// New returns a tailer. restored are the saved positions (nil on the first
// start, when files already rotated are history and not read;
// firstStart false without restored: read everything). newSink gives each
// file its Sink; it is called with the registry locked and must not call
// back into the Tailer.
func New(s Settings, restored []positions.Entry, firstStart bool, newSink func(*File) Sink, obs Observer, log *slog.Logger) *Tailer {
	tl := &Tailer{
		globs:      s.Paths,
		poll:       s.PollInterval,
		s:          s,
		log:        log,
		newSink:    newSink,
		obs:        obs,
		buf:        make([]byte, readBufSize),
		refused:    map[string]*refusal{},
		tombs:      map[devIno]tomb{},
		notify:     make(chan struct{}, 1),
		byID:       map[devIno]*File{},
		groups:     map[string]*group{},
		candIdx:    map[devIno]int{},
		firstStart: firstStart,
	}
	tl.restore(restored)
	tl.progress.Store(time.Now().UnixNano())
	return tl
}

// Start begins watching for file notifications.
func (tl *Tailer) Start() { tl.watch = tl.startWatcher() }

// Close stops watching and closes every file.
func (tl *Tailer) Close() {
	if tl.watch != nil {
		tl.watch.close()
	}
	tl.mu.Lock()
	for _, t := range tl.files {
		t.close()
	}
	tl.mu.Unlock()
}

// Wake receives a value when there may be something to read or to scan.
func (tl *Tailer) Wake() <-chan struct{} { return tl.notify }

func (tl *Tailer) signal() {
	select {
	case tl.notify <- struct{}{}:
	default:
	}
}

// ScanDue reports whether a full scan is due: asked for (by a file
// notification, or a truncation seen while reading) or the poll interval
// has passed. It takes the request.
func (tl *Tailer) ScanDue(now time.Time) bool {
	return tl.scanWanted.Swap(false) || !now.Before(tl.nextScan)
}

// NextScan is when the next scan is due by the poll interval.
func (tl *Tailer) NextScan() time.Time { return tl.nextScan }

// ScanRequested reports, without taking it, whether a scan was asked for.
func (tl *Tailer) ScanRequested() bool { return tl.scanWanted.Load() }

// Scan finds new, rotated, truncated and deleted files and decides where
// each new one is read from; then it completes the events of files
// truncated without a copy.
func (tl *Tailer) Scan(now time.Time) {
	tl.now = now
	if tl.watch != nil {
		tl.watch.ensure(tl.globs)
	}
	tl.dirs = globDirs(tl.globs)
	tl.scan(true)
	for _, t := range tl.finishing {
		tl.flushFile(t)
		tl.mu.Lock()
		tl.settle(t)
		tl.mu.Unlock()
	}
	clear(tl.finishing)
	tl.finishing = tl.finishing[:0]
	tl.nextScan = now.Add(tl.poll)
}

// OpenNew only opens files not seen yet (and re-checks closed ones that
// changed): while reading waits for memory, what is rotated away and
// deleted meanwhile stays readable through the open file.
func (tl *Tailer) OpenNew() { tl.scan(false) }

// TakeBytesRead returns the bytes read since the last call.
func (tl *Tailer) TakeBytesRead() int64 {
	n := tl.bytesRead
	tl.bytesRead = 0
	return n
}

// OpenFiles is how many files are open for reading.
func (tl *Tailer) OpenFiles() int { return tl.openFiles }

// Alive records that the reader is working, though not reading: it waits
// for memory (the sender's lag shows that), which is no stall.
func (tl *Tailer) Alive(now time.Time) { tl.progress.Store(now.UnixNano()) }

// LastProgress is when the reader last read something, found nothing left
// to read, or was waiting for memory.
func (tl *Tailer) LastProgress() time.Time { return time.Unix(0, tl.progress.Load()) }

// Stalled reports whether the reader has made no progress for longer than
// timeout while files have unread bytes; safe from any goroutine, and
// never waits for the reader.
func (tl *Tailer) Stalled(now time.Time, timeout time.Duration) (stalled bool, since time.Duration, unread int64) {
	since = now.Sub(tl.LastProgress())
	unread = tl.unread.Load()
	return since > timeout && unread > 0, since, unread
}

// Positions appends every known file's acknowledged offset to dst.
func (tl *Tailer) Positions(dst []positions.Entry) []positions.Entry {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, t := range tl.files {
		if !t.saved() {
			continue
		}
		dst = append(dst, positions.Entry{Path: t.path, Dev: t.id.dev, Inode: t.id.ino, Fingerprint: t.fp, Offset: t.Ack.Committed()})
	}
	return dst
}

// restore turns saved positions into files known but not yet seen; the
// first scan finds them on disk by device and inode.
func (tl *Tailer) restore(entries []positions.Entry) {
	for _, e := range entries {
		id := devIno{e.Dev, e.Inode}
		if tl.byID[id] != nil {
			continue
		}
		gpath, suffix := splitSuffix(e.Path)
		t := tl.newFile(tl.group(gpath), e.Path, suffix, id)
		t.fp, t.state, t.restored, t.readOff = e.Fingerprint, stDone, true, e.Offset
		t.Ack.Reset(e.Offset)
		tl.files = append(tl.files, t)
		tl.byID[id] = t
	}
}

func (tl *Tailer) group(gpath string) *group {
	if g, ok := tl.groups[gpath]; ok {
		return g
	}
	g := &group{id: len(tl.groupBusy), path: gpath}
	tl.groups[gpath] = g
	tl.groupBusy = append(tl.groupBusy, false)
	return g
}

// newFile is a file of group g at path, with its Sink.
func (tl *Tailer) newFile(g *group, path string, suffix int, id devIno) *File {
	// Idle from now, not since the epoch: a file that reads nothing at
	// first (truncated again as it was opened) is no candidate for
	// closing until close_inactive has passed.
	t := &File{g: g, path: path, suffix: suffix, id: id, lastData: tl.now}
	t.sink = tl.newSink(t)
	return t
}
