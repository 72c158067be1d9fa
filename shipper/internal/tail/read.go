package tail

import (
	"bytes"
	"io"
	"time"

	"github.com/flink-agent/flink-agent/shipper/internal/fingerprint"
)

// ReadRound reads one file of each group: the oldest rotated (or copied,
// or deleted) file still being finished, else the live file. Older data
// goes first, and the live file is never held up for long because rotated
// files end. It reports whether anything was read; an error is a sink's
// (the reader stopping). A round that read something, or found nothing
// left to read, is progress for the stall check.
func (tl *Tailer) ReadRound(now time.Time) (bool, error) {
	tl.now = now
	clear(tl.groupBusy)
	progress, more := false, false
	files := tl.files
	for pass := 0; pass < 2; pass++ {
		for _, t := range files {
			if t.state != stActive || t.live != (pass == 1) {
				continue
			}
			if tl.groupBusy[t.g.id] {
				more = more || !t.eof
				continue
			}
			tl.groupBusy[t.g.id] = true
			n, err := tl.readFile(t)
			if n > 0 {
				progress = true
			}
			if err != nil {
				return progress, err
			}
			more = more || (t.f != nil && !t.eof)
		}
	}
	if progress || !more {
		tl.progress.Store(now.UnixNano())
	}
	tl.more = more
	return progress, nil
}

// More reports whether the last round left bytes to read (a file stopped
// at its share of the round, another file of a group waits): reading on
// at once pays; otherwise the next notification or scan says when.
func (tl *Tailer) More() bool { return tl.more }

func (tl *Tailer) readFile(t *File) (int, error) {
	if t.f == nil {
		return 0, nil // closed while idle: a scan reopens it when it grows
	}
	if t.eof && t.live {
		// Read to its end last time: its size says whether it grew
		// (one fstat instead of a read that finds nothing and an fstat,
		// for every file in every round).
		if size, err := fileSize(t.f); err == nil && size == t.readOff {
			tl.readOK(t)
			return 0, nil
		}
	}
	buf := tl.buf
	total := 0
	for total < maxPerRound {
		off := copy(buf, t.partial)
		n, err := t.f.ReadAt(buf[off:], t.readOff)
		if n > 0 {
			// Was the file truncated and written again before this read?
			// Then its leading bytes changed, and what was read belongs
			// to new content at an old offset: drop it and let a scan
			// sort the file out. Checking after the read closes the race
			// a check before it would leave open.
			// The fingerprint grows with what is read, up to its maximum:
			// a truncation must find the copy by the content we read.
			fp := t.fp
			if end := t.readOff + int64(n); fp.N < fingerprint.Max && t.readOff <= int64(fp.N) && end > int64(fp.N) {
				d := buf[off : off+n]
				fp = fp.Extend(d[fp.N-int(t.readOff) : min(int64(n), fingerprint.Max-t.readOff)])
			}
			var hb [fingerprint.Max]byte
			head, herr := fingerprint.ReadHead(t.f, &hb)
			if herr != nil || !fp.Matches(head) {
				tl.scanWanted.Store(true)
				return total, nil
			}
			if fp != t.fp {
				tl.mu.Lock()
				t.fp = fp
				tl.mu.Unlock()
			}
			total += n
			tl.bytesRead += int64(n)
			t.lastData, t.eof = tl.now, false
			if err := tl.consume(t, buf[:off+n], n); err != nil {
				return total, err
			}
			if t.state != stActive {
				return total, nil
			}
			if t.live && off+n < len(buf) {
				// A short read: the file ended there a moment ago. What
				// is written next is announced by a notification (or
				// found by a scan); reading again now would mostly find
				// nothing, or chase the writer line by line.
				tl.readOK(t)
				t.eof = true
				return total, nil
			}
			continue
		}
		if err != nil && err != io.EOF {
			tl.warnRead(t, err)
			return total, nil
		}
		// At the end. Truncated (copytruncate, perhaps renamed since)?
		if size, err := fileSize(t.f); err == nil && size < t.readOff {
			tl.scanWanted.Store(true)
			return total, nil
		}
		tl.readOK(t)
		if !t.live {
			// Rotated, deleted or a copy: nothing more will be written.
			tl.finish(t)
			return total, nil
		}
		t.eof = true
		return total, nil
	}
	return total, nil
}

// consume splits data (t's unfinished line, then the n bytes just read)
// into lines; what is left unfinished is kept in t.partial.
func (tl *Tailer) consume(t *File, data []byte, n int) error {
	base := t.readOff - int64(len(t.partial))
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
		if err := t.sink.Line(line, base+int64(pos), join); err != nil {
			// Stopping: leave the rest unread (it is not acknowledged).
			t.partial = t.partial[:0]
			return err
		}
	}
	rest := data[pos:]
	if len(rest) == len(tl.buf) {
		// A line longer than the buffer: take this piece now.
		join := t.midLine
		t.midLine = true
		t.partial = t.partial[:0]
		return t.sink.Line(rest, base+int64(len(data)), join)
	}
	// Usually nothing, or a few bytes: the file's own copy, small.
	if cap(t.partial) < len(rest) || cap(t.partial) > 4*len(rest)+64 {
		t.partial = make([]byte, len(rest), len(rest)+len(rest)/4)
	}
	t.partial = t.partial[:len(rest)]
	copy(t.partial, rest)
	return nil
}

// FlushIdle completes the pending events of files no data has come from
// for idle (logs.multiline.idle_timeout); it returns the earliest time
// another one becomes due.
func (tl *Tailer) FlushIdle(now time.Time, idle time.Duration) (time.Time, bool) {
	var next time.Time
	found := false
	for _, t := range tl.files {
		if t.midLine || t.state != stActive || !t.sink.Pending() {
			continue
		}
		due := t.lastData.Add(idle)
		if !now.Before(due) {
			if err := t.sink.Flush(); err != nil {
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
