package tail

import (
	"sort"
	"time"

	"github.com/flink-agent/flink-agent/shipper/internal/fingerprint"
)

// Closing files: thousands of files must not hold thousands of
// descriptors, nor starve each other at the open-file limit.
//
//   - A live file read to its end is closed after Settings.CloseInactive
//     without new data (Filebeat's and Fluent Bit's close_inactive) and
//     reopened, by device, inode and fingerprint, when a scan sees it grow.
//   - At Settings.MaxOpenFiles, a file waiting to be opened takes the
//     place of the open file idle longest (read to its end): files take
//     turns instead of the first ones found keeping every descriptor.
//   - A file renamed out of the globs is remembered (a tombstone: its
//     identity and offset); renamed back, it goes on where it was instead
//     of being shipped again.

// maxTombs bounds the tombstones; the oldest go first.
const (
	maxTombs = 4096
	tombTTL  = 24 * time.Hour
)

// tomb is a file that left the globs while the agent ran.
type tomb struct {
	fp      fingerprint.Fingerprint
	readOff int64
	at      time.Time
}

// closeInactive closes the live files idle for CloseInactive.
func (tl *Tailer) closeInactive() {
	if tl.s.CloseInactive <= 0 {
		return
	}
	for _, t := range tl.files {
		if tl.idle(t) && tl.now.Sub(t.lastData) >= tl.s.CloseInactive {
			tl.log.Debug("closing inactive log file", "file", t.path, "inactive", tl.now.Sub(t.lastData).Round(time.Second))
			tl.closeIdle(t)
		}
	}
}

// closeIdle closes an idle file and lets its sink give back memory.
func (tl *Tailer) closeIdle(t *File) {
	tl.closeFile(t)
	if r, ok := t.sink.(interface{ Release() }); ok {
		r.Release()
	}
}

// idle: a live file open and read to its end, not inside a long line.
func (tl *Tailer) idle(t *File) bool {
	return t.state == stActive && t.f != nil && t.live && t.eof && !t.midLine
}

// room reports whether one more file may be opened, closing the file idle
// longest when the limit is reached. A scan that had to turn a file away
// says so (limitWarning).
func (tl *Tailer) room() bool {
	if tl.s.MaxOpenFiles <= 0 || tl.openFiles < tl.s.MaxOpenFiles {
		return true
	}
	if !tl.evictSorted {
		tl.evictable = tl.evictable[:0]
		for _, t := range tl.files {
			if tl.idle(t) {
				tl.evictable = append(tl.evictable, t)
			}
		}
		sort.Slice(tl.evictable, func(i, j int) bool { return tl.evictable[i].lastData.Before(tl.evictable[j].lastData) })
		tl.evictSorted = true
	}
	for len(tl.evictable) > 0 {
		t := tl.evictable[0]
		tl.evictable = tl.evictable[1:]
		if tl.idle(t) {
			tl.closeIdle(t)
			return true
		}
	}
	tl.blocked++
	return false
}

// limitWarning logs when the open-file limit starts turning files away
// and when it stops, not at every file and scan.
func (tl *Tailer) limitWarning() {
	switch {
	case tl.blocked > 0 && tl.limited == 0:
		tl.log.Warn("open-file limit reached: files wait for a descriptor and take turns; told again when that ends", "max_open_files", tl.s.MaxOpenFiles, "waiting", tl.blocked)
		tl.limited = 1
	case tl.blocked > 0:
		tl.limited++
	case tl.limited > 0:
		tl.log.Info("open-file limit no longer holds files back", "max_open_files", tl.s.MaxOpenFiles, "scans", tl.limited)
		tl.limited = 0
	}
}

// bury remembers a file that left the globs (not deleted: it may come
// back under a name the globs match).
func (tl *Tailer) bury(t *File) {
	if t.fp.N == 0 {
		return
	}
	if len(tl.tombs) >= maxTombs {
		var oldest devIno
		var at time.Time
		for id, tb := range tl.tombs {
			if at.IsZero() || tb.at.Before(at) {
				oldest, at = id, tb.at
			}
		}
		delete(tl.tombs, oldest)
	}
	tl.tombs[t.id] = tomb{fp: t.fp, readOff: t.readOff, at: tl.now}
}

// unbury continues a new file where it was when it left the globs: the
// same device and inode, the same leading bytes, at least as long.
func (tl *Tailer) unbury(n *File) bool {
	tb, ok := tl.tombs[n.id]
	if !ok {
		return false
	}
	delete(tl.tombs, n.id)
	if tl.now.Sub(tb.at) > tombTTL || !tb.fp.Matches(n.head) || n.size < tb.readOff {
		return false // a new file in a reused inode
	}
	tl.log.Debug("log file came back; continuing where it was", "file", n.path, "offset", tb.readOff)
	n.skip(tb.readOff)
	return true
}

// publishUnread counts the bytes this scan saw waiting to be read, for
// the stall check.
func (tl *Tailer) publishUnread() {
	var unread int64
	for i := range tl.cands {
		c := &tl.cands[i]
		t := tl.byID[c.id]
		switch {
		case t == nil:
			if _, refused := tl.refused[c.path]; !refused {
				unread += c.size
			}
		case t.state == stActive, t.state == stNew:
			unread += max(0, c.size-t.readOff)
		}
	}
	tl.unread.Store(unread)
}
