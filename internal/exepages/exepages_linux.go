package exepages

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

func release() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	var total int64
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		start, end, ok := readOnlyMapping(sc.Bytes(), exe)
		if !ok {
			continue
		}
		// MADV_DONTNEED on a private file mapping that was never written
		// drops the page table entries only: the next access maps the
		// page cache's copy again.
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, start, end-start, syscall.MADV_DONTNEED); e != 0 {
			return total, fmt.Errorf("madvise %#x-%#x: %w", start, end, e)
		}
		total += int64(end - start)
	}
	return total, sc.Err()
}

// readOnlyMapping parses a /proc/self/maps line ("start-end perms offset
// dev inode path") and reports the range of a mapping of path that is
// neither writable nor shared.
func readOnlyMapping(line []byte, path string) (start, end uintptr, ok bool) {
	f := bytes.Fields(line)
	if len(f) < 6 || !bytes.HasSuffix(line, []byte(" "+path)) || !bytes.HasPrefix(f[5], []byte("/")) {
		return 0, 0, false
	}
	perms := f[1]
	if len(perms) != 4 || perms[0] != 'r' || perms[1] != '-' || perms[3] != 'p' {
		return 0, 0, false
	}
	lo, hi, found := bytes.Cut(f[0], []byte("-"))
	if !found {
		return 0, 0, false
	}
	s, err1 := strconv.ParseUint(string(lo), 16, 64)
	e, err2 := strconv.ParseUint(string(hi), 16, 64)
	if err1 != nil || err2 != nil || e <= s {
		return 0, 0, false
	}
	return uintptr(s), uintptr(e), true
}
