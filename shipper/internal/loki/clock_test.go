package loki

import "testing"

func TestStreamClock(t *testing.T) {
	const ms = int64(1e6)
	var c streamClock
	// Another thread's later millisecond between two events of the same
	// millisecond must not make the second repeat the first one's time.
	in := []int64{10 * ms, 10 * ms, 11 * ms, 10 * ms, 11 * ms, 12 * ms, 12 * ms}
	want := []int64{10 * ms, 10*ms + 1, 11 * ms, 10*ms + 2, 11*ms + 1, 12 * ms, 12*ms + 1}
	for i, ts := range in {
		if got := c.stamp(ts); got != want[i] {
			t.Errorf("event %d at %d: stamp %d, want %d", i, ts, got, want[i])
		}
	}
	// Milliseconds further back than the ring are forgotten; the ring
	// never gives one time twice while it remembers the millisecond.
	seen := map[int64]bool{}
	for r := 0; r < 3; r++ {
		for i := int64(0); i < clockSlots; i++ {
			got := c.stamp((100 + i) * ms)
			if seen[got] {
				t.Fatalf("time %d given twice", got)
			}
			seen[got] = true
		}
	}
	if got := c.stamp(10 * ms); got != 10*ms {
		t.Errorf("forgotten millisecond: stamp %d, want %d", got, 10*ms)
	}
}
