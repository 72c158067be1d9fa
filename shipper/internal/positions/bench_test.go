package positions

import (
	"path/filepath"
	"testing"

	"github.com/flink-agent/flink-agent/shipper/internal/fingerprint"
)

// BenchmarkPositionsSave is the cost of the save after every acknowledged
// batch (atomic rename, no fsync), for a pod's usual handful of files.
func BenchmarkPositionsSave(b *testing.B) {
	w := NewWriter(filepath.Join(b.TempDir(), "positions.json"), 0)
	entries := make([]Entry, 12)
	for i := range entries {
		entries[i] = Entry{Path: "/opt/flink/log/flink--taskexecutor-0-pod.log", Dev: 2049, Inode: uint64(1000 + i),
			Fingerprint: fingerprint.Fingerprint{Hash: 0xcbf29ce484222325, N: 1024}, Offset: 104857600}
	}
	for i := 0; i < b.N; i++ {
		if err := w.Write(entries, false); err != nil {
			b.Fatal(err)
		}
	}
}
