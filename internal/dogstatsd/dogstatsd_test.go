package dogstatsd

import (
	"regexp"
	"testing"
)

func TestCatalogNamesAreUniqueAndWellFormed(t *testing.T) {
	name := regexp.MustCompile(`^flink(\.[a-z0-9_]+)+$`)
	seen := map[string]bool{}
	for _, m := range Catalog() {
		if !name.MatchString(m.Name) {
			t.Errorf("%q is not a flink.* DogStatsD name", m.Name)
		}
		if seen[m.Name] {
			t.Errorf("%s declared twice", m.Name)
		}
		seen[m.Name] = true
		if m.Kind != Count && m.Kind != Gauge && m.Kind != Distribution {
			t.Errorf("%s: kind %q", m.Name, m.Kind)
		}
	}
}

func TestDisabledClientSendsNothingAndDoesNotPanic(t *testing.T) {
	var c *Client
	c.Count(CheckpointFailed, 1)
	c.Gauge(Up, 1)
	c.Distribution(CheckpointDuration, 1)
	if c.Enabled() || c.Flush() != nil || c.Close() != nil {
		t.Fatal("nil client claims to be enabled or fails")
	}
	c2, err := New("", nil, true)
	if err != nil || c2.Enabled() {
		t.Fatalf("empty address: %v %v", c2, err)
	}
}

func TestTagSanitises(t *testing.T) {
	if got := Tag("job_name", "orders|enrich,v2#1"); got != "job_name:orders_enrich_v2_1" {
		t.Errorf("got %q", got)
	}
}
