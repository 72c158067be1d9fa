package positions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"time"
)

// Writer keeps the positions in two files.
//
// The positions file proper is written atomically and durably: a temporary
// file in the same directory, fsynced, renamed over the old one, and the
// directory fsynced — every logs.sync_period and at shutdown. A node crash
// keeps it.
//
// After every acknowledged batch, the acknowledgement file (positions file
// + ".ack") is overwritten in place with one pwrite: a header with the
// length and CRC-32 of the JSON that follows. No rename, so no inode to
// create and no ext4 replace-by-rename flush: microseconds instead of a
// millisecond, cheap enough for every batch. A process kill cannot undo a
// write that returned (the page cache survives it), so a SIGKILL re-sends
// at most the batch in flight. A torn or stale acknowledgement file (node
// crash) fails its CRC or is older than the durable file, and the durable
// file is used.
type Writer struct {
	path string
	tmp  string
	seq  uint64
	buf  bytes.Buffer
	fes  []fileEntry
	ack  *os.File
}

// NewWriter writes path (and path + ackSuffix), numbering saves after seq
// (from Load).
func NewWriter(path string, seq uint64) *Writer {
	return &Writer{path: path, tmp: path + ".tmp", seq: seq}
}

func (w *Writer) encode(entries []Entry) []byte {
	w.seq++
	w.fes = w.fes[:0]
	for _, e := range entries {
		w.fes = append(w.fes, fileEntryOf(e))
	}
	w.buf.Reset()
	w.buf.WriteString("0000000000000000000000\n") // frame header, filled in by frame
	enc := json.NewEncoder(&w.buf)
	enc.SetIndent("", " ")
	_ = enc.Encode(file{Version: version, Seq: w.seq, SavedAt: time.Now().UTC(), Files: w.fes})
	return w.buf.Bytes()
}

// frame fills the 23-byte header "crc32hex length\n" (padded) in b.
func frame(b []byte) []byte {
	body := b[23:]
	h := fmt.Appendf(nil, "%08x %d", crc32.ChecksumIEEE(body), len(body))
	copy(b, h)
	for i := len(h); i < 22; i++ {
		b[i] = ' '
	}
	return b
}

func unframe(b []byte) ([]byte, bool) {
	if len(b) < 23 || b[22] != '\n' {
		return nil, false
	}
	var crc uint32
	var n int
	if _, err := fmt.Sscanf(string(b[:22]), "%08x %d", &crc, &n); err != nil || n < 0 || n > len(b)-23 { // not 23+n: it can overflow
		return nil, false
	}
	body := b[23 : 23+n]
	return body, crc32.ChecksumIEEE(body) == crc
}

// Write saves entries: durably into the positions file, or else into the
// acknowledgement file.
func (w *Writer) Write(entries []Entry, durable bool) error {
	b := w.encode(entries)
	if !durable {
		if w.ack == nil {
			f, err := os.OpenFile(w.path+ackSuffix, os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				return err
			}
			w.ack = f
		}
		_, err := w.ack.WriteAt(frame(b), 0)
		return err
	}
	body := b[23:]
	f, err := os.OpenFile(w.tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(w.tmp, w.path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(w.path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close releases the acknowledgement file.
func (w *Writer) Close() {
	if w.ack != nil {
		w.ack.Close()
		w.ack = nil
	}
}
