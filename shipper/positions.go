package shipper

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// positionsVersion is the positions file format.
const positionsVersion = 1

// posEntry is one file in the positions file: its identity and the offset
// up to which Loki has acknowledged its events.
type posEntry struct {
	Path        string `json:"path"`
	Dev         uint64 `json:"dev"`
	Inode       uint64 `json:"inode"`
	Fingerprint string `json:"fingerprint"` // FNV-1a 64 of the first FingerprintBytes bytes, hex
	FPBytes     int    `json:"fingerprint_bytes"`
	Offset      int64  `json:"offset"`
}

type posFile struct {
	Version int        `json:"version"`
	Seq     uint64     `json:"seq"` // increases with every save, of either file
	SavedAt time.Time  `json:"saved_at"`
	Files   []posEntry `json:"files"`
}

func (e posEntry) fp() (fingerprint, error) {
	h, err := strconv.ParseUint(e.Fingerprint, 16, 64)
	if err != nil || e.FPBytes < 0 || e.FPBytes > fpMax {
		return fingerprint{}, fmt.Errorf("bad fingerprint %q/%d", e.Fingerprint, e.FPBytes)
	}
	return fingerprint{hash: h, n: e.FPBytes}, nil
}

// errPositionsCorrupt wraps a positions file that exists but cannot be used.
var errPositionsCorrupt = errors.New("positions file is unreadable")

// ackSuffix names the file saved after every acknowledged batch, beside
// the positions file.
const ackSuffix = ".ack"

// loadPositions reads the positions: the newer of the durable positions
// file and its acknowledgement file (see positionsWriter). Neither
// existing is (nil, 0, nil): the first start. A damaged acknowledgement
// file is ignored (the durable file is older: more is sent again, nothing
// is skipped); a damaged positions file is errPositionsCorrupt.
func loadPositions(path string) ([]posEntry, uint64, error) {
	var durable, ack *posFile
	var corrupt error
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, 0, fmt.Errorf("logs.positions_file: %w", err)
	default:
		var pf posFile
		if err := decodePositions(b, &pf); err != nil {
			corrupt = fmt.Errorf("%w: %s: %v", errPositionsCorrupt, path, err)
		} else {
			durable = &pf
		}
	}
	if ab, err := os.ReadFile(path + ackSuffix); err == nil {
		var pf posFile
		if body, ok := unframe(ab); ok && decodePositions(body, &pf) == nil {
			ack = &pf
		}
	}
	best := durable
	if ack != nil && (best == nil || ack.Seq > best.Seq) {
		best = ack
	}
	if best == nil {
		return nil, 0, corrupt
	}
	if best.Files == nil {
		best.Files = []posEntry{}
	}
	return best.Files, best.Seq, nil
}

func decodePositions(b []byte, pf *posFile) error {
	if err := json.Unmarshal(b, pf); err != nil {
		return err
	}
	if pf.Version != positionsVersion {
		return fmt.Errorf("version %d, want %d", pf.Version, positionsVersion)
	}
	for _, e := range pf.Files {
		if _, err := e.fp(); err != nil || e.Offset < 0 {
			return fmt.Errorf("entry for %s: %v", e.Path, err)
		}
	}
	return nil
}

// checkPositionsDir fails fast when the positions file cannot be written.
func checkPositionsDir(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("logs.positions_file: %w", err)
	}
	f, err := os.CreateTemp(dir, ".positions-probe-*")
	if err != nil {
		return fmt.Errorf("logs.positions_file: directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// positionsWriter keeps the positions in two files.
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
type positionsWriter struct {
	path string
	tmp  string
	seq  uint64
	buf  bytes.Buffer
	ack  *os.File
}

func newPositionsWriter(path string, seq uint64) *positionsWriter {
	return &positionsWriter{path: path, tmp: path + ".tmp", seq: seq}
}

func (w *positionsWriter) encode(entries []posEntry) []byte {
	w.seq++
	w.buf.Reset()
	w.buf.WriteString("0000000000000000000000\n") // frame header, filled in by frame
	enc := json.NewEncoder(&w.buf)
	enc.SetIndent("", " ")
	_ = enc.Encode(posFile{Version: positionsVersion, Seq: w.seq, SavedAt: time.Now().UTC(), Files: entries})
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
	if _, err := fmt.Sscanf(string(b[:22]), "%08x %d", &crc, &n); err != nil || n < 0 || 23+n > len(b) {
		return nil, false
	}
	body := b[23 : 23+n]
	return body, crc32.ChecksumIEEE(body) == crc
}

func (w *positionsWriter) write(entries []posEntry, durable bool) error {
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

func (w *positionsWriter) close() {
	if w.ack != nil {
		w.ack.Close()
		w.ack = nil
	}
}
