package tail

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lines records what a file's Sink receives; it acknowledges each line at
// once, as the shipper does without Loki.
type lines struct {
	f    *File
	got  *[]string
	ends *[]int64
}

func (l *lines) Line(line []byte, end int64, join bool) error {
	*l.got = append(*l.got, fmt.Sprintf("%s:%s", filepath.Base(l.f.GroupPath()), line))
	*l.ends = append(*l.ends, end)
	l.f.Ack.Hand(end)
	l.f.Ack.Commit(end)
	return nil
}
func (l *lines) Pending() bool { return false }
func (l *lines) Flush() error  { return nil }

type rig struct {
	t    *testing.T
	dir  string
	tl   *Tailer
	got  []string
	ends []int64
	now  time.Time
}

func newRig(t *testing.T, firstStart bool) *rig {
	r := &rig{t: t, dir: t.TempDir(), now: time.Now()}
	r.tl = New(Settings{Paths: []string{filepath.Join(r.dir, "*.log")}, PollInterval: time.Second}, nil, firstStart,
		func(f *File) Sink { return &lines{f: f, got: &r.got, ends: &r.ends} }, nil, slog.New(slog.DiscardHandler))
	t.Cleanup(r.tl.Close)
	return r
}

func (r *rig) write(name, s string) {
	f, err := os.OpenFile(filepath.Join(r.dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		r.t.Fatal(err)
	}
}

// round is a few turns of the reader's loop: scans (two, as a file must
// be missing from two to be gone) and reads until nothing is left.
func (r *rig) round() {
	r.t.Helper()
	for i := 0; i < 2; i++ {
		r.now = r.now.Add(2 * time.Second) // past settleTime
		r.tl.Scan(r.now)
		for {
			progress, err := r.tl.ReadRound(r.now)
			if err != nil {
				r.t.Fatal(err)
			}
			if !progress {
				break
			}
		}
	}
}

func (r *rig) want(lines ...string) {
	r.t.Helper()
	if strings.Join(r.got, "|") != strings.Join(lines, "|") {
		r.t.Errorf("got  %q\nwant %q", r.got, lines)
	}
	r.got, r.ends = nil, nil
}

// TestTailLinesAndOffsets: lines without their newline ("\r\n" too), each
// with the offset after it; a line without a newline waits for one.
func TestTailLinesAndOffsets(t *testing.T) {
	r := newRig(t, true)
	r.write("a.log", "one\r\ntwo\nthr")
	r.round()
	if want := []int64{5, 9}; fmt.Sprint(r.ends) != fmt.Sprint(want) {
		t.Errorf("ends %v, want %v", r.ends, want)
	}
	r.want("a.log:one", "a.log:two")
	r.write("a.log", "ee\n")
	r.round()
	r.want("a.log:three")
	var saved []string
	for _, e := range r.tl.Positions(nil) {
		saved = append(saved, fmt.Sprintf("%s@%d", filepath.Base(e.Path), e.Offset))
	}
	if fmt.Sprint(saved) != "[a.log@15]" {
		t.Errorf("positions %v", saved)
	}
}

// TestTailRotation: a renamed file is read to its end (its last line even
// without a newline) before the new one; a copytruncate copy continues
// where the original stopped; files rotated before the first start are
// history.
func TestTailRotation(t *testing.T) {
	r := newRig(t, true)
	r.write("a.log.1", "history\n")
	r.write("a.log", "1\n2\n")
	r.round()
	r.want("a.log:1", "a.log:2")

	// Rename rolling: the rest of a.log, then the new a.log.
	r.write("a.log", "3\nno-newline")
	if err := os.Rename(filepath.Join(r.dir, "a.log"), filepath.Join(r.dir, "a.log.2")); err != nil {
		t.Fatal(err)
	}
	r.write("a.log", "4\n")
	r.round()
	r.want("a.log:3", "a.log:no-newline", "a.log:4")

	// copytruncate: copy, then truncate; what was not read yet comes
	// from the copy, once.
	r.write("a.log", "5\n")
	b, _ := os.ReadFile(filepath.Join(r.dir, "a.log"))
	if err := os.WriteFile(filepath.Join(r.dir, "a.log.3"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(r.dir, "a.log"), 0); err != nil {
		t.Fatal(err)
	}
	r.round()
	r.write("a.log", "6\n")
	r.round()
	r.want("a.log:5", "a.log:6")
}

func TestSplitSuffix(t *testing.T) {
	for in, want := range map[string]string{
		"x.log.3": "x.log 3", "x.log": "x.log 0", "x.log.0": "x.log.0 0", "app.2024": "app 2024",
		"x.log.1234567": "x.log.1234567 0", "12": "12 0", "x.": "x. 0",
	} {
		p, n := splitSuffix(in)
		if got := fmt.Sprintf("%s %d", p, n); got != want {
			t.Errorf("splitSuffix(%q) = %s, want %s", in, got, want)
		}
	}
}
