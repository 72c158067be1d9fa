package tracesink

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// Bounds of the exported-ids memory: far more ids per job than Flink's
// history shows or a log replay after a restart brings back.
const (
	maxIDsPerJob = 256
	maxJobs      = 256
)

// exported remembers the checkpoint ids whose traces were handed to the
// exporter (this run) or accepted by the receiver (persisted, so that a
// restarted agent replaying the JobManager log exports none again).
type exported struct {
	jobs  map[string]*jobIDs
	tick  uint64 // orders jobs by last use, for eviction
	dirty bool
}

type jobIDs struct {
	ids  map[int64]bool // true: accepted by the receiver
	used uint64
}

func newExported() *exported { return &exported{jobs: map[string]*jobIDs{}} }

func (e *exported) has(job string, id int64) bool {
	j := e.jobs[job]
	if j == nil {
		return false
	}
	if _, ok := j.ids[id]; ok {
		return true
	}
	// Below everything a full job remembers: exported long ago.
	return len(j.ids) >= maxIDsPerJob && id < slices.Min(slices.Collect(maps.Keys(j.ids)))
}

// hand records an id handed to the exporter.
func (e *exported) hand(job string, id int64) { e.set(job, id, false) }

// confirm records an id the receiver accepted.
func (e *exported) confirm(job string, id int64) {
	e.set(job, id, true)
	e.dirty = true
}

func (e *exported) set(job string, id int64, accepted bool) {
	e.tick++
	j := e.jobs[job]
	if j == nil {
		if len(e.jobs) >= maxJobs {
			e.evictJob()
		}
		j = &jobIDs{ids: map[int64]bool{}}
		e.jobs[job] = j
	}
	j.used = e.tick
	if j.ids[id] && !accepted {
		return
	}
	if _, ok := j.ids[id]; !ok && len(j.ids) >= maxIDsPerJob {
		delete(j.ids, slices.Min(slices.Collect(maps.Keys(j.ids))))
	}
	j.ids[id] = accepted
}

func (e *exported) evictJob() {
	var oldest string
	for id, j := range e.jobs {
		if oldest == "" || j.used < e.jobs[oldest].used {
			oldest = id
		}
	}
	delete(e.jobs, oldest)
}

// forget drops a job's ids: its checkpoint ids start over (a new
// incarnation of the job id).
func (e *exported) forget(job string) {
	if _, ok := e.jobs[job]; ok {
		delete(e.jobs, job)
		e.dirty = true
	}
}

// stateFile is the persisted form: the accepted ids per job.
type stateFile struct {
	Version int                `json:"version"`
	Jobs    map[string][]int64 `json:"jobs"`
}

// snapshot returns the accepted ids to persist and clears dirty.
func (e *exported) snapshot() stateFile {
	st := stateFile{Version: 1, Jobs: map[string][]int64{}}
	for job, j := range e.jobs {
		var ids []int64
		for id, ok := range j.ids {
			if ok {
				ids = append(ids, id)
			}
		}
		if len(ids) > 0 {
			sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
			st.Jobs[job] = ids
		}
	}
	e.dirty = false
	return st
}

// load reads a state file; a missing one is an empty state.
func load(path string) (*exported, error) {
	e := newExported()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return e, nil
	}
	if err != nil {
		return e, err
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return e, fmt.Errorf("%s: %w", path, err)
	}
	for job, ids := range st.Jobs {
		for _, id := range ids {
			e.set(job, id, true)
		}
	}
	return e, nil
}

// save writes st atomically: a crash leaves the old file or the new one.
func save(path string, st stateFile) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(b)
	if err := errors.Join(werr, tmp.Sync(), tmp.Close()); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return nil
}
