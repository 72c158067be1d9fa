package shipper

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

// loadPositions reads the positions file. A missing file is (nil, nil): the
// first start.
func loadPositions(path string) ([]posEntry, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("logs.positions_file: %w", err)
	}
	var pf posFile
	if err := json.Unmarshal(b, &pf); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errPositionsCorrupt, path, err)
	}
	if pf.Version != positionsVersion {
		return nil, fmt.Errorf("%w: %s: version %d, want %d", errPositionsCorrupt, path, pf.Version, positionsVersion)
	}
	for _, e := range pf.Files {
		if _, err := e.fp(); err != nil || e.Offset < 0 {
			return nil, fmt.Errorf("%w: %s: entry for %s: %v", errPositionsCorrupt, path, e.Path, err)
		}
	}
	if pf.Files == nil {
		pf.Files = []posEntry{}
	}
	return pf.Files, nil
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

// positionsWriter writes the positions file atomically: a temporary file
// in the same directory, renamed over the old one, so that a reader (or a
// restart after SIGKILL) sees the old or the new file, never a mix. With
// durable, the data and the rename are fsynced too, so that a node crash
// keeps them; without, a process kill still does (the page cache survives
// it) and the write costs microseconds, cheap enough after every batch.
type positionsWriter struct {
	path string
	tmp  string
	buf  bytes.Buffer
}

func newPositionsWriter(path string) *positionsWriter {
	return &positionsWriter{path: path, tmp: path + ".tmp"}
}

func (w *positionsWriter) write(entries []posEntry, durable bool) error {
	w.buf.Reset()
	enc := json.NewEncoder(&w.buf)
	enc.SetIndent("", " ")
	if err := enc.Encode(posFile{Version: positionsVersion, SavedAt: time.Now().UTC(), Files: entries}); err != nil {
		return err
	}
	f, err := os.OpenFile(w.tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(w.buf.Bytes()); err != nil {
		f.Close()
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(w.tmp, w.path); err != nil {
		return err
	}
	if durable {
		if d, err := os.Open(filepath.Dir(w.path)); err == nil {
			err = d.Sync()
			d.Close()
			return err
		}
	}
	return nil
}
