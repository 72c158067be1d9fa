package tail

import (
	"os"
	"strconv"
	"syscall"
)

// devIno identifies a file on a host.
type devIno struct{ dev, ino uint64 }

func statID(fi os.FileInfo) (devIno, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return devIno{}, false
	}
	return devIno{dev: uint64(st.Dev), ino: st.Ino}, true
}

// fileSize is an open file's size by fstat, without the allocation of
// os.File.Stat: the reader asks at the end of every read.
func fileSize(f *os.File) (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}

func nlink(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// splitSuffix splits "x.log.3" into ("x.log", 3); n is 0 without a suffix.
func splitSuffix(p string) (string, int) {
	i := len(p) - 1
	for i >= 0 && isDigit(p[i]) {
		i--
	}
	if i <= 0 || i == len(p)-1 || p[i] != '.' || len(p)-1-i > 6 {
		return p, 0
	}
	n, _ := strconv.Atoi(p[i+1:])
	if n == 0 {
		return p, 0
	}
	return p[:i], n
}

func isDigit(c byte) bool { return c-'0' < 10 }
