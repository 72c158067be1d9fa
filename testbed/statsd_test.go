package testbed

import (
	"context"
	"testing"
	"time"

	"github.com/flink-agent/flink-agent/internal/dogstatsd"
)

// A tagged DogStatsD metric sent by the agent's client arrives in a real
// statsd_exporter with its tags as labels.
func TestDogStatsDReachesStatsdExporter(t *testing.T) {
	NeedsTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	se, err := StartStatsdExporter(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer se.Stop()

	c, err := dogstatsd.New(se.UDPAddr, []string{"cluster:orders", "namespace:streaming"}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Count(dogstatsd.CheckpointFailed, 3, "job_name:orders-enrichment", "reason:expired")
	c.Gauge(dogstatsd.ClusterTaskManagers, 4)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}

	err = WaitFor(ctx, se.Proc, 100*time.Millisecond, func(ctx context.Context) error {
		mfs, err := se.Metrics(ctx)
		if err != nil {
			return err
		}
		failed, ok := mfs["flink_checkpoint_failed"]
		if !ok || len(failed.Metric) != 1 {
			return errNotYet("flink_checkpoint_failed")
		}
		m := failed.Metric[0]
		l := LabelsOf(m)
		if l["cluster"] != "orders" || l["namespace"] != "streaming" || l["job_name"] != "orders-enrichment" || l["reason"] != "expired" {
			t.Fatalf("labels = %v", l)
		}
		if v := m.GetCounter().GetValue(); v != 3 {
			t.Fatalf("flink_checkpoint_failed = %v, want 3", v)
		}
		tm, ok := mfs["flink_cluster_taskmanagers"]
		if !ok || tm.Metric[0].GetGauge().GetValue() != 4 {
			return errNotYet("flink_cluster_taskmanagers")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type errNotYet string

func (e errNotYet) Error() string { return string(e) + " not received yet" }
