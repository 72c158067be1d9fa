package tail

import (
	"errors"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watcher turns fsnotify events on the log directories into wake-ups of
// the reader: a write wakes it to read, a create, rename or remove also
// asks for a scan. Without events (some network and overlay volumes do not
// deliver them) the poll interval still finds everything.
//
// Wake-ups are coalesced: after one, the watcher takes no event for
// Settings.Cadence. fsnotify's reader then waits to hand over its event,
// and meanwhile the kernel merges the identical write events that follow
// (inotify merges an event equal to the last one queued): while a file is
// written a thousand times a second the reader wakes some ten times,
// and a line written after a quiet spell is read at once.
type watcher struct {
	tl      *Tailer
	w       *fsnotify.Watcher
	watched map[string]bool
	closing chan struct{}
	done    chan struct{}
}

func (tl *Tailer) startWatcher() *watcher {
	w := &watcher{tl: tl, watched: map[string]bool{}, closing: make(chan struct{}), done: make(chan struct{})}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		tl.log.Warn("file notifications unavailable; polling only", "err", err, "poll_interval", tl.poll)
		close(w.done)
		return w
	}
	w.w = fw
	go w.loop()
	return w
}

func (w *watcher) loop() {
	defer close(w.done)
	loggedErr := false
	pause := time.NewTimer(time.Hour)
	pause.Stop()
	for {
		select {
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			if ev.Op&(fsnotify.Create|fsnotify.Remove|fsnotify.Rename) != 0 {
				w.tl.scanWanted.Store(true)
			}
			w.tl.signal()
			if w.tl.s.Cadence > 0 {
				pause.Reset(w.tl.s.Cadence)
				select {
				case <-pause.C:
				case <-w.closing:
					return
				}
			}
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			// Lost events: a scan catches up.
			w.tl.scanWanted.Store(true)
			w.tl.signal()
			if !loggedErr || !errors.Is(err, fsnotify.ErrEventOverflow) {
				loggedErr = true
				w.tl.log.Warn("file notification error; relying on scans", "err", err)
			}
		}
	}
}

// ensure watches the directories of the globs, adding those that appeared
// since the last call.
func (w *watcher) ensure(globs []string) {
	if w.w == nil {
		return
	}
	for _, g := range globs {
		dir := filepath.Dir(g)
		dirs := []string{dir}
		if strings.ContainsAny(dir, "*?[") {
			dirs, _ = filepath.Glob(dir)
		}
		for _, d := range dirs {
			if w.watched[d] {
				continue
			}
			if err := w.w.Add(d); err == nil {
				w.watched[d] = true
			}
		}
	}
}

func (w *watcher) close() {
	close(w.closing)
	if w.w != nil {
		w.w.Close()
	}
	<-w.done
}
