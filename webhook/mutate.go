package webhook

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

// Results of one admission request, the values of the result label of
// flink_agent_webhook_requests_total.
const (
	ResultInjected = "injected" // the pod gets the sidecar
	ResultSkipped  = "skipped"  // not a pod to inject (or injected already): unchanged
	ResultError    = "error"    // could not decide or would make an invalid pod: unchanged
)

// Decision is the webhook's answer to one request.
type Decision struct {
	Result string
	Reason string // why a pod was skipped or left alone on an error
	Patch  []byte // a JSON patch when Result is ResultInjected
}

// operation is one RFC 6902 JSON patch operation.
type operation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// Decide says what to do with an admission request: the sidecar for a Flink
// JobManager or TaskManager pod being created that has not opted out and has
// no agent yet; nothing for anything else.
func (c *Config) Decide(req *admissionv1.AdmissionRequest) Decision {
	skip := func(format string, a ...any) Decision {
		return Decision{Result: ResultSkipped, Reason: fmt.Sprintf(format, a...)}
	}
	if req.Operation != admissionv1.Create {
		return skip("operation %s", req.Operation)
	}
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.SubResource != "" {
		return skip("not a pod: %s %s", req.Kind.String(), req.SubResource)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return Decision{Result: ResultError, Reason: fmt.Sprintf("decode pod: %v", err)}
	}
	if pod.Labels[LabelType] != TypeFlinkNative {
		return skip("not a Flink pod (label %s=%q)", LabelType, pod.Labels[LabelType])
	}
	var s *Sidecar
	switch pod.Labels[LabelComponent] {
	case "jobmanager":
		s = &c.JobManager
	case "taskmanager":
		s = &c.TaskManager
	default:
		return skip("not a JobManager or TaskManager (label %s=%q)", LabelComponent, pod.Labels[LabelComponent])
	}
	if v, ok := pod.Annotations[AnnotationInject]; ok && strings.EqualFold(v, "false") {
		return skip("opted out (annotation %s=%q)", AnnotationInject, v)
	}
	for _, ctr := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if ctr.Name == s.name {
			return skip("has a container %q already", s.name)
		}
	}
	main := slices.IndexFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == MainContainerName })
	if main < 0 {
		return skip("no %s", MainContainerName)
	}
	// What would make the API server refuse the patched pod is left alone:
	// the webhook must never be the reason a Flink pod is not created.
	for _, v := range pod.Spec.Volumes {
		if slices.Contains(s.volumeNames, v.Name) {
			return Decision{Result: ResultError, Reason: fmt.Sprintf("the pod already has a volume %q", v.Name)}
		}
	}
	for _, m := range pod.Spec.Containers[main].VolumeMounts {
		if slices.Contains(s.mountPaths, m.MountPath) {
			return Decision{Result: ResultError, Reason: fmt.Sprintf("%s already mounts %s", MainContainerName, m.MountPath)}
		}
	}

	var ops []operation
	ops = addEntries(ops, "/metadata/labels", pod.Labels != nil, s.Labels)
	ops = addEntries(ops, "/metadata/annotations", pod.Annotations != nil, s.Annotations)
	if s.Native {
		ops = appendItems(ops, "/spec/initContainers", len(pod.Spec.InitContainers) > 0, []json.RawMessage{s.Container})
	} else {
		ops = appendItems(ops, "/spec/containers", true, []json.RawMessage{s.Container})
	}
	ops = appendItems(ops, "/spec/volumes", len(pod.Spec.Volumes) > 0, s.Volumes)
	ops = appendItems(ops, fmt.Sprintf("/spec/containers/%d/volumeMounts", main), len(pod.Spec.Containers[main].VolumeMounts) > 0, s.MainContainerVolumeMounts)
	patch, err := json.Marshal(ops)
	if err != nil {
		return Decision{Result: ResultError, Reason: fmt.Sprintf("encode patch: %v", err)}
	}
	return Decision{Result: ResultInjected, Patch: patch}
}

// addEntries sets map entries (labels, annotations) under path, creating the
// map when the pod has none.
func addEntries(ops []operation, path string, exists bool, entries map[string]string) []operation {
	if len(entries) == 0 {
		return ops
	}
	if !exists {
		return append(ops, operation{Op: "add", Path: path, Value: entries})
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ops = append(ops, operation{Op: "add", Path: path + "/" + escape(k), Value: entries[k]})
	}
	return ops
}

// appendItems appends to the list at path, creating it when the pod has none.
func appendItems(ops []operation, path string, exists bool, items []json.RawMessage) []operation {
	if len(items) == 0 {
		return ops
	}
	if !exists {
		return append(ops, operation{Op: "add", Path: path, Value: items})
	}
	for _, it := range items {
		ops = append(ops, operation{Op: "add", Path: path + "/-", Value: it})
	}
	return ops
}

// escape makes a map key one JSON pointer token (RFC 6901).
func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
