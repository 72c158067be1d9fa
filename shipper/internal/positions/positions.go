// Package positions keeps, per log file, the offset up to which Loki has
// acknowledged its events: Ack tracks it in memory between the reader and
// the sender, Writer saves it (a durable positions file and an
// acknowledgement file beside it), Load reads it back at start.
//
// The shipper's guarantee rests on one rule: a file's saved offset moves
// only when Loki has acknowledged every event before it.
package positions

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/flink-agent/flink-agent/shipper/internal/fingerprint"
)

// Entry is one file: its identity and the offset up to which Loki has
// acknowledged its events.
type Entry struct {
	Path        string
	Dev, Inode  uint64
	Fingerprint fingerprint.Fingerprint
	Offset      int64
}

// version is the positions file format.
const version = 1

// fileEntry is Entry as the file stores it.
type fileEntry struct {
	Path        string `json:"path"`
	Dev         uint64 `json:"dev"`
	Inode       uint64 `json:"inode"`
	Fingerprint string `json:"fingerprint"` // FNV-1a 64 of the first FingerprintBytes bytes, hex
	FPBytes     int    `json:"fingerprint_bytes"`
	Offset      int64  `json:"offset"`
}

type file struct {
	Version int         `json:"version"`
	Seq     uint64      `json:"seq"` // increases with every save, of either file
	SavedAt time.Time   `json:"saved_at"`
	Files   []fileEntry `json:"files"`
}

func (e fileEntry) entry() (Entry, error) {
	h, err := strconv.ParseUint(e.Fingerprint, 16, 64)
	if err != nil || e.FPBytes < 0 || e.FPBytes > fingerprint.Max {
		return Entry{}, fmt.Errorf("bad fingerprint %q/%d", e.Fingerprint, e.FPBytes)
	}
	if e.Offset < 0 {
		return Entry{}, fmt.Errorf("negative offset %d", e.Offset)
	}
	return Entry{Path: e.Path, Dev: e.Dev, Inode: e.Inode, Fingerprint: fingerprint.Fingerprint{Hash: h, N: e.FPBytes}, Offset: e.Offset}, nil
}

func fileEntryOf(e Entry) fileEntry {
	return fileEntry{Path: e.Path, Dev: e.Dev, Inode: e.Inode,
		Fingerprint: strconv.FormatUint(e.Fingerprint.Hash, 16), FPBytes: e.Fingerprint.N, Offset: e.Offset}
}

// ErrCorrupt wraps a positions file that exists but cannot be used.
var ErrCorrupt = errors.New("positions file is unreadable")

// ackSuffix names the file saved after every acknowledged batch, beside
// the positions file.
const ackSuffix = ".ack"

// Load reads the positions: the newer of the durable positions file and
// its acknowledgement file (see Writer), and the sequence number to
// continue from. Neither existing is (nil, 0, nil): the first start. A
// damaged acknowledgement file is ignored (the durable file is older: more
// is sent again, nothing is skipped); a damaged positions file is
// ErrCorrupt.
func Load(path string) ([]Entry, uint64, error) {
	var durable, ack []Entry
	var dseq, aseq uint64
	var corrupt error
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, 0, fmt.Errorf("logs.positions_file: %w", err)
	default:
		if durable, dseq, err = decode(b); err != nil {
			corrupt = fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
		}
	}
	if ab, err := os.ReadFile(path + ackSuffix); err == nil {
		if body, ok := unframe(ab); ok {
			if ack, aseq, err = decode(body); err != nil {
				ack = nil
			}
		}
	}
	switch {
	case ack != nil && (durable == nil || aseq > dseq):
		return ack, aseq, nil
	case durable != nil:
		return durable, dseq, nil
	}
	return nil, 0, corrupt
}

// decode returns the entries of a positions file, never nil when it is
// valid.
func decode(b []byte) ([]Entry, uint64, error) {
	var pf file
	if err := json.Unmarshal(b, &pf); err != nil {
		return nil, 0, err
	}
	if pf.Version != version {
		return nil, 0, fmt.Errorf("version %d, want %d", pf.Version, version)
	}
	entries := make([]Entry, 0, len(pf.Files))
	for _, fe := range pf.Files {
		e, err := fe.entry()
		if err != nil {
			return nil, 0, fmt.Errorf("entry for %s: %v", fe.Path, err)
		}
		entries = append(entries, e)
	}
	return entries, pf.Seq, nil
}

// CheckDir fails fast when the positions file cannot be written.
func CheckDir(path string) error {
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
