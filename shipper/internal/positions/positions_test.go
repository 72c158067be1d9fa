package positions

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/flink-agent/flink-agent/shipper/internal/fingerprint"
)

// TestPositionsFiles: the newer valid one of the durable file and the
// acknowledgement file wins; a torn acknowledgement file is ignored; a
// damaged durable file is an error only when nothing else is usable.
func TestPositionsFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "positions.json")
	e := func(off int64) []Entry {
		return []Entry{{Path: "/x.log", Dev: 1, Inode: 2, Fingerprint: fingerprint.Fingerprint{Hash: 0xabc, N: 10}, Offset: off}}
	}
	if got, _, err := Load(path); got != nil || err != nil {
		t.Fatalf("nothing saved: %v %v", got, err)
	}
	w := NewWriter(path, 0)
	defer w.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Write(e(100), true))  // seq 1, durable
	must(w.Write(e(200), false)) // seq 2, ack
	if got, seq, err := Load(path); err != nil || seq != 2 || got[0].Offset != 200 {
		t.Errorf("ack newer: %+v seq %d %v", got, seq, err)
	}
	must(w.Write(e(300), true)) // seq 3, durable
	if got, seq, _ := Load(path); seq != 3 || got[0].Offset != 300 {
		t.Errorf("durable newer: %+v seq %d", got, seq)
	}
	// A shorter acknowledgement written over a longer one is still read
	// by its length.
	must(w.Write(nil, false)) // seq 4
	if got, seq, _ := Load(path); seq != 4 || len(got) != 0 {
		t.Errorf("shorter ack: %+v seq %d", got, seq)
	}
	// Torn acknowledgement (a node crash mid-write): its CRC fails.
	b, _ := os.ReadFile(path + ackSuffix)
	b[40] ^= 0xff
	must(os.WriteFile(path+ackSuffix, b, 0o644))
	if got, seq, _ := Load(path); seq != 3 || got[0].Offset != 300 {
		t.Errorf("torn ack: %+v seq %d", got, seq)
	}
	// Damaged durable file, valid acknowledgement: the acknowledgement.
	w2 := NewWriter(path, 10)
	defer w2.Close()
	must(w2.Write(e(500), false))
	must(os.WriteFile(path, []byte("{not json"), 0o644))
	if got, _, err := Load(path); err != nil || got[0].Offset != 500 {
		t.Errorf("damaged durable: %+v %v", got, err)
	}
	// Both damaged: an error that says so.
	must(os.WriteFile(path+ackSuffix, []byte("garbage"), 0o644))
	if _, _, err := Load(path); !errors.Is(err, ErrCorrupt) {
		t.Errorf("both damaged: %v", err)
	}
}
