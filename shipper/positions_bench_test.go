package shipper

import (
	"path/filepath"
	"testing"
)

// BenchmarkPositionsSave is the cost of the save after every acknowledged
// batch (atomic rename, no fsync), for a pod's usual handful of files.
func BenchmarkPositionsSave(b *testing.B) {
	w := newPositionsWriter(filepath.Join(b.TempDir(), "positions.json"), 0)
	entries := make([]posEntry, 12)
	for i := range entries {
		entries[i] = posEntry{Path: "/opt/flink/log/flink--taskexecutor-0-pod.log", Dev: 2049, Inode: uint64(1000 + i), Fingerprint: "cbf29ce484222325", FPBytes: 1024, Offset: 104857600}
	}
	for i := 0; i < b.N; i++ {
		if err := w.write(entries, false); err != nil {
			b.Fatal(err)
		}
	}
}
