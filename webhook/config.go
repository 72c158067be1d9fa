// Package webhook is a Kubernetes mutating admission webhook that adds the
// flink-agent sidecar to the pods Flink creates (JobManagers and
// TaskManagers) in namespaces that opt in. What it adds is read from a file
// the Helm chart renders with the same templates as its pod templates, so the
// chart stays the one description of the sidecar.
package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The labels Flink's native Kubernetes integration puts on its pods, and the
// annotation a pod opts out with.
const (
	LabelType         = "type"
	LabelComponent    = "component"
	TypeFlinkNative   = "flink-native-kubernetes"
	AnnotationInject  = "flink-agent/inject"
	MainContainerName = "flink-main-container"
)

// Config is the webhook's configuration file (--webhook.config-file): what to
// add to a JobManager pod and to a TaskManager pod.
type Config struct {
	JobManager  Sidecar `json:"jobmanager"`
	TaskManager Sidecar `json:"taskmanager"`
}

// Sidecar is what one kind of Flink pod gets. Objects are kept as the JSON
// the chart rendered, so the patch carries exactly those fields.
type Sidecar struct {
	// Native: the container goes to initContainers (restartPolicy: Always),
	// else to containers.
	Native bool `json:"native"`
	// Container is the agent's container.
	Container json.RawMessage `json:"container"`
	// Volumes are added to the pod.
	Volumes []json.RawMessage `json:"volumes"`
	// MainContainerVolumeMounts are added to flink-main-container (the
	// shared log directory).
	MainContainerVolumeMounts []json.RawMessage `json:"mainContainerVolumeMounts"`
	// Labels and Annotations are added to the pod.
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`

	// Decoded forms, for the checks before a patch.
	name        string
	volumeNames []string
	mountPaths  []string
}

// LoadConfig reads and validates a configuration file.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(raw)
}

// ParseConfig decodes YAML strictly (an unknown key is an error naming it)
// and validates it.
func ParseConfig(raw []byte) (*Config, error) {
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks that each part decodes strictly into its Kubernetes type
// and names what a patch needs.
func (c *Config) Validate() error {
	return errors.Join(c.JobManager.validate("jobmanager"), c.TaskManager.validate("taskmanager"))
}

func (s *Sidecar) validate(key string) error {
	if len(s.Container) == 0 {
		return fmt.Errorf("%s.container: missing", key)
	}
	var ctr corev1.Container
	if err := yaml.UnmarshalStrict(s.Container, &ctr); err != nil {
		return fmt.Errorf("%s.container: %w", key, err)
	}
	if ctr.Name == "" || ctr.Image == "" {
		return fmt.Errorf("%s.container: name and image are required", key)
	}
	if s.Native != (ctr.RestartPolicy != nil && *ctr.RestartPolicy == corev1.ContainerRestartPolicyAlways) {
		return fmt.Errorf("%s.native is %t but the container's restartPolicy is %v", key, s.Native, ctr.RestartPolicy)
	}
	s.name = ctr.Name
	s.volumeNames, s.mountPaths = nil, nil
	for i, raw := range s.Volumes {
		var v corev1.Volume
		if err := yaml.UnmarshalStrict(raw, &v); err != nil {
			return fmt.Errorf("%s.volumes[%d]: %w", key, i, err)
		}
		if v.Name == "" {
			return fmt.Errorf("%s.volumes[%d].name: missing", key, i)
		}
		s.volumeNames = append(s.volumeNames, v.Name)
	}
	for i, raw := range s.MainContainerVolumeMounts {
		var m corev1.VolumeMount
		if err := yaml.UnmarshalStrict(raw, &m); err != nil {
			return fmt.Errorf("%s.mainContainerVolumeMounts[%d]: %w", key, i, err)
		}
		if m.Name == "" || m.MountPath == "" {
			return fmt.Errorf("%s.mainContainerVolumeMounts[%d]: name and mountPath are required", key, i)
		}
		s.mountPaths = append(s.mountPaths, m.MountPath)
	}
	return nil
}
