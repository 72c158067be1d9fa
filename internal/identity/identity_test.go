package identity

import (
	"slices"
	"testing"
)

func TestComponentFromFlinkLogNames(t *testing.T) {
	for file, want := range map[string]string{
		"/opt/flink/log/flink--standalonesession-0-flink-jm-7d9f.log":               JobManager,
		"/opt/flink/log/flink--kubernetes-application-0-orders-6c5b.log":            JobManager,
		"/opt/flink/log/flink--kubernetes-session-0-sess-1.log":                     JobManager,
		"/opt/flink/log/flink--taskexecutor-0-host.log.3":                           TaskManager,
		"/opt/flink/log/flink--kubernetes-taskmanager-0-orders-taskmanager-1-2.log": TaskManager,
		"/opt/flink/log/flink-kubernetes-operator.log":                              Operator,
		"/opt/flink/log/flink-kubernetes-operator.log.2":                            Operator,
		"/opt/flink/log/gc.log":                                                     "",
	} {
		if got := ComponentFromFile(file); got != want {
			t.Errorf("%s: %q, want %q", file, got, want)
		}
	}
}

func TestInferKeepsExplicitComponent(t *testing.T) {
	id := Identity{Component: TaskManager}.Infer([]string{"flink--standalonesession-0-h.log"})
	if id.Component != TaskManager {
		t.Errorf("FLINK_COMPONENT overridden by file name: %q", id.Component)
	}
	id = Identity{}.Infer([]string{"gc.log", "flink--standalonesession-0-h.log"})
	if id.Component != JobManager {
		t.Errorf("not inferred: %q", id.Component)
	}
}

func TestFromEnvTagsAndLabels(t *testing.T) {
	env := map[string]string{"POD_NAME": "orders-jm-0", "POD_NAMESPACE": "streaming", "FLINK_CLUSTER": "orders", "FLINK_COMPONENT": "JobManager"}
	id := FromEnv(func(k string) string { return env[k] })
	if id.Component != JobManager || id.Pod != "orders-jm-0" {
		t.Fatalf("%+v", id)
	}
	want := []string{"cluster:orders", "namespace:streaming", "pod:orders-jm-0", "component:jobmanager"}
	if got := id.Tags(); !slices.Equal(got, want) {
		t.Errorf("tags %v, want %v", got, want)
	}
	if l := id.PromLabels(); len(l) != 2 || l["cluster"] != "orders" || l["namespace"] != "streaming" {
		t.Errorf("labels %v", l)
	}
	if l := (Identity{}).PromLabels(); len(l) != 0 {
		t.Errorf("empty identity gives labels %v", l)
	}
}
