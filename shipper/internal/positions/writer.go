package positions

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unicode/utf8"
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
	buf  []byte
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
	w.buf = append(w.buf[:0], "0000000000000000000000\n"...) // frame header, filled in by frame
	w.buf = appendFile(w.buf, w.seq, time.Now().UTC(), w.fes)
	return w.buf
}

// frame fills the 23-byte header "crc32hex length\n" (padded) in b.
func frame(b []byte) []byte {
	body := b[23:]
	var hb [22]byte
	h := strconv.AppendUint(hb[:0], uint64(crc32.ChecksumIEEE(body))|1<<32, 16)[1:] // %08x
	h = append(h, ' ')
	h = strconv.AppendInt(h, int64(len(body)), 10)
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

// appendFile appends the positions file: exactly what encoding/json's
// Encoder with SetIndent("", " ") writes for file{…} (TestEncodeMatchesJSON,
// FuzzDecode), without its reflection. It runs after every acknowledged
// batch; encoding/json kept a dozen otherwise idle pages of code and type
// data resident in a sidecar that has little else to run.
func appendFile(b []byte, seq uint64, savedAt time.Time, fes []fileEntry) []byte {
	b = append(b, "{\n \"version\": "...)
	b = strconv.AppendInt(b, version, 10)
	b = append(b, ",\n \"seq\": "...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ",\n \"saved_at\": \""...)
	b = savedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, "\",\n \"files\": "...)
	if fes == nil {
		b = append(b, "null"...)
	} else if len(fes) == 0 {
		b = append(b, "[]"...)
	} else {
		b = append(b, '[')
		for i, fe := range fes {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, "\n  {\n   \"path\": "...)
			b = appendJSONString(b, fe.Path)
			b = append(b, ",\n   \"dev\": "...)
			b = strconv.AppendUint(b, fe.Dev, 10)
			b = append(b, ",\n   \"inode\": "...)
			b = strconv.AppendUint(b, fe.Inode, 10)
			b = append(b, ",\n   \"fingerprint\": "...)
			b = appendJSONString(b, fe.Fingerprint)
			b = append(b, ",\n   \"fingerprint_bytes\": "...)
			b = strconv.AppendInt(b, int64(fe.FPBytes), 10)
			b = append(b, ",\n   \"offset\": "...)
			b = strconv.AppendInt(b, fe.Offset, 10)
			b = append(b, "\n  }"...)
		}
		b = append(b, "\n ]"...)
	}
	return append(b, "\n}\n"...)
}

// appendJSONString quotes s as encoding/json does by default: HTML-safe,
// invalid UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
