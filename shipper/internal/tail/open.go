package tail

import (
	"errors"
	"os"
)

// errReplaced: the path no longer names the file a scan saw.
var errReplaced = errors.New("replaced since it was listed")

// open opens path and checks that what it opened is the file a scan saw
// (want): the one place where a file is admitted for reading, by fstat of
// the descriptor, not by the path's stat, which a rename can change in
// between.
func (tl *Tailer) open(path string, want devIno) (*os.File, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, errReplaced
	}
	if id, _ := statID(fi); id != want {
		f.Close() // replaced between stat and open; the next scan sees the new one
		return nil, nil, errReplaced
	}
	return f, fi, nil
}

// closeFile closes t's descriptor and drops its read buffer.
func (tl *Tailer) closeFile(t *File) {
	if t.f != nil {
		t.close()
		tl.openFiles--
	}
	t.buf = nil
}
