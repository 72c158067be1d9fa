package collector

import (
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// /jobs/:id: uptime, the restart signal, and per-vertex busy and
// back-pressure ratios from the accumulated times Flink sums over each
// vertex's subtasks (no per-subtask calls). /jobs/:id/exceptions is read only
// when the job restarted.

type jobDetailsBody struct {
	State      string  `json:"state"`
	Now        integer `json:"now"`
	Timestamps struct {
		Running    integer `json:"RUNNING"`
		Restarting integer `json:"RESTARTING"`
	} `json:"timestamps"`
	Vertices []vertexBody `json:"vertices"`
	Plan     struct {
		Nodes []struct {
			ID     string `json:"id"`
			Inputs []struct {
				ID string `json:"id"`
			} `json:"inputs"`
		} `json:"nodes"`
	} `json:"plan"`
}

type vertexBody struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Parallelism integer `json:"parallelism"`
	Metrics     struct {
		BackPressured integer `json:"accumulated-backpressured-time"`
		Idle          integer `json:"accumulated-idle-time"`
		Busy          number  `json:"accumulated-busy-time"` // a double, "NaN" when busy time is off
		ReadRecords   integer `json:"read-records"`
		WriteRecords  integer `json:"write-records"`
	} `json:"metrics"`
}

// jobState is what the collector remembers about a job id between scrapes.
type jobState struct {
	name          string
	active        bool
	seen          bool // restart baseline taken
	cfgDone       bool
	cpDisabled    bool
	finalUntil    time.Time // a stopped job's statistics are read until then
	preexisting   bool      // listed at the first successful scrape
	restarting    int64     // timestamps.RESTARTING last seen
	hasRestarting bool
	restored      int64 // counts.restored last seen
	hasRestored   bool
	counts        countsAt // the last valid counts
	vertices      map[string]*vertexPrev
	vertexNames   map[string]string // vertex id → label, for checkpoint details
	// excSince is the JobManager's clock (ms) up to which the exception
	// history was read: later entries are new.
	excSince int64
}

type vertexPrev struct {
	bp, idle       int64
	busy           float64
	busyOK         bool
	now            int64
	lastBP, lastBu float64
	hasBP, hasBusy bool
}

// job reads one running job. It runs beside other jobs' reads: it touches
// only js and, under s.mu, the snapshot.
func (s *scrape) job(j *jobOverview, js *jobState, owner bool) {
	c := s.c
	js.active = true
	js.name = j.Name
	first := !js.seen

	var restartedAt bool
	var d jobDetailsBody
	err := c.c.get(s.ctx, routeJob, "/jobs/"+j.ID, &d)
	switch {
	case err == nil:
		if owner {
			s.uptime(j.Name, &d)
			s.vertices(j.Name, js, &d)
			s.progress(j, &d)
		}
		ts := d.Timestamps.Restarting.or(0)
		restartedAt = js.hasRestarting && ts > js.restarting
		js.restarting, js.hasRestarting = ts, true
		if js.excSince == 0 {
			// Exceptions from before the agent's first look are history.
			js.excSince = d.Now.or(0)
		}
	case errors.Is(err, errNotFound):
		// It ended between /jobs/overview and now; the next scrape drops it.
	default:
		s.fail(err)
	}

	restored, hasRestored := s.checkpointsOf(j, js)

	if first {
		c.restarts.WithLabelValues(j.Name) // exported from 0
	}
	delta := int64(0)
	if restartedAt {
		delta = 1
	}
	if hasRestored {
		if !first && js.hasRestored && restored-js.restored > delta {
			// Regional failovers restore without RESTARTING; each restore counts.
			delta = restored - js.restored
		}
		js.restored, js.hasRestored = restored, true
	}
	js.seen = true
	if delta > 0 {
		c.restarts.WithLabelValues(j.Name).Add(float64(delta))
		s.restarted(j, js, delta)
	}
}

func (s *scrape) nameTaken(name string) bool {
	if s.owned == nil {
		s.owned = map[string]bool{}
	}
	if s.owned[name] {
		return true
	}
	s.owned[name] = true
	return false
}

func (s *scrape) uptime(name string, d *jobDetailsBody) {
	up := 0.0
	if d.State == "RUNNING" && d.Timestamps.Running.OK && d.Timestamps.Running.V > 0 && d.Now.OK {
		up = max(0, float64(d.Now.V-d.Timestamps.Running.V)/1e3)
	}
	s.mu.Lock()
	s.snap.uptime = append(s.snap.uptime, nameValue{name: name, value: up})
	s.mu.Unlock()
}

// vertices derives each vertex's busy and back-pressured share from the
// growth of its accumulated times. busy + idle + back-pressured time is the
// subtasks' wall time, so the shares are exact even though Flink refreshes
// these values only every metrics.fetcher.update-interval.
func (s *scrape) vertices(job string, js *jobState, d *jobDetailsBody) {
	var ratios []vertexRatio
	defer func() {
		s.mu.Lock()
		s.snap.vertices = append(s.snap.vertices, ratios...)
		s.mu.Unlock()
	}()
	seen := make(map[string]bool, len(d.Vertices))
	for i := range d.Vertices {
		v := &d.Vertices[i]
		if v.ID == "" {
			continue
		}
		seen[v.ID] = true
		label := sanitizeVertex(v.Name, v.ID)
		js.vertexNames[v.ID] = label
		m := v.Metrics
		if !m.BackPressured.OK || !m.Idle.OK {
			continue
		}
		cur := vertexPrev{bp: m.BackPressured.V, idle: m.Idle.V, busy: m.Busy.V, busyOK: m.Busy.OK, now: d.Now.or(0)}
		p := js.vertices[v.ID]
		if p == nil {
			js.vertices[v.ID] = &cur
			continue
		}
		dbp, didle := cur.bp-p.bp, cur.idle-p.idle
		dbusy, busyOK := cur.busy-p.busy, cur.busyOK && p.busyOK
		switch {
		case dbp < 0 || didle < 0 || (busyOK && dbusy < 0):
			// A subtask restarted and its accumulation began again.
			cur.hasBP, cur.hasBusy = false, false
			js.vertices[v.ID] = &cur
			continue
		case dbp == 0 && didle == 0 && (!busyOK || dbusy == 0):
			// Flink's metric cache did not refresh since the last scrape.
		default:
			var total float64
			if busyOK {
				total = float64(dbp+didle) + dbusy
			} else if par := v.Parallelism.or(1); cur.now > p.now && par > 0 {
				total = float64((cur.now - p.now) * par)
			}
			if total > 0 {
				cur.lastBP, cur.hasBP = clamp01(float64(dbp)/total), true
				cur.hasBusy = busyOK
				if busyOK {
					cur.lastBu = clamp01(dbusy / total)
				}
				js.vertices[v.ID] = &cur
				p = &cur
			}
		}
		if p.hasBP || p.hasBusy {
			ratios = append(ratios, vertexRatio{job: job, vertex: label,
				bp: p.lastBP, hasBP: p.hasBP, busy: p.lastBu, hasBusy: p.hasBusy})
		}
	}
	for id := range js.vertices {
		if !seen[id] {
			delete(js.vertices, id)
			delete(js.vertexNames, id)
		}
	}
}

func clamp01(v float64) float64 { return min(1, max(0, v)) }

// maxVertexLabel caps vertex labels: Flink names chained SQL operators with
// their whole plan.
const maxVertexLabel = 80

// sanitizeVertex makes a vertex name a tidy label value: control characters
// and runs of white space become one space, and a long name is cut and
// suffixed with the start of the vertex id so that it stays unique.
func sanitizeVertex(name, id string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.TrimSpace(name) {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	out := b.String()
	if out == "" {
		out = id
	}
	if len(out) <= maxVertexLabel {
		return out
	}
	suffix := id
	if len(suffix) > 8 {
		suffix = suffix[:8]
	}
	cut := maxVertexLabel - len(suffix) - 4
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	return out[:cut] + "...~" + suffix
}
