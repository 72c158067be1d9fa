package progress

import "time"

// counter turns a cumulative count into records per second. Flink serves
// the count from a cache it refreshes every few seconds, so the scrape that
// first sees a new value stands for when it was counted: the rate between
// such change points is right to within a scrape interval, however the
// refreshes and the scrapes interleave.
type counter struct {
	points []point // change points, oldest first
}

type point struct {
	t time.Time
	v int64
}

// add records the count as seen now.
func (c *counter) add(now time.Time, v int64) {
	if n := len(c.points); n > 0 {
		switch last := c.points[n-1]; {
		case v == last.v:
			return
		case v < last.v:
			c.points = c.points[:0] // the tasks restarted: their counts begin again
		}
	}
	c.points = append(c.points, point{now, v})
	// Keep the window and the newest point before it.
	for len(c.points) > 2 && !c.points[1].t.After(now.Add(-rateWindow)) {
		c.points = c.points[1:]
	}
}

// rate is the records per second over the last rateWindow (the span
// between the newest change point and the newest one at least rateWindow
// older, else the oldest kept). A count that has not changed for longer
// than its refreshes take stands still: the span then ends now, and the
// rate falls to 0 once the window holds no change.
func (c *counter) rate(now time.Time) (float64, bool) {
	n := len(c.points)
	if n == 0 {
		return 0, false
	}
	end := c.points[n-1]
	endT := end.t
	if now.Sub(end.t) > c.quiet() {
		endT = now
	}
	base := c.points[0]
	for _, p := range c.points {
		if !p.t.After(endT.Add(-rateWindow)) {
			base = p
		}
	}
	span := endT.Sub(base.t)
	if span <= 0 {
		return 0, false // one value so far
	}
	return float64(end.v-base.v) / span.Seconds(), true
}

// quiet is how long the count may stay unchanged while records still flow:
// 2.5 times the longest gap between its recent changes, at least minQuiet.
func (c *counter) quiet() time.Duration {
	q := minQuiet
	for i := 1; i < len(c.points); i++ {
		q = max(q, c.points[i].t.Sub(c.points[i-1].t)*5/2)
	}
	return q
}
