package shipper

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/flink-agent/flink-agent/internal/identity"
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

// group is a log file and its rotated predecessors (x.log, x.log.1, …):
// one Loki stream, read oldest first.
type group struct {
	id       int
	path     string // the live name; rotated files are path.N
	labels   string
	comp     int
	compName string
	clock    *streamClock // shared by every group with these labels
}

// streamClock spreads events of one Loki stream that share a millisecond
// over its nanoseconds. Loki drops an entry equal to one it holds in
// stream, time and line. Flink logs some lines twice in a millisecond; a
// rotation can put the two in different files of the stream, and other
// threads' lines can come between them with a later millisecond, so the
// state belongs to the stream and remembers the last few milliseconds.
type streamClock struct {
	ts   [clockSlots]int64
	seq  [clockSlots]int64
	last int   // slot written last
	max  int64 // the latest millisecond in the ring
}

const clockSlots = 16

// stamp returns the entry time for an event logged at ts (nanoseconds,
// millisecond precision): ts itself for the first event of a millisecond,
// then ts+1, ts+2, … (up to 999,999; beyond, times repeat).
func (c *streamClock) stamp(ts int64) int64 {
	if ts <= c.max { // usually the same millisecond as the last event
		for i, j := 0, c.last; i < clockSlots; i++ {
			if c.ts[j] == ts {
				if c.seq[j] < 999_999 {
					c.seq[j]++
				}
				return ts + c.seq[j]
			}
			j = (j - 1) & (clockSlots - 1)
		}
	} else {
		c.max = ts
	}
	// A new millisecond replaces the oldest one.
	c.last = (c.last + 1) & (clockSlots - 1)
	c.ts[c.last], c.seq[c.last] = ts, 0
	return ts
}

// tfile is one file (one inode) the shipper knows.
type tfile struct {
	g           *group
	path        string
	suffix      int // N of path.N, 0 for the live name
	id          devIno
	fp          fingerprint
	gen         uint64 // read order within a group: older data first
	state       fileState
	copyOf      *tfile
	live        bool      // the inode is at the group's live name
	gone        bool      // not found by the last scan
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

	committed atomic.Int64 // offset acknowledged by Loki (sender writes)
	handed    int64        // end of the last event handed on (reader)

	readOff  int64 // next byte to read
	buf      []byte
	bufN     int  // buf[:bufN] is an incomplete line starting at readOff-bufN
	midLine  bool // the line being read did not fit buf and continues
	lastData time.Time

	// The event being assembled.
	ev        []byte
	evLines   int
	evDropped int
	evEnd     int64
	evTS      int64 // 0: no timestamp in the event
	evHdr     header
}

// saved reports whether the file belongs in the positions file. Copies
// waiting for a truncation and orphans are decided again after a restart.
func (t *tfile) saved() bool {
	return t.state == stActive || (t.state == stDone && !t.gone)
}

// unlinked reports whether an open file has been deleted.
func (t *tfile) unlinked() bool {
	if t.f == nil {
		return false
	}
	fi, err := t.f.Stat()
	return err == nil && nlink(fi) == 0
}

func (t *tfile) close() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
}

// settleTime is how long a rotated file shorter than a fingerprint must
// stop growing before it is classified: a copytruncate copy is created
// empty and filled afterwards, and must not be mistaken for a new file.
const settleTime = time.Second

// cand is a path found by a scan.
type cand struct {
	path   string
	gpath  string
	suffix int
	id     devIno
	size   int64
	mtime  time.Time
}

// splitSuffix splits "x.log.3" into ("x.log", 3); n is 0 without a suffix.
func splitSuffix(p string) (string, int) {
	i := len(p) - 1
	for i >= 0 && isDigit(p[i]) {
		i--
	}
	if i <= 0 || i == len(p)-1 || p[i] != '.' || len(p)-1-i > 6 {
		return p, 0
	}
	n, _ := strconv.Atoi(p[i+1:])
	if n == 0 {
		return p, 0
	}
	return p[:i], n
}

// restore turns positions-file entries into files known but not yet seen;
// the first scan finds them on disk by device and inode.
func (s *Shipper) restore(entries []posEntry) {
	for _, e := range entries {
		fp, _ := e.fp()
		id := devIno{e.Dev, e.Inode}
		if s.byID[id] != nil {
			continue
		}
		gpath, suffix := splitSuffix(e.Path)
		t := &tfile{g: s.group(gpath), path: e.Path, suffix: suffix, id: id, fp: fp, state: stDone, restored: true, readOff: e.Offset, handed: e.Offset}
		t.committed.Store(e.Offset)
		s.files = append(s.files, t)
		s.byID[id] = t
	}
}

func (s *Shipper) group(gpath string) *group {
	if g, ok := s.groups[gpath]; ok {
		return g
	}
	comp := s.opts.Identity.Component
	if comp == "" {
		comp = identity.ComponentFromFile(gpath)
	}
	g := &group{id: len(s.groupList), path: gpath, compName: comp, comp: s.component(comp)}
	g.labels = s.streamLabels(comp, filepath.Base(gpath))
	if g.clock = s.clocks[g.labels]; g.clock == nil {
		g.clock = &streamClock{}
		s.clocks[g.labels] = g.clock
	}
	s.groups[gpath] = g
	s.groupList = append(s.groupList, g)
	s.groupBusy = append(s.groupBusy, false)
	return g
}

// enumerate lists the files matching the globs and their rotated
// siblings (glob match + ".N").
func (s *Shipper) enumerate() {
	s.cands = s.cands[:0]
	clear(s.candIdx)
	for _, g := range s.globs {
		ms, _ := filepath.Glob(g)
		for _, m := range ms {
			s.addCand(m, g)
		}
		sib, _ := filepath.Glob(g + ".[0-9]*")
		for _, m := range sib {
			s.addCand(m, g)
		}
	}
}

func (s *Shipper) addCand(p, glob string) {
	gpath, suffix := splitSuffix(p)
	if suffix > 0 {
		if ok, _ := filepath.Match(glob, gpath); !ok {
			if ok, _ := filepath.Match(glob, p); !ok {
				return
			}
			gpath, suffix = p, 0 // matched as a name of its own (app.2024)
		}
	}
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	id, ok := statID(fi)
	if !ok {
		return
	}
	if i, dup := s.candIdx[id]; dup {
		if suffix == 0 && s.cands[i].suffix != 0 {
			s.cands[i] = cand{path: p, gpath: gpath, id: id, size: fi.Size(), mtime: fi.ModTime()}
		}
		return
	}
	s.candIdx[id] = len(s.cands)
	s.cands = append(s.cands, cand{path: p, gpath: gpath, suffix: suffix, id: id, size: fi.Size(), mtime: fi.ModTime()})
}

// scan finds files. A passive scan (full=false, used while reading is
// paused for memory) only opens files it has not seen, so that data
// rotated away and deleted meanwhile stays readable through the open file.
// A full scan also notices rotation, truncation and deletion, and decides
// where each new file is read from.
func (s *Shipper) scan(full bool) {
	s.enumerate()
	s.regMu.Lock()
	defer s.regMu.Unlock()
	for i := range s.cands {
		c := &s.cands[i]
		t := s.byID[c.id]
		switch {
		case t == nil:
			s.openNew(c)
		case !full && t.state == stDone && t.f == nil && !t.restored && (c.size != t.size || !c.mtime.Equal(t.mtime)):
			// A closed file's inode can be reused by a new file at
			// any time: check now, not at the next full scan, which
			// may come too late (the new file deleted meanwhile).
			t.size, t.mtime = c.size, c.mtime
			s.verify(t)
		}
	}
	if !full {
		return
	}
	// Where is every known inode now?
	for _, t := range s.files {
		if t.state == stOrphan {
			continue
		}
		i, ok := s.candIdx[t.id]
		if !ok {
			// Listing a directory races with renames (a rotation
			// shifting .1 to .2 as we look): only a file missing from
			// two scans in a row, or unlinked, is gone.
			t.missed++
			if t.missed >= 2 || t.unlinked() {
				t.gone, t.live = true, false
				if t.f == nil && t.state != stNew {
					// Deleted and closed: its inode number is free
					// for a new file.
					if s.byID[t.id] == t {
						delete(s.byID, t.id)
					}
					t.id = devIno{}
				}
			}
			// A deleted file still open may have been truncated
			// before it was deleted.
			if t.state == stActive && t.f != nil {
				s.verify(t)
			}
			continue
		}
		c := &s.cands[i]
		t.gone, t.missed = false, 0
		t.path, t.suffix = c.path, c.suffix
		t.live = c.suffix == 0 && c.gpath == t.g.path
		// A finished file that changed was written again, or its inode
		// was reused for a new file (deleted and created between scans).
		changed := c.size != t.size || !c.mtime.Equal(t.mtime)
		t.size, t.mtime = c.size, c.mtime
		switch {
		case t.restored, t.state == stActive, t.state == stDone && changed:
			s.verify(t)
		}
	}
	// Orphans first take their own copies, then the new files are
	// classified, siblings with the highest N (oldest data) first. A
	// rotated file still being written (a copytruncate copy in progress)
	// waits until its leading bytes are all there or it stops growing.
	var news []*tfile
	for _, t := range s.files {
		if t.state != stNew {
			continue
		}
		if t.f != nil {
			var hb [fpMax]byte
			if head, err := readHead(t.f, &hb); err == nil {
				t.head = append(t.head[:0], head...)
			}
			if fi, err := t.f.Stat(); err == nil {
				t.mtime = fi.ModTime()
				if fi.Size() != t.size || t.fresh {
					t.size, t.fresh, t.sizeSince = fi.Size(), false, s.now
				}
				if t.suffix > 0 && len(t.head) < fpMax && !t.history && s.now.Sub(t.sizeSince) < settleTime {
					continue
				}
			}
		}
		news = append(news, t)
	}
	// Oldest content first: by last write (a rotated file was last
	// written before the files rotated after it; a copy when it was
	// made), then by rotation number.
	sort.SliceStable(news, func(i, j int) bool {
		a, b := news[i], news[j]
		if !a.mtime.Equal(b.mtime) {
			return a.mtime.Before(b.mtime)
		}
		return suffixOrder(a) > suffixOrder(b)
	})
	for _, t := range s.files {
		if t.state == stCopy && t.copyOf.state == stOrphan && t.f != nil {
			s.takeover(t.copyOf, t)
		}
	}
	for _, n := range news {
		s.classify(n)
	}
	s.firstStart = false
	kept := s.files[:0]
	for _, t := range s.files {
		switch t.state {
		case stOrphan:
			// The copy may have been made after this scan listed the
			// directory (copy, then truncate, between listing and
			// checking): look again before giving up.
			if t.orphanScans++; t.orphanScans < 3 {
				s.scanWanted.Store(true)
				break
			}
			// Truncated without a copy holding the rest (a plain
			// truncate, or a copy we never saw): what was after
			// readOff is gone. Its last event is closed after the
			// registry is unlocked (emitting may wait for the sender).
			if t.quietOrphan {
				s.log.Debug("known log file replaced while the agent was down", "file", t.path)
			} else {
				s.log.Warn("log file truncated and no copy of its content found; continuing at its start", "file", t.path, "read", t.readOff)
			}
			t.state, t.gone = stDone, true
			s.finishing = append(s.finishing, t)
		case stCopy:
			// Until the original is truncated (and t takes over) or
			// rotated away (t is a mere duplicate).
			o := t.copyOf
			if o.state == stDone || o.gone {
				// Its content was read from the original.
				t.state = stDone
				t.readOff = t.size
				t.committed.Store(t.size)
				t.handed = t.size
				s.closeFile(t)
			}
		}
		// A copy is kept, even deleted, until its original is settled:
		// the original may yet turn out truncated, the copy holding the rest.
		if t.state == stDone && t.gone && t.committed.Load() >= t.handed {
			s.closeFile(t)
			if s.byID[t.id] == t {
				delete(s.byID, t.id)
			}
			continue
		}
		kept = append(kept, t)
	}
	clear(s.files[len(kept):])
	s.files = kept
	sort.SliceStable(s.files, func(i, j int) bool { return s.files[i].gen < s.files[j].gen })
	s.posVersion.Add(1)
}

// suffixOrder sorts new files: rotated ones by N, the live name last.
func suffixOrder(t *tfile) int {
	if t.suffix == 0 {
		return -1
	}
	return t.suffix
}

func (s *Shipper) openNew(c *cand) {
	if s.openFiles >= maxOpenFiles {
		s.log.Warn("too many open log files; not opening more until some are read", "max", maxOpenFiles, "file", c.path)
		return
	}
	f, err := os.Open(c.path)
	if err != nil {
		s.log.Warn("cannot open log file", "file", c.path, "err", err)
		return
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return
	}
	if id, _ := statID(fi); id != c.id {
		f.Close() // replaced between stat and open; the next scan sees the new one
		return
	}
	var hb [fpMax]byte
	head, err := readHead(f, &hb)
	if err != nil {
		f.Close()
		return
	}
	t := &tfile{g: s.group(c.gpath), path: c.path, suffix: c.suffix, id: c.id, f: f, state: stNew,
		head: append([]byte(nil), head...), size: fi.Size(), fresh: true, history: s.firstStart}
	s.openFiles++
	s.files = append(s.files, t)
	s.byID[c.id] = t
	dbg("open", c.path, c.id.ino, c.size)
}

func (s *Shipper) closeFile(t *tfile) {
	if t.f != nil {
		t.close()
		s.openFiles--
	}
	t.buf = nil
}

// verify checks that a known inode still holds the content it had. A file
// restored from the positions file is opened here.
func (s *Shipper) verify(t *tfile) {
	// Renamed or deleted between listing and opening: check again at
	// the next scan, whatever its size and time then.
	retry := func() { t.size, t.mtime = -1, time.Time{} }
	if t.f == nil {
		f, err := os.Open(t.path)
		if err != nil {
			retry()
			return
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			retry()
			return
		}
		if id, _ := statID(fi); id != t.id {
			f.Close()
			retry()
			return
		}
		t.f = f
		s.openFiles++
	}
	var hb [fpMax]byte
	head, err := readHead(t.f, &hb)
	if err != nil {
		retry()
		return
	}
	fi, err := t.f.Stat()
	if err != nil {
		retry()
		return
	}
	size := fi.Size()
	if size < t.readOff || !t.fp.matches(head) {
		dbg("verify mismatch", t.path, t.id.ino, "size", size, "read", t.readOff, t.fp.n, len(head), t.restored, t.state)
		// Truncated (copytruncate) or the inode was reused: the content
		// t was reading is elsewhere or gone. The inode starts over as
		// a new file. A file being read (or known from before a
		// restart) looks for a copy of its content to continue in; a
		// finished one was deleted and its inode reused.
		n := &tfile{g: t.g, path: t.path, suffix: t.suffix, id: t.id, f: t.f, state: stNew,
			head: append([]byte(nil), head...), size: size, fresh: true, live: t.live}
		t.f = nil
		if t.state == stDone && !t.restored {
			// Detached from the inode, it is dropped once acknowledged.
			t.gone, t.id = true, devIno{}
		} else {
			t.quietOrphan = t.restored && (t.readOff == 0 || !t.live)
			t.state = stOrphan
		}
		t.restored = false
		s.files = append(s.files, n)
		s.byID[n.id] = n
		return
	}
	if len(head) > t.fp.n {
		t.fp = fingerprintOf(head)
	}
	if t.restored {
		t.restored = false
		t.gen = s.nextGen
		s.nextGen++
		if t.readOff < size || t.live {
			t.state = stActive
		} else {
			s.closeFile(t)
		}
		return
	}
	if t.state == stDone {
		if size > t.readOff {
			t.state = stActive // written after we finished it: read the rest
		} else {
			s.closeFile(t)
		}
	}
}

// classify decides what a newly opened file is.
func (s *Shipper) classify(n *tfile) {
	// Only a rotated file can be a copy: copytruncate leaves the
	// original at the live name, so a live file is never one, even when
	// its copy was listed first.
	if len(n.head) > 0 && n.suffix > 0 {
		for _, o := range s.files {
			if o.state == stOrphan && o.fp.n > 0 && o.fp.matches(n.head) {
				if n.size >= o.readOff {
					s.takeover(o, n)
					return
				}
				// An older copy of what o read: nothing new in it.
				dbg("stale copy", n.path, n.id.ino, n.size, "<", o.readOff)
				n.fp, n.head, n.state = fingerprintOf(n.head), nil, stDone
				n.readOff, n.handed = n.size, n.size
				n.committed.Store(n.size)
				s.closeFile(n)
				return
			}
		}
		for _, o := range s.files {
			if o == n || o.g != n.g || o.id == n.id {
				continue
			}
			copyOf := false
			switch o.state {
			case stActive, stDone:
				copyOf = o.fp.n > 0 && o.fp.matches(n.head)
			case stNew:
				k := min(len(o.head), len(n.head))
				copyOf = o.suffix == 0 && k > 0 && bytes.Equal(o.head[:k], n.head[:k])
			}
			if copyOf {
				dbg("classify copy", n.path, n.id.ino, "of", o.path, o.id.ino)
				n.state, n.copyOf = stCopy, o
				n.fp = fingerprintOf(n.head)
				n.head = nil
				return
			}
		}
	}
	dbg("classify new", n.path, n.id.ino, n.size, len(n.head), s.firstStart)
	n.fp = fingerprintOf(n.head)
	n.head = nil
	n.gen = s.nextGen
	s.nextGen++
	if n.suffix > 0 && n.history {
		// Rotated before the agent ever ran: history, not shipped.
		n.state = stDone
		n.readOff, n.handed = n.size, n.size
		n.committed.Store(n.size)
		s.closeFile(n)
		return
	}
	// New: the live file, or a rotated file that appeared since we last
	// looked (created and rotated between two scans or while the agent
	// was down). Either way every byte of it is unread.
	n.state = stActive
}

// takeover makes the copy c continue orphan o: o's reading state (offset,
// partial line, event) applies unchanged because c holds the same bytes.
var debugOn = os.Getenv("DBG") != ""

func dbg(args ...any) {
	if debugOn {
		fmt.Fprintln(os.Stderr, args...)
	}
}

func (s *Shipper) takeover(o, c *tfile) {
	dbg("takeover", o.path, o.id.ino, o.readOff, "by", c.path, c.id.ino, c.size)
	o.f, c.f = c.f, nil
	o.id, o.path, o.suffix, o.size = c.id, c.path, c.suffix, c.size
	o.state, o.live, o.gone = stActive, false, false
	c.state, c.gone = stDone, true
	c.committed.Store(0)
	c.handed = 0
	s.byID[o.id] = o
}

// scanFull runs a full scan, then closes the events of files it found
// truncated without a copy.
func (s *Shipper) scanFull() {
	s.scan(true)
	for _, t := range s.finishing {
		s.flushFile(t)
		s.regMu.Lock()
		s.settle(t)
		s.regMu.Unlock()
	}
	clear(s.finishing)
	s.finishing = s.finishing[:0]
}

// finish ends a file read to its end: its last line (even without a
// newline) and its pending event are complete now.
func (s *Shipper) finish(t *tfile) {
	dbg("finish", t.path, t.id.ino, t.readOff)
	s.flushFile(t)
	s.regMu.Lock()
	t.state = stDone
	s.settle(t)
	s.regMu.Unlock()
}

// flushFile emits a finished file's last line and event. It runs without
// the registry lock: emitting may wait for the sender, which takes it.
func (s *Shipper) flushFile(t *tfile) {
	if t.bufN > 0 {
		line := t.buf[:t.bufN]
		join := t.midLine
		t.bufN, t.midLine = 0, false
		_ = s.line(t, line, t.readOff, join)
	}
	if t.evLines > 0 {
		_ = s.emit(t)
	}
}

// settle closes a finished file. Bytes after its last event (blank lines
// in json mode) need no acknowledgement once every event is acknowledged.
func (s *Shipper) settle(t *tfile) {
	if t.handed < t.readOff && t.committed.Load() == t.handed {
		t.committed.Store(t.readOff)
		t.handed = t.readOff
	}
	s.closeFile(t)
}

// readRound reads one file of each group: the oldest rotated (or copied,
// or deleted) file still being finished, else the live file. Older data
// goes first, and the live file is never held up for long because rotated
// files end.
func (s *Shipper) readRound() (bool, error) {
	clear(s.groupBusy)
	progress := false
	files := s.files
	for pass := 0; pass < 2; pass++ {
		for _, t := range files {
			if t.state != stActive || s.groupBusy[t.g.id] || t.live != (pass == 1) {
				continue
			}
			s.groupBusy[t.g.id] = true
			n, err := s.readFile(t)
			if n > 0 {
				progress = true
			}
			if err != nil {
				return progress, err
			}
		}
	}
	return progress, nil
}

func (s *Shipper) readFile(t *tfile) (int, error) {
	if t.buf == nil {
		t.buf = make([]byte, readBufSize)
	}
	if t.f == nil {
		return 0, nil
	}
	total := 0
	for total < maxPerRound {
		n, err := t.f.ReadAt(t.buf[t.bufN:], t.readOff)
		if n > 0 {
			// Was the file truncated and written again before this read?
			// Then its leading bytes changed, and what was read belongs
			// to new content at an old offset: drop it and let a scan
			// sort the file out. Checking after the read closes the race
			// a check before it would leave open.
			// The fingerprint grows with what is read, up to fpMax: a
			// truncation must find the copy by the content we read.
			fp := t.fp
			if end := t.readOff + int64(n); fp.n < fpMax && t.readOff <= int64(fp.n) && end > int64(fp.n) {
				d := t.buf[t.bufN : t.bufN+n]
				fp = fp.extend(d[fp.n-int(t.readOff) : min(int64(n), fpMax-t.readOff)])
			}
			var hb [fpMax]byte
			head, herr := readHead(t.f, &hb)
			if herr != nil || !fp.matches(head) {
				s.scanWanted.Store(true)
				return total, nil
			}
			if fp != t.fp {
				s.regMu.Lock()
				t.fp = fp
				s.regMu.Unlock()
			}
			total += n
			s.tailBytes += int64(n)
			t.lastData = s.now
			if err := s.consume(t, n); err != nil {
				return total, err
			}
			if t.state != stActive {
				return total, nil
			}
			continue
		}
		if err != nil && err != io.EOF {
			s.log.Warn("reading log file failed", "file", t.path, "err", err)
			return total, nil
		}
		// At the end. Truncated (copytruncate, perhaps renamed since)?
		if fi, err := t.f.Stat(); err == nil && fi.Size() < t.readOff {
			s.scanWanted.Store(true)
			return total, nil
		}
		if !t.live {
			// Rotated, deleted or a copy: nothing more will be written.
			s.finish(t)
			return total, nil
		}
		return total, nil
	}
	return total, nil
}

// consume splits the n bytes just read (after buf[:bufN]) into lines.
func (s *Shipper) consume(t *tfile, n int) error {
	data := t.buf[:t.bufN+n]
	base := t.readOff - int64(t.bufN)
	t.readOff += int64(n)
	pos := 0
	for {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			break
		}
		line := data[pos : pos+i]
		if i > 0 && line[i-1] == '\r' {
			line = line[:i-1]
		}
		join := t.midLine
		t.midLine = false
		pos += i + 1
		if err := s.line(t, line, base+int64(pos), join); err != nil {
			// Stopping: leave the rest unread (it is not acknowledged).
			t.bufN = 0
			return err
		}
	}
	rest := data[pos:]
	if len(rest) == len(t.buf) {
		// A line longer than the buffer: take this piece now.
		join := t.midLine
		t.midLine = true
		t.bufN = 0
		return s.line(t, rest, base+int64(len(data)), join)
	}
	t.bufN = copy(t.buf, rest)
	return nil
}

// line handles one line (or, with join, the next piece of a long line).
func (s *Shipper) line(t *tfile, line []byte, end int64, join bool) error {
	if join {
		s.appendEv(t, line, end, false)
		return nil
	}
	if s.json {
		if len(bytes.TrimSpace(line)) == 0 {
			return nil
		}
		s.beginEv(t, line, end, false)
		return s.emit(t)
	}
	start := false
	if s.startRE == nil {
		start = isLog4jTime(line)
	} else {
		start = s.startRE.Match(line)
	}
	if start {
		if t.evLines > 0 {
			if err := s.emit(t); err != nil {
				return err
			}
		}
		s.beginEv(t, line, end, true)
		if len(s.hdrObs) > 0 {
			s.observeHeader(t)
		}
		return nil
	}
	if t.evLines == 0 {
		// A continuation without its start (file begins mid-trace).
		s.beginEv(t, line, end, false)
		return nil
	}
	s.appendEv(t, line, end, true)
	return nil
}

func (s *Shipper) beginEv(t *tfile, line []byte, end int64, start bool) {
	if t.ev == nil {
		t.ev = make([]byte, 0, 512)
	}
	keep := len(line)
	if keep > s.maxEvent {
		keep = utf8Cut(line, s.maxEvent)
	}
	t.ev = append(t.ev[:0], line[:keep]...)
	t.evDropped = len(line) - keep
	t.evLines = 1
	t.evEnd = end
	t.evTS = 0
	t.evHdr = header{}
	if s.json {
		t.evTS = parseJSON(t.ev, &t.evHdr)
		return
	}
	if start && isLog4jTime(t.ev) {
		if ts, ok := s.ts.parse(t.ev); ok {
			t.evTS = ts
		}
		parseHeader(t.ev, &t.evHdr)
	}
}

func (s *Shipper) appendEv(t *tfile, line []byte, end int64, newline bool) {
	t.evEnd = end
	if newline {
		t.evLines++
	}
	need := len(line)
	if newline {
		need++
	}
	room := s.maxEvent - len(t.ev)
	if need <= room {
		if newline {
			t.ev = append(t.ev, '\n')
		}
		t.ev = append(t.ev, line...)
		return
	}
	if room > 1 {
		if newline {
			t.ev = append(t.ev, '\n')
			room--
			need--
		}
		keep := utf8Cut(line, room)
		t.ev = append(t.ev, line[:keep]...)
		need -= keep
	}
	t.evDropped += need
}

// utf8Cut returns a length <= max that does not split a UTF-8 sequence.
func utf8Cut(b []byte, max int) int {
	if max >= len(b) {
		return len(b)
	}
	n := max
	for n > 0 && n > max-4 && b[n]&0xC0 == 0x80 {
		n--
	}
	return n
}

// flushIdle emits events no line has been added to for the idle timeout;
// it returns the earliest time another one becomes due.
func (s *Shipper) flushIdle(now time.Time) (time.Time, bool) {
	var next time.Time
	found := false
	for _, t := range s.files {
		if t.evLines == 0 || t.midLine || t.state != stActive {
			continue
		}
		due := t.lastData.Add(s.idle)
		if !now.Before(due) {
			if err := s.emit(t); err != nil {
				return next, found
			}
			continue
		}
		if !found || due.Before(next) {
			next, found = due, true
		}
	}
	return next, found
}
