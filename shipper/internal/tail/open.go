package tail

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// errReplaced: the path no longer names the file a scan saw.
var errReplaced = errors.New("replaced since it was listed")

// refusal is a file the tailer will not read, and why.
type refusal struct {
	reason   string
	id       devIno
	detail   string
	attempts int  // how often it was tried
	seen     bool // listed by the current scan
}

func (r *refusal) Error() string { return r.detail }

// open opens path and admits it for reading: the one place where that is
// decided, on the opened descriptor, never on the path (a symlink can be
// flipped between a look at the path and the open).
//
//   - O_NONBLOCK: opening a FIFO never waits for a writer; opening a
//     device has no side effects worth blocking for. fstat of the
//     descriptor then refuses everything but a regular file.
//   - It must be the inode the scan saw (want).
//   - Its real path (what the descriptor refers to) must lie inside the
//     directories the globs name: a symlink to /etc/shadow or to the
//     agent's own credentials is never read; one to a file beside it is.
func (tl *Tailer) open(path string, want devIno) (*os.File, int64, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
	for err == syscall.EINTR {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
	}
	if err != nil {
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			return nil, 0, &refusal{reason: ReasonUnreadable, id: want, detail: err.Error()}
		}
		return nil, 0, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, 0, errReplaced
	}
	id := devIno{dev: uint64(st.Dev), ino: st.Ino}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		syscall.Close(fd)
		return nil, 0, &refusal{reason: ReasonNotRegular, id: id, detail: "not a regular file (" + fileType(st.Mode) + ")"}
	}
	if id != want {
		syscall.Close(fd) // replaced between stat and open; the next scan sees the new one
		return nil, 0, errReplaced
	}
	if resolved, ok := fdPath(fd, path); !ok || !tl.inside(resolved) {
		syscall.Close(fd)
		return nil, 0, &refusal{reason: ReasonOutside, id: id, detail: fmt.Sprintf("its real path %q is outside the log directories %v", resolved, tl.dirs)}
	}
	return os.NewFile(uintptr(fd), path), st.Size, nil
}

// fdPath is the real path of an open descriptor (Linux's /proc), else of
// path with every symlink resolved.
func fdPath(fd int, path string) (string, bool) {
	if p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); err == nil {
		return strings.TrimSuffix(p, " (deleted)"), true
	}
	p, err := filepath.EvalSymlinks(path)
	if err != nil {
		return path, false
	}
	p, err = filepath.Abs(p)
	return p, err == nil
}

// inside reports whether a real path lies in (or below) one of the
// directories the globs name.
func (tl *Tailer) inside(resolved string) bool {
	for _, d := range tl.dirs {
		if resolved == d || strings.HasPrefix(resolved, d) && (strings.HasSuffix(d, "/") || resolved[len(d)] == '/') {
			return true
		}
	}
	return false
}

// globDirs are the real paths of the directories the globs name: a log
// directory that is itself a symlink (a mounted volume) is followed.
func globDirs(globs []string) []string {
	var dirs []string
	add := func(d string) {
		if r, err := filepath.EvalSymlinks(d); err == nil {
			d = r
		}
		if a, err := filepath.Abs(d); err == nil {
			d = a
		}
		for _, x := range dirs {
			if x == d {
				return
			}
		}
		dirs = append(dirs, d)
	}
	for _, g := range globs {
		dir := filepath.Dir(g)
		if !strings.ContainsAny(dir, "*?[") {
			add(dir)
			continue
		}
		ms, _ := filepath.Glob(dir)
		for _, m := range ms {
			add(m)
		}
	}
	return dirs
}

func fileType(mode uint32) string {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO:
		return "FIFO"
	case syscall.S_IFSOCK:
		return "socket"
	case syscall.S_IFCHR:
		return "character device"
	case syscall.S_IFBLK:
		return "block device"
	case syscall.S_IFDIR:
		return "directory"
	case syscall.S_IFLNK:
		return "symlink"
	}
	return "unknown"
}

// refuse tells of a refused file once per path, identity and reason:
// counted and logged when it starts; ended (logged with the number of
// attempts) by admitted or forgetRefused.
func (tl *Tailer) refuse(path string, r *refusal) {
	if old, ok := tl.refused[path]; ok && old.reason == r.reason && old.id == r.id {
		old.attempts++
		old.seen = true
		return
	}
	r.attempts, r.seen = 1, true
	tl.refused[path] = r
	if tl.obs != nil {
		tl.obs.Refused(r.reason)
	}
	if r.reason == ReasonUnreadable {
		tl.log.Warn("cannot read log file; retrying at every scan, told again when that ends", "file", path, "err", r.detail)
		return
	}
	tl.log.Warn("log file refused", "file", path, "reason", r.reason, "why", r.detail)
}

// refusedNow reports whether path, as id, was refused and is still what was
// refused: it is not tried again every scan.
func (tl *Tailer) refusedNow(path string, id devIno) bool {
	r, ok := tl.refused[path]
	if ok && r.id == id && r.reason != ReasonUnreadable {
		r.attempts++
		r.seen = true
		return true
	}
	return false
}

// admitted ends an unreadable path's refusal: it is read now. Other
// refusals are remembered while the path is listed: a symlink flipped
// between a file and a FIFO is told of once, not at every flip.
func (tl *Tailer) admitted(path string) {
	if r, ok := tl.refused[path]; ok && r.reason == ReasonUnreadable {
		delete(tl.refused, path)
		tl.refusalEnded(path, r, "readable now")
	}
}

// forgetRefused ends the refusals of paths the last scan did not list.
func (tl *Tailer) forgetRefused() {
	for p, r := range tl.refused {
		if !r.seen {
			delete(tl.refused, p)
			tl.refusalEnded(p, r, "gone")
			continue
		}
		r.seen = false
	}
}

func (tl *Tailer) refusalEnded(path string, r *refusal, how string) {
	if r.reason == ReasonUnreadable {
		tl.log.Info("log file no longer unreadable", "file", path, "now", how, "failed_attempts", r.attempts)
	}
}

// closeFile closes t's descriptor and drops its unfinished line: a file
// closed while reading goes on from that line's start when reopened.
func (tl *Tailer) closeFile(t *File) {
	if t.f != nil {
		t.close()
		tl.openFiles--
	}
	if len(t.partial) > 0 {
		t.readOff -= int64(len(t.partial))
		t.partial = nil
	}
}
