package shipper

import (
	"io"
	"os"
	"strconv"
	"syscall"
)

// fpMax is how many leading bytes identify a file's content. Every Flink
// log starts with a millisecond timestamp, so 1 KiB tells two files apart,
// including an inode reused after a delete and a copytruncate copy from
// the file it was copied from.
const fpMax = 1024

// fingerprint is FNV-1a 64 of a file's first n bytes.
type fingerprint struct {
	hash uint64
	n    int
}

func (f fingerprint) hex() string { return strconv.FormatUint(f.hash, 16) }

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv64a(b []byte) uint64 {
	h := uint64(fnvOffset)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// readHead reads up to fpMax leading bytes of f into buf.
func readHead(f *os.File, buf *[fpMax]byte) ([]byte, error) {
	n, err := f.ReadAt(buf[:], 0)
	if err == io.EOF {
		err = nil
	}
	return buf[:n], err
}

// matches reports whether head (a file's leading bytes) has fingerprint fp.
func (f fingerprint) matches(head []byte) bool {
	return len(head) >= f.n && fnv64a(head[:f.n]) == f.hash
}

// extend continues the fingerprint with the bytes that follow its n.
func (f fingerprint) extend(b []byte) fingerprint {
	h := f.hash
	if f.n == 0 {
		h = fnvOffset
	}
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return fingerprint{hash: h, n: f.n + len(b)}
}

func fingerprintOf(head []byte) fingerprint {
	return fingerprint{hash: fnv64a(head), n: len(head)}
}

// devIno identifies a file on a host.
type devIno struct{ dev, ino uint64 }

func statID(fi os.FileInfo) (devIno, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return devIno{}, false
	}
	return devIno{dev: uint64(st.Dev), ino: st.Ino}, true
}

func nlink(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}
