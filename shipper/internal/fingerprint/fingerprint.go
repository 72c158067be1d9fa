// Package fingerprint identifies a file's content by its leading bytes, so
// that the tailer can tell a reused inode from the file that had it, and a
// copytruncate copy from the file it was copied from.
package fingerprint

import (
	"io"
	"os"
)

// Max is how many leading bytes identify a file's content. Every Flink log
// starts with a millisecond timestamp, so 1 KiB tells two files apart.
const Max = 1024

// Fingerprint is FNV-1a 64 of a file's first N bytes.
type Fingerprint struct {
	Hash uint64
	N    int
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// Of is the fingerprint of head, a file's leading bytes.
func Of(head []byte) Fingerprint {
	return Fingerprint{Hash: fnvOffset, N: 0}.Extend(head)
}

// Matches reports whether head (a file's leading bytes) has fingerprint f.
func (f Fingerprint) Matches(head []byte) bool {
	return len(head) >= f.N && Of(head[:f.N]).Hash == f.Hash
}

// Extend continues the fingerprint with the bytes that follow its N.
func (f Fingerprint) Extend(b []byte) Fingerprint {
	h := f.Hash
	if f.N == 0 {
		h = fnvOffset
	}
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return Fingerprint{Hash: h, N: f.N + len(b)}
}

// ReadHead reads up to Max leading bytes of f into buf.
func ReadHead(f *os.File, buf *[Max]byte) ([]byte, error) {
	n, err := f.ReadAt(buf[:], 0)
	if err == io.EOF {
		err = nil
	}
	return buf[:n], err
}
