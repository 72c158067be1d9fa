// Package identity says which pod, cluster and Flink component this agent
// runs beside. It comes from the Downward API environment and becomes the
// cluster/namespace/pod/component labels and tags on everything emitted.
package identity

import (
	"path/filepath"
	"strings"
)

// Component values.
const (
	JobManager  = "jobmanager"
	TaskManager = "taskmanager"
	// Operator is the Flink Kubernetes Operator's pod (its log in the
	// operator's layout; see operatorlog).
	Operator = "operator"
)

// Identity of the pod the agent runs in.
type Identity struct {
	Cluster   string // FLINK_CLUSTER
	Namespace string // POD_NAMESPACE
	Pod       string // POD_NAME
	Component string // FLINK_COMPONENT: jobmanager | taskmanager | operator (or inferred)
}

// FromEnv reads the identity; getenv is os.Getenv outside tests.
func FromEnv(getenv func(string) string) Identity {
	return Identity{
		Cluster:   getenv("FLINK_CLUSTER"),
		Namespace: getenv("POD_NAMESPACE"),
		Pod:       getenv("POD_NAME"),
		Component: strings.ToLower(getenv("FLINK_COMPONENT")),
	}
}

// ComponentFromFile infers the component from a Flink log file name
// (flink-<user>-<service>-<id>-<host>.log) or the operator's
// (flink-kubernetes-operator.log, the chart's log4j snippet), or "" when it
// cannot tell.
func ComponentFromFile(path string) string {
	base := filepath.Base(path)
	switch {
	case strings.Contains(base, "taskexecutor"), strings.Contains(base, "taskmanager"):
		return TaskManager
	case strings.Contains(base, "standalonesession"), strings.Contains(base, "kubernetes-session"),
		strings.Contains(base, "kubernetes-application"), strings.Contains(base, "jobmanager"),
		strings.Contains(base, "standalonejob"):
		return JobManager
	case strings.Contains(base, "kubernetes-operator"):
		return Operator
	}
	return ""
}

// Infer fills an unset Component from the first log file name that tells.
func (id Identity) Infer(files []string) Identity {
	if id.Component != "" {
		return id
	}
	for _, f := range files {
		if c := ComponentFromFile(f); c != "" {
			id.Component = c
			return id
		}
	}
	return id
}

// PromLabels are the constant labels on every Prometheus series: the
// cluster and namespace (pod and component come from the scrape target and
// from per-metric labels).
func (id Identity) PromLabels() map[string]string {
	l := map[string]string{}
	if id.Cluster != "" {
		l["cluster"] = id.Cluster
	}
	if id.Namespace != "" {
		l["namespace"] = id.Namespace
	}
	return l
}

// Tags are the DogStatsD global tags.
func (id Identity) Tags() []string {
	var t []string
	for _, kv := range [][2]string{{"cluster", id.Cluster}, {"namespace", id.Namespace}, {"pod", id.Pod}, {"component", id.Component}} {
		if kv[1] != "" {
			t = append(t, kv[0]+":"+kv[1])
		}
	}
	return t
}
