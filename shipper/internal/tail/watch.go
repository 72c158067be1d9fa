package tail

import (
	"errors"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// watcher turns fsnotify events on the log directories into wake-ups of
// the reader: a write wakes it to read, a create, rename or remove also
// asks for a scan. Without events (some network and overlay volumes do not
// deliver them) the poll interval still finds everything.
type watcher struct {
	tl      *Tailer
	w       *fsnotify.Watcher
	watched map[string]bool
	done    chan struct{}
}

func (tl *Tailer) startWatcher() *watcher {
	w := &watcher{tl: tl, watched: map[string]bool{}, done: make(chan struct{})}
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
	if w.w != nil {
		w.w.Close()
	}
	<-w.done
}
