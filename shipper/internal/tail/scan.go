package tail

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/flink-agent/flink-agent/shipper/internal/fingerprint"
)

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

// enumerate lists the files matching the globs and their rotated
// siblings (glob match + ".N").
func (tl *Tailer) enumerate() {
	tl.cands = tl.cands[:0]
	clear(tl.candIdx)
	for _, g := range tl.globs {
		ms, _ := filepath.Glob(g)
		for _, m := range ms {
			tl.addCand(m, g)
		}
		sib, _ := filepath.Glob(g + ".[0-9]*")
		for _, m := range sib {
			tl.addCand(m, g)
		}
	}
}

func (tl *Tailer) addCand(p, glob string) {
	if r := tl.refused[p]; r != nil {
		r.seen = true
	}
	gpath, suffix := splitSuffix(p)
	if suffix > 0 {
		if ok, _ := filepath.Match(glob, gpath); !ok {
			if ok, _ := filepath.Match(glob, p); !ok {
				return
			}
			gpath, suffix = p, 0 // matched as a name of its own (app.2024)
		}
	}
	fi, err := os.Stat(p) // never blocks, not even on a FIFO
	if err != nil || fi.IsDir() {
		return
	}
	id, ok := statID(fi)
	if !ok {
		return
	}
	if !fi.Mode().IsRegular() {
		if !tl.refusedNow(p, id) {
			tl.refuse(p, &refusal{reason: ReasonNotRegular, id: id, detail: "not a regular file (" + fi.Mode().Type().String() + ")"})
		}
		return
	}
	if i, dup := tl.candIdx[id]; dup {
		if suffix == 0 && tl.cands[i].suffix != 0 {
			tl.cands[i] = cand{path: p, gpath: gpath, id: id, size: fi.Size(), mtime: fi.ModTime()}
		}
		return
	}
	tl.candIdx[id] = len(tl.cands)
	tl.cands = append(tl.cands, cand{path: p, gpath: gpath, suffix: suffix, id: id, size: fi.Size(), mtime: fi.ModTime()})
}

// scan finds files. A passive scan (full=false, used while reading is
// paused for memory) only opens files it has not seen, so that data
// rotated away and deleted meanwhile stays readable through the open file.
// A full scan also notices rotation, truncation and deletion, and decides
// where each new file is read from.
func (tl *Tailer) scan(full bool) {
	tl.enumerate()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.evictable, tl.blocked = tl.evictable[:0], 0
	tl.evictSorted = false
	defer tl.forgetRefused()
	for i := range tl.cands {
		c := &tl.cands[i]
		t := tl.byID[c.id]
		switch {
		case t == nil:
			tl.openNew(c)
		case !full && t.state == stDone && t.f == nil && !t.restored && (c.size != t.size || !c.mtime.Equal(t.mtime)):
			// A closed file's inode can be reused by a new file at
			// any time: check now, not at the next full scan, which
			// may come too late (the new file deleted meanwhile).
			t.size, t.mtime = c.size, c.mtime
			tl.verify(t)
		}
	}
	if !full {
		return
	}
	tl.publishUnread()
	// Where is every known inode now?
	for _, t := range tl.files {
		if t.state == stOrphan {
			continue
		}
		i, ok := tl.candIdx[t.id]
		if !ok {
			// Listing a directory races with renames (a rotation
			// shifting .1 to .2 as we look): only a file missing from
			// two scans in a row, or unlinked, is gone.
			t.missed++
			unlinked := t.unlinked()
			t.deleted = t.deleted || unlinked
			if t.missed >= 2 || unlinked {
				t.gone, t.live = true, false
				if t.state == stActive && t.f == nil {
					// Closed while idle, then deleted or renamed
					// away: it ends here (its last event too).
					t.state = stDone
					tl.finishing = append(tl.finishing, t)
				}
				if t.f == nil && t.state != stNew {
					// Renamed out of the globs (or deleted unseen): if
					// it comes back, it goes on where it was.
					if !t.deleted && t.id != (devIno{}) && t.state == stDone {
						tl.bury(t)
					}
					// Deleted and closed: its inode number is free
					// for a new file.
					if tl.byID[t.id] == t {
						delete(tl.byID, t.id)
					}
					t.id = devIno{}
				}
			}
			// A deleted file still open may have been truncated
			// before it was deleted.
			if t.state == stActive && t.f != nil {
				tl.verify(t)
			}
			continue
		}
		c := &tl.cands[i]
		t.gone, t.missed = false, 0
		t.path, t.suffix = c.path, c.suffix
		t.live = c.suffix == 0 && c.gpath == t.g.path
		// A finished file that changed was written again, or its inode
		// was reused for a new file (deleted and created between scans).
		changed := c.size != t.size || !c.mtime.Equal(t.mtime)
		t.size, t.mtime = c.size, c.mtime
		switch {
		case t.state == stActive && t.f == nil:
			// Closed while idle: reopened when it grew (or changed).
			if changed {
				tl.verify(t)
			}
		case t.restored, t.state == stActive, t.state == stDone && changed:
			tl.verify(t)
		}
	}
	// Orphans first take their own copies, then the new files are
	// classified, siblings with the highest N (oldest data) first. A
	// rotated file still being written (a copytruncate copy in progress)
	// waits until its leading bytes are all there or it stops growing.
	var news []*File
	for _, t := range tl.files {
		if t.state != stNew {
			continue
		}
		if t.f != nil {
			var hb [fingerprint.Max]byte
			if head, err := fingerprint.ReadHead(t.f, &hb); err == nil {
				t.head = append(t.head[:0], head...)
			}
			if fi, err := t.f.Stat(); err == nil {
				t.mtime = fi.ModTime()
				if fi.Size() != t.size || t.fresh {
					t.size, t.fresh, t.sizeSince = fi.Size(), false, tl.now
				}
				if t.suffix > 0 && len(t.head) < fingerprint.Max && !t.history && tl.now.Sub(t.sizeSince) < settleTime {
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
	for _, t := range tl.files {
		if t.state == stCopy && t.copyOf.state == stOrphan && t.f != nil {
			tl.takeover(t.copyOf, t)
		}
	}
	for _, n := range news {
		tl.classify(n)
	}
	tl.closeInactive()
	tl.limitWarning()
	tl.firstStart = false
	kept := tl.files[:0]
	for _, t := range tl.files {
		switch t.state {
		case stOrphan:
			// The copy may have been made after this scan listed the
			// directory (copy, then truncate, between listing and
			// checking): look again before giving up.
			t.orphanScans++
			if t.orphanScans < 3 {
				tl.scanWanted.Store(true)
				break
			}
			// Truncated without a copy holding the rest (a plain
			// truncate, or a copy we never saw): what was after
			// readOff is gone. Its last event is closed after the
			// registry is unlocked (emitting may wait for the sender).
			if t.quietOrphan {
				tl.log.Debug("known log file replaced while the agent was down", "file", t.path)
			} else {
				tl.log.Warn("log file truncated and no copy of its content found; continuing at its start", "file", t.path, "read", t.readOff)
			}
			// Detached from the inode, which the file that replaced
			// it holds: a scan must not find it there again and take
			// the new content for its own.
			t.state, t.gone, t.id = stDone, true, devIno{}
			tl.finishing = append(tl.finishing, t)
		case stCopy:
			// Until the original is truncated (and t takes over) or
			// rotated away (t is a mere duplicate).
			o := t.copyOf
			if o.state == stDone || o.gone {
				// Its content was read from the original.
				t.state = stDone
				t.skip(t.size)
				tl.closeFile(t)
			}
		}
		// A copy is kept, even deleted, until its original is settled:
		// the original may yet turn out truncated, the copy holding the rest.
		if t.state == stDone && t.gone && t.Ack.Settled() {
			tl.closeFile(t)
			if tl.byID[t.id] == t {
				delete(tl.byID, t.id)
			}
			continue
		}
		kept = append(kept, t)
	}
	clear(tl.files[len(kept):])
	tl.files = kept
	sort.SliceStable(tl.files, func(i, j int) bool { return tl.files[i].gen < tl.files[j].gen })
}

// suffixOrder sorts new files: rotated ones by N, the live name last.
func suffixOrder(t *File) int {
	if t.suffix == 0 {
		return -1
	}
	return t.suffix
}

func (tl *Tailer) openNew(c *cand) {
	if tl.refusedNow(c.path, c.id) || !tl.room() {
		return
	}
	f, size, err := tl.open(c.path, c.id)
	if err != nil {
		tl.openFailed(c.path, err)
		return
	}
	tl.admitted(c.path)
	var hb [fingerprint.Max]byte
	head, err := fingerprint.ReadHead(f, &hb)
	if err != nil {
		f.Close()
		return
	}
	t := tl.newFile(tl.group(c.gpath), c.path, c.suffix, c.id)
	t.f, t.state, t.head, t.size, t.fresh, t.history = f, stNew, append([]byte(nil), head...), size, true, tl.firstStart
	t.lastData = tl.now
	tl.openFiles++
	tl.files = append(tl.files, t)
	tl.byID[c.id] = t
}

// openFailed tells of a file that could not be opened: a refusal once, a
// race with a rename not at all (the next scan sees the file where it is).
func (tl *Tailer) openFailed(path string, err error) {
	var r *refusal
	switch {
	case errors.As(err, &r):
		tl.refuse(path, r)
	case errors.Is(err, errReplaced), errors.Is(err, os.ErrNotExist):
	default:
		tl.log.Debug("cannot open log file", "file", path, "err", err)
	}
}

// verify checks that a known inode still holds the content it had. A file
// restored from the positions file is opened here.
func (tl *Tailer) verify(t *File) {
	// Renamed or deleted between listing and opening: check again at
	// the next scan, whatever its size and time then.
	retry := func() { t.size, t.mtime = -1, time.Time{} }
	if t.f == nil {
		if !tl.room() {
			retry()
			return
		}
		f, _, err := tl.open(t.path, t.id)
		if err != nil {
			tl.openFailed(t.path, err)
			retry()
			return
		}
		tl.admitted(t.path)
		t.f, t.eof = f, false // not to be closed again before it is read
		tl.openFiles++
	}
	var hb [fingerprint.Max]byte
	head, err := fingerprint.ReadHead(t.f, &hb)
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
	if size < t.readOff || !t.fp.Matches(head) {
		tl.log.Debug("log file truncated or its inode reused", "file", t.path, "size", size, "read", t.readOff, "restored", t.restored)
		// Truncated (copytruncate) or the inode was reused: the content
		// t was reading is elsewhere or gone. The inode starts over as
		// a new file. A file being read (or known from before a
		// restart) looks for a copy of its content to continue in; a
		// finished one was deleted and its inode reused.
		n := tl.newFile(t.g, t.path, t.suffix, t.id)
		n.f, n.state, n.head, n.size, n.fresh, n.live = t.f, stNew, append([]byte(nil), head...), size, true, t.live
		t.f = nil
		if t.state == stDone && !t.restored {
			// Detached from the inode, it is dropped once acknowledged.
			t.gone, t.id = true, devIno{}
		} else {
			t.quietOrphan = t.restored && (t.readOff == 0 || !t.live)
			t.state = stOrphan
		}
		t.restored = false
		tl.files = append(tl.files, n)
		tl.byID[n.id] = n
		return
	}
	if len(head) > t.fp.N {
		t.fp = fingerprint.Of(head)
	}
	if t.restored {
		t.restored = false
		t.gen = tl.nextGen
		tl.nextGen++
		if t.readOff < size || t.live {
			t.state = stActive
		} else {
			tl.closeFile(t)
		}
		return
	}
	if t.state == stDone {
		if size > t.readOff {
			t.state = stActive // written after we finished it: read the rest
		} else {
			tl.closeFile(t)
		}
	}
}

// classify decides what a newly opened file is.
func (tl *Tailer) classify(n *File) {
	// Only a rotated file can be a copy: copytruncate leaves the
	// original at the live name, so a live file is never one, even when
	// its copy was listed first.
	if len(n.head) > 0 && n.suffix > 0 {
		for _, o := range tl.files {
			if o.state == stOrphan && o.fp.N > 0 && o.fp.Matches(n.head) {
				if n.size >= o.readOff {
					tl.takeover(o, n)
					return
				}
				// An older copy of what o read: nothing new in it.
				tl.log.Debug("older copy of a truncated log file; nothing new in it", "file", n.path, "size", n.size, "read", o.readOff)
				n.fp, n.head, n.state = fingerprint.Of(n.head), nil, stDone
				n.skip(n.size)
				tl.closeFile(n)
				return
			}
		}
		for _, o := range tl.files {
			if o == n || o.g != n.g || o.id == n.id {
				continue
			}
			copyOf := false
			switch o.state {
			case stActive, stDone:
				copyOf = o.fp.N > 0 && o.fp.Matches(n.head)
			case stNew:
				k := min(len(o.head), len(n.head))
				copyOf = o.suffix == 0 && k > 0 && bytes.Equal(o.head[:k], n.head[:k])
			}
			if copyOf {
				tl.log.Debug("log file is a copy; read only if its original turns out truncated", "file", n.path, "original", o.path)
				n.state, n.copyOf = stCopy, o
				n.fp = fingerprint.Of(n.head)
				n.head = nil
				return
			}
		}
	}
	resumed := tl.unbury(n)
	n.fp = fingerprint.Of(n.head)
	n.head = nil
	n.gen = tl.nextGen
	tl.nextGen++
	if resumed {
		n.state = stActive
		return
	}
	if n.suffix > 0 && n.history {
		// Rotated before the agent ever ran: history, not shipped.
		n.state = stDone
		n.skip(n.size)
		tl.closeFile(n)
		return
	}
	// New: the live file, or a rotated file that appeared since we last
	// looked (created and rotated between two scans or while the agent
	// was down). Either way every byte of it is unread.
	n.state = stActive
}

// takeover makes the copy c continue orphan o: o's reading state (offset,
// partial line, event) applies unchanged because c holds the same bytes.
func (tl *Tailer) takeover(o, c *File) {
	tl.log.Debug("truncated log file continues in its copy", "file", o.path, "copy", c.path, "read", o.readOff)
	o.f, c.f = c.f, nil
	o.id, o.path, o.suffix, o.size = c.id, c.path, c.suffix, c.size
	o.state, o.live, o.gone = stActive, false, false
	c.state, c.gone = stDone, true
	c.Ack.Reset(0)
	tl.byID[o.id] = o
}

// finish ends a file read to its end: its last line (even without a
// newline) and its pending event are complete now.
func (tl *Tailer) finish(t *File) {
	tl.flushFile(t)
	tl.mu.Lock()
	t.state = stDone
	tl.settle(t)
	tl.mu.Unlock()
}

// flushFile hands on a finished file's last line and pending event. It
// runs without the registry lock: the sink may wait for the sender, which
// takes it.
func (tl *Tailer) flushFile(t *File) {
	if len(t.partial) > 0 {
		line := t.partial
		join := t.midLine
		t.partial, t.midLine = nil, false
		_ = t.sink.Line(line, t.readOff, join)
	}
	_ = t.sink.Flush()
}

// settle closes a finished file. Bytes after its last event (blank lines
// in json mode) need no acknowledgement once every event is acknowledged.
func (tl *Tailer) settle(t *File) {
	t.Ack.Skip(t.readOff)
	tl.closeFile(t)
}
