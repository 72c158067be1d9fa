// Package chart tests the flink-agent Helm chart with the real helm: lint,
// render, strict decoding into Kubernetes and prometheus-operator types, the
// restricted Pod Security Standard (Kubernetes' own evaluator), the agent's
// check-config on the rendered configuration, and the README's snippet in a
// parent chart.
package chart

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"github.com/flink-agent/flink-agent/internal/config"
	"github.com/flink-agent/flink-agent/testbed"
)

const (
	// Capabilities for helm lint/template. A helm built with `go install`
	// defaults to Kubernetes 1.20 (release builds stamp a newer one), and
	// native sidecars need 1.29: say which cluster we render for.
	kubeVersion = "1.31.0"
	release     = "orders"
	namespace   = "flink"
	rulesFile   = "../../alerts/flink-agent.rules.yml"
)

func helm(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testbed.MustTool(t, "helm"), args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// valueSets are the default values and every ci/*-values.yaml.
func valueSets(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("ci/*-values.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no ci/*-values.yaml: %v", err)
	}
	return append([]string{""}, files...)
}

func valuesArgs(f string) []string {
	if f == "" {
		return nil
	}
	return []string{"-f", f}
}

func name(f string) string {
	if f == "" {
		return "default"
	}
	return filepath.Base(f)
}

func TestLint(t *testing.T) {
	for _, f := range valueSets(t) {
		out, err := helm(t, ".", append([]string{"lint", "--strict", "--kube-version", kubeVersion, "."}, valuesArgs(f)...)...)
		if err != nil || strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
			t.Errorf("helm lint --strict (%s): %v\n%s", name(f), err, out)
		}
	}
	// And with helm's own default capabilities, as a user without a cluster
	// would lint it.
	if out, err := helm(t, ".", "lint", "--strict", "."); err != nil {
		t.Errorf("helm lint --strict (default capabilities): %v\n%s", err, out)
	}
}

// rendered is one `helm template` output, decoded strictly.
type rendered struct {
	configMaps      map[string]*corev1.ConfigMap
	podMonitors     []*monitoringv1.PodMonitor
	rules           []*monitoringv1.PrometheusRule
	flinkDeployment []*flinkDeployment
	deployments     []*appsv1.Deployment
	webhooks        []*admissionregistrationv1.MutatingWebhookConfiguration
	secrets         map[string]*corev1.Secret
	raw             map[string][]byte // "Kind/name" -> document
}

// certManagerObject is the part of cert-manager's Certificate and Issuer the
// chart renders (no Go types here; the real CRDs validate them on the API
// server in TestHelmInstallUpgradeUninstall).
type certManagerObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		SelfSigned *struct{} `json:"selfSigned,omitempty"`
		SecretName string    `json:"secretName,omitempty"`
		CommonName string    `json:"commonName,omitempty"`
		DNSNames   []string  `json:"dnsNames,omitempty"`
		IssuerRef  *struct {
			Name  string `json:"name"`
			Kind  string `json:"kind,omitempty"`
			Group string `json:"group,omitempty"`
		} `json:"issuerRef,omitempty"`
	} `json:"spec"`
}

// flinkDeployment is the part of the Flink Kubernetes Operator's
// FlinkDeployment (flink.apache.org/v1beta1) the chart renders. The operator
// is Java, so there are no Go types: unknown fields fail here as well.
type flinkDeployment struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Image              string            `json:"image"`
		ImagePullPolicy    string            `json:"imagePullPolicy,omitempty"`
		FlinkVersion       string            `json:"flinkVersion"`
		ServiceAccount     string            `json:"serviceAccount"`
		FlinkConfiguration map[string]string `json:"flinkConfiguration"`
		PodTemplate        *corev1.Pod       `json:"podTemplate,omitempty"`
		JobManager         struct {
			Replicas    *int        `json:"replicas,omitempty"`
			Resource    fdResource  `json:"resource"`
			PodTemplate *corev1.Pod `json:"podTemplate"`
		} `json:"jobManager"`
		TaskManager struct {
			Replicas    *int        `json:"replicas,omitempty"`
			Resource    fdResource  `json:"resource"`
			PodTemplate *corev1.Pod `json:"podTemplate"`
		} `json:"taskManager"`
		Job struct {
			JarURI      string   `json:"jarURI"`
			Parallelism int      `json:"parallelism"`
			UpgradeMode string   `json:"upgradeMode"`
			EntryClass  string   `json:"entryClass,omitempty"`
			Args        []string `json:"args,omitempty"`
			State       string   `json:"state,omitempty"`
		} `json:"job"`
	} `json:"spec"`
}

type fdResource struct {
	CPU              float64 `json:"cpu"`
	Memory           string  `json:"memory"`
	EphemeralStorage string  `json:"ephemeralStorage,omitempty"`
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

func render(t *testing.T, dir string, args ...string) rendered {
	t.Helper()
	out, err := helm(t, dir, append([]string{"template", release, ".", "--namespace", namespace, "--kube-version", kubeVersion}, args...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, out)
	}
	return decode(t, out)
}

func decode(t *testing.T, out string) rendered {
	t.Helper()
	r := rendered{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, raw: map[string][]byte{}}
	for _, doc := range docSep.Split(out, -1) {
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		if meta.Kind == "" {
			continue // comments only
		}
		key := meta.Kind + "/" + meta.Metadata.Name
		if _, dup := r.raw[key]; dup {
			t.Errorf("%s rendered twice", key)
		}
		r.raw[key] = []byte(doc)
		var obj any
		switch meta.Kind {
		case "ConfigMap":
			cm := &corev1.ConfigMap{}
			r.configMaps[meta.Metadata.Name], obj = cm, cm
		case "PodMonitor":
			pm := &monitoringv1.PodMonitor{}
			r.podMonitors, obj = append(r.podMonitors, pm), pm
		case "PrometheusRule":
			pr := &monitoringv1.PrometheusRule{}
			r.rules, obj = append(r.rules, pr), pr
		case "FlinkDeployment":
			fd := &flinkDeployment{}
			r.flinkDeployment, obj = append(r.flinkDeployment, fd), fd
		case "Deployment":
			d := &appsv1.Deployment{}
			r.deployments, obj = append(r.deployments, d), d
		case "MutatingWebhookConfiguration":
			w := &admissionregistrationv1.MutatingWebhookConfiguration{}
			r.webhooks, obj = append(r.webhooks, w), w
		case "Secret":
			sec := &corev1.Secret{}
			r.secrets[meta.Metadata.Name], obj = sec, sec
		case "ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "Service":
			obj = &corev1.Service{}
		case "PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		case "Certificate", "Issuer":
			obj = &certManagerObject{}
		default:
			t.Errorf("%s: a kind the tests do not know how to check", key)
			continue
		}
		// UnmarshalStrict: unknown and duplicate fields are errors.
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Errorf("%s does not decode strictly: %v", key, err)
		}
	}
	return r
}

// TestTemplateDecodesStrictly renders every value set and checks every object.
func TestTemplateDecodesStrictly(t *testing.T) {
	for _, f := range valueSets(t) {
		t.Run(name(f), func(t *testing.T) {
			r := render(t, ".", valuesArgs(f)...)
			cm := r.configMaps[release+"-flink-agent"]
			if cm == nil {
				t.Fatalf("no ConfigMap %s-flink-agent in %v", release, keys(r.raw))
			}
			for _, fd := range r.flinkDeployment {
				if fd.APIVersion != "flink.apache.org/v1beta1" {
					t.Errorf("FlinkDeployment apiVersion %q", fd.APIVersion)
				}
				checkFlinkPod(t, r, fd.Spec.JobManager.PodTemplate, "jobmanager")
				checkFlinkPod(t, r, fd.Spec.TaskManager.PodTemplate, "taskmanager")
			}
			checkConfig(t, cm)
		})
	}
}

func keys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

var (
	agentOnce sync.Once
	agentBin  string
	agentErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopCluster(code != 0)
	if agentBin != "" {
		os.RemoveAll(filepath.Dir(agentBin))
	}
	os.Exit(code)
}

// agentBinary builds ./cmd/flink-agent once for the package.
func agentBinary(t *testing.T) string {
	t.Helper()
	agentOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flink-agent-chart-test")
		if err != nil {
			agentErr = err
			return
		}
		agentBin = filepath.Join(dir, "flink-agent")
		cmd := exec.Command("go", "build", "-o", agentBin, "./cmd/flink-agent")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			agentErr = fmt.Errorf("go build ./cmd/flink-agent: %v\n%s", err, out)
		}
	})
	if agentErr != nil {
		t.Fatal(agentErr)
	}
	return agentBin
}

// checkConfig runs the agent's own check-config on each rendered file, and
// checks what the pod layout depends on.
func checkConfig(t *testing.T, cm *corev1.ConfigMap) {
	t.Helper()
	bin := agentBinary(t)
	if got := keys(cm.Data); !slices.Equal(got, []string{"jobmanager.yaml", "taskmanager.yaml"}) {
		t.Fatalf("ConfigMap keys %v", got)
	}
	for _, k := range keys(cm.Data) {
		file := filepath.Join(t.TempDir(), k)
		if err := os.WriteFile(file, []byte(cm.Data[k]), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "check-config", "--config.file", file).CombinedOutput()
		if err != nil {
			t.Errorf("flink-agent check-config %s: %v\n%s\n%s", k, err, out, cm.Data[k])
		}
		cfg := config.Default()
		if err := config.Decode([]byte(cm.Data[k]), &cfg, func(string) (string, bool) { return "", false }); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		wantREST := map[string]string{"jobmanager.yaml": "http://localhost:8081", "taskmanager.yaml": ""}[k]
		if cfg.Flink.RestURL != wantREST {
			t.Errorf("%s: flink.rest_url %q, want %q", k, cfg.Flink.RestURL, wantREST)
		}
		if cfg.Logs.PositionsFile != "/var/lib/flink-agent/positions.json" || cfg.Web.ListenAddress != ":9250" {
			t.Errorf("%s: positions %q, listen %q: the pod template mounts /var/lib/flink-agent and exposes 9250",
				k, cfg.Logs.PositionsFile, cfg.Web.ListenAddress)
		}
		if k == "taskmanager.yaml" && cfg.PagerDuty.RoutingKeyFile != "" {
			t.Errorf("%s: a TaskManager pages (the key is mounted on JobManagers only)", k)
		}
	}
}

// checkFlinkPod asserts the shape of a rendered pod template: the native
// sidecar (or the fallback), identity, probes, port, mounts, and restricted
// Pod Security for the agent.
func checkFlinkPod(t *testing.T, r rendered, pod *corev1.Pod, component string) {
	t.Helper()
	if pod == nil {
		t.Fatalf("%s: no podTemplate", component)
	}
	if pod.APIVersion != "v1" || pod.Kind != "Pod" {
		t.Errorf("%s: podTemplate %s/%s, want v1/Pod", component, pod.APIVersion, pod.Kind)
	}
	if pod.Labels["flink-agent/sidecar"] != "true" || pod.Labels["flink-agent/release"] != release {
		t.Errorf("%s: pod labels %v lack what the PodMonitor selects", component, pod.Labels)
	}
	spec := pod.Spec
	var agent *corev1.Container
	native := false
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == "flink-agent" {
			agent, native = &spec.InitContainers[i], true
		}
	}
	var main *corev1.Container
	for i := range spec.Containers {
		switch spec.Containers[i].Name {
		case "flink-agent":
			if agent != nil {
				t.Fatalf("%s: the agent is both an init container and a container", component)
			}
			agent = &spec.Containers[i]
		case "flink-main-container":
			main = &spec.Containers[i]
		}
	}
	if agent == nil || main == nil {
		t.Fatalf("%s: agent %v, flink-main-container %v", component, agent != nil, main != nil)
	}
	if native {
		// A native sidecar is exactly an init container that restarts.
		if agent.RestartPolicy == nil || *agent.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Errorf("%s: native sidecar without restartPolicy: Always", component)
		}
		if len(spec.Containers) != 1 {
			t.Errorf("%s: containers %d, want only flink-main-container", component, len(spec.Containers))
		}
	} else if agent.RestartPolicy != nil {
		t.Errorf("%s: restartPolicy on an ordinary container", component)
	}

	if want := "--config.file=/etc/flink-agent/config/" + component + ".yaml"; !slices.Equal(agent.Args, []string{want}) {
		t.Errorf("%s: args %v, want [%s]", component, agent.Args, want)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range agent.Env {
		env[e.Name] = e
	}
	for name, field := range map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "NODE_NAME": "spec.nodeName"} {
		if e := env[name]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != field {
			t.Errorf("%s: env %s = %+v, want the Downward API field %s", component, name, e, field)
		}
	}
	if e := env["FLINK_COMPONENT"]; e.Value != component {
		t.Errorf("%s: FLINK_COMPONENT %q", component, e.Value)
	}
	if e := env["FLINK_CLUSTER"]; e.Value == "" && (e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.labels['app']") {
		t.Errorf("%s: FLINK_CLUSTER %+v, want a value or the pod's app label", component, e)
	}
	for _, e := range agent.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			t.Errorf("%s: secret %s in the environment; secrets are mounted as files", component, e.Name)
		}
	}

	if len(agent.Ports) != 1 || agent.Ports[0].Name != "agent-metrics" || agent.Ports[0].ContainerPort != 9250 {
		t.Errorf("%s: ports %+v, want agent-metrics 9250", component, agent.Ports)
	}
	for probe, path := range map[*corev1.Probe]string{agent.LivenessProbe: "/healthz", agent.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || probe.HTTPGet.Port.String() != "agent-metrics" {
			t.Errorf("%s: probe %+v, want GET %s on agent-metrics", component, probe, path)
		}
	}
	req, lim := agent.Resources.Requests, agent.Resources.Limits
	if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() || req.Memory().Cmp(*lim.Memory()) > 0 {
		t.Errorf("%s: resources %+v: want requests and a memory limit above them", component, agent.Resources)
	}

	// Restricted Pod Security, field by field, as the sidecar renders it.
	sc := agent.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 9999 ||
		sc.RunAsGroup == nil || *sc.RunAsGroup != 9999 || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Privileged != nil && *sc.Privileged ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: securityContext %s is not restricted (runAsNonRoot, 9999:9999, readOnlyRootFilesystem, no privilege escalation, drop ALL, RuntimeDefault)", component, toJSON(sc))
	}
	// And as Kubernetes' admission would judge it: the pod reduced to the
	// agent and its volumes.
	agentOnly := spec.DeepCopy()
	agentOnly.Containers, agentOnly.InitContainers = nil, nil
	if native {
		agentOnly.InitContainers = []corev1.Container{*agent}
	} else {
		agentOnly.Containers = []corev1.Container{*agent}
	}
	if res := restricted(t, &pod.ObjectMeta, agentOnly); !res.Allowed {
		t.Errorf("%s: the agent fails restricted Pod Security: %v %v", component, res.ForbiddenReasons, res.ForbiddenDetails)
	}

	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	mount := func(c *corev1.Container, vol string) *corev1.VolumeMount {
		for i := range c.VolumeMounts {
			if c.VolumeMounts[i].Name == vol {
				return &c.VolumeMounts[i]
			}
		}
		return nil
	}
	if v := vols["flink-logs"]; v.EmptyDir == nil {
		t.Errorf("%s: flink-logs is not an emptyDir: %+v", component, v)
	}
	if m := mount(main, "flink-logs"); m == nil || m.MountPath != "/opt/flink/log" || m.ReadOnly {
		t.Errorf("%s: flink-main-container mounts flink-logs as %+v, want read-write at /opt/flink/log", component, m)
	}
	if m := mount(agent, "flink-logs"); m == nil || m.MountPath != "/opt/flink/log" {
		t.Errorf("%s: the agent mounts flink-logs as %+v, want /opt/flink/log", component, m)
	}
	if v := vols["flink-agent-positions"]; v.EmptyDir == nil {
		t.Errorf("%s: positions volume %+v, want an emptyDir", component, v)
	}
	if m := mount(agent, "flink-agent-positions"); m == nil || m.MountPath != "/var/lib/flink-agent" || m.ReadOnly {
		t.Errorf("%s: positions mount %+v, want read-write /var/lib/flink-agent", component, m)
	}
	cv := vols["flink-agent-config"]
	if cv.ConfigMap == nil || r.configMaps[cv.ConfigMap.Name] == nil {
		t.Fatalf("%s: config volume %+v names no rendered ConfigMap (%v)", component, cv, keys(r.configMaps))
	}
	if len(cv.ConfigMap.Items) != 1 || cv.ConfigMap.Items[0].Key != component+".yaml" || r.configMaps[cv.ConfigMap.Name].Data[component+".yaml"] == "" {
		t.Errorf("%s: config volume items %+v", component, cv.ConfigMap.Items)
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			m := mount(agent, v.Name)
			if m == nil || !m.ReadOnly || !strings.HasPrefix(m.MountPath, "/etc/flink-agent/secrets/") {
				t.Errorf("%s: secret volume %s mounted as %+v, want read-only under /etc/flink-agent/secrets/", component, v.Name, m)
			}
			if v.Name == "flink-agent-pagerduty" && component != "jobmanager" {
				t.Errorf("%s: the PagerDuty key is mounted on a TaskManager", component)
			}
		}
	}
}

func restricted(t *testing.T, meta *metav1.ObjectMeta, spec *corev1.PodSpec) policy.AggregateCheckResult {
	t.Helper()
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return policy.AggregateCheckResults(ev.EvaluatePod(psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}, meta, spec))
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestNativeSidecarAndFallback renders the same example both ways.
func TestNativeSidecarAndFallback(t *testing.T) {
	for _, native := range []bool{true, false} {
		r := render(t, ".", "--set", "exampleFlinkDeployment.enabled=true", "--set", fmt.Sprintf("sidecar.native=%t", native))
		if len(r.flinkDeployment) != 1 {
			t.Fatalf("native=%t: %d FlinkDeployments", native, len(r.flinkDeployment))
		}
		for component, pod := range map[string]*corev1.Pod{
			"jobmanager":  r.flinkDeployment[0].Spec.JobManager.PodTemplate,
			"taskmanager": r.flinkDeployment[0].Spec.TaskManager.PodTemplate,
		} {
			checkFlinkPod(t, r, pod, component)
			if got := len(pod.Spec.InitContainers) == 1; got != native {
				t.Errorf("native=%t %s: %d init containers", native, component, len(pod.Spec.InitContainers))
			}
			if got := len(pod.Spec.Containers); got != map[bool]int{true: 1, false: 2}[native] {
				t.Errorf("native=%t %s: %d containers", native, component, got)
			}
		}
	}
}

// TestRestrictedPodSecurity: with ci/restricted-values.yaml the whole Flink
// pod passes restricted; by default Flink's own container does not (the
// chart leaves it alone), which shows the evaluator is really judging.
func TestRestrictedPodSecurity(t *testing.T) {
	for _, tc := range []struct {
		values string
		allow  bool
	}{{"ci/restricted-values.yaml", true}, {"", false}} {
		r := render(t, ".", append(valuesArgs(tc.values), "--set", "exampleFlinkDeployment.enabled=true")...)
		for _, pod := range []*corev1.Pod{r.flinkDeployment[0].Spec.JobManager.PodTemplate, r.flinkDeployment[0].Spec.TaskManager.PodTemplate} {
			res := restricted(t, &pod.ObjectMeta, &pod.Spec)
			if res.Allowed != tc.allow {
				t.Errorf("%s: restricted allowed=%t, want %t: %v %v", name(tc.values), res.Allowed, tc.allow, res.ForbiddenReasons, res.ForbiddenDetails)
			}
			if !tc.allow && strings.Contains(strings.Join(res.ForbiddenDetails, " "), `"flink-agent"`) {
				t.Errorf("default values: the agent itself is named in %v", res.ForbiddenDetails)
			}
		}
	}
}

func TestKubeVersionGate(t *testing.T) {
	out, err := helm(t, ".", "template", release, ".", "--kube-version", "1.28.0", "--set", "exampleFlinkDeployment.enabled=true")
	if err == nil || !strings.Contains(out, "sidecar.native=false") {
		t.Errorf("native sidecar on Kubernetes 1.28 rendered (err %v):\n%.500s", err, out)
	}
	if out, err := helm(t, ".", "template", release, ".", "--kube-version", "1.28.0", "--set", "exampleFlinkDeployment.enabled=true", "--set", "sidecar.native=false"); err != nil {
		t.Errorf("sidecar.native=false on Kubernetes 1.28: %v\n%s", err, out)
	}
}

func TestSchemaRejectsUnknownValues(t *testing.T) {
	for _, set := range []string{"bogus=1", "sidecar.bogus=1", "podMonitor.additionalLabel.release=x", "config.flinkk.rest_url=x",
		"image.pullPolicy=Sometimes", "sidecar.native=yes", "loki.url=loki:3100"} {
		out, err := helm(t, ".", "template", release, ".", "--kube-version", kubeVersion, "--set", set)
		if err == nil || !strings.Contains(out, "schema") {
			t.Errorf("--set %s was accepted (err %v)", set, err)
		}
	}
}

// TestSchemaCoversValues: additionalProperties is false on every object the
// schema describes, values.yaml has no key the schema lacks, and the config
// sections are exactly the agent's.
func TestSchemaCoversValues(t *testing.T) {
	raw, err := os.ReadFile("values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, s map[string]any)
	walk = func(path string, s map[string]any) {
		props, ok := s["properties"].(map[string]any)
		if !ok {
			return
		}
		if s["additionalProperties"] != false {
			t.Errorf("schema %s: additionalProperties is not false", path)
		}
		for k, v := range props {
			walk(path+"."+k, v.(map[string]any))
		}
	}
	walk("$", schema)

	vraw, err := os.ReadFile("values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(vraw, &values); err != nil {
		t.Fatal(err)
	}
	var cover func(path string, v map[string]any, s map[string]any)
	cover = func(path string, v map[string]any, s map[string]any) {
		props, ok := s["properties"].(map[string]any)
		if !ok {
			return // an open object (Kubernetes or agent types)
		}
		for k, val := range v {
			ps, ok := props[k].(map[string]any)
			if !ok {
				t.Errorf("values.yaml %s.%s is not in values.schema.json", path, k)
				continue
			}
			if m, ok := val.(map[string]any); ok {
				cover(path+"."+k, m, ps)
			}
		}
	}
	cover("$", values, schema)

	cfgSchema := schema["properties"].(map[string]any)["config"].(map[string]any)["properties"].(map[string]any)
	var want []string
	ct := reflect.TypeOf(config.Config{})
	for i := 0; i < ct.NumField(); i++ {
		if tag, _, _ := strings.Cut(ct.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			want = append(want, tag)
		}
	}
	sort.Strings(want)
	if got := keys(cfgSchema); !slices.Equal(got, want) {
		t.Errorf("schema config sections %v, the agent's %v", got, want)
	}
}

func TestImageTagIsAppVersion(t *testing.T) {
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	var values struct {
		Image struct {
			Tag string `json:"tag"`
		} `json:"image"`
	}
	for file, v := range map[string]any{"Chart.yaml": &chart, "values.yaml": &values} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(raw, v); err != nil {
			t.Fatal(err)
		}
	}
	if chart.AppVersion == "" || values.Image.Tag != chart.AppVersion {
		t.Errorf("image.tag %q, appVersion %q: keep them equal", values.Image.Tag, chart.AppVersion)
	}
}

// TestPrometheusRuleAndPodMonitor: the PrometheusRule carries exactly the
// alerts of alerts/, with its additional labels; the PodMonitor sets the job
// label the FlinkAgentDown rule selects.
func TestPrometheusRuleAndPodMonitor(t *testing.T) {
	r := render(t, ".", "-f", "ci/full-values.yaml")
	if len(r.rules) != 1 || len(r.podMonitors) != 1 {
		t.Fatalf("%d PrometheusRules, %d PodMonitors", len(r.rules), len(r.podMonitors))
	}
	pr, pm := r.rules[0], r.podMonitors[0]
	if pr.Labels["release"] != "kube-prometheus-stack" || pm.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("additionalLabels missing: rule %v, podmonitor %v", pr.Labels, pm.Labels)
	}

	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var want monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict(raw, &want); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	if !reflect.DeepEqual(pr.Spec, want) {
		t.Errorf("PrometheusRule spec differs from %s:\n%s\n%s", rulesFile, toJSON(pr.Spec), toJSON(want))
	}
	n := 0
	for _, g := range pr.Spec.Groups {
		n += len(g.Rules)
	}
	if alerts := bytes.Count(raw, []byte("- alert: ")); n == 0 || n != alerts {
		t.Errorf("%d rules, want the %d alerts of %s", n, alerts, rulesFile)
	}

	ep := pm.Spec.PodMetricsEndpoints
	if len(ep) != 1 || ep[0].Port == nil || *ep[0].Port != "agent-metrics" || !ep[0].HonorLabels {
		t.Fatalf("podMetricsEndpoints %s: want port agent-metrics with honorLabels", toJSON(ep))
	}
	job := ""
	for _, rl := range ep[0].RelabelConfigs {
		if rl.TargetLabel == "job" && rl.Replacement != nil {
			job = *rl.Replacement
		}
	}
	if !strings.Contains(string(raw), fmt.Sprintf(`up{job=%q}`, job)) {
		t.Errorf("the PodMonitor sets job=%q, which FlinkAgentDown does not select", job)
	}
	if !pm.Spec.NamespaceSelector.Any {
		t.Errorf("namespaceSelector %+v, ci/full-values.yaml asks for any", pm.Spec.NamespaceSelector)
	}
	if got := pm.Spec.Selector.MatchLabels; got["flink-agent/sidecar"] != "true" || got["flink-agent/release"] != release {
		t.Errorf("selector %v", got)
	}
}

func TestDashboardConfigMaps(t *testing.T) {
	r := render(t, ".", "--set", "dashboards.enabled=true", "--set", "dashboards.label=my_dashboards", "--set", "dashboards.labelValue=yes",
		"--set", "dashboards.annotations.grafana_folder=Flink")
	want, err := os.ReadFile("../../dashboards/grafana/flink-agent.json")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for n, cm := range r.configMaps {
		if cm.Labels["my_dashboards"] == "" {
			continue
		}
		found++
		if cm.Labels["my_dashboards"] != "yes" || cm.Annotations["grafana_folder"] != "Flink" || cm.Labels["grafana_dashboard"] != "" {
			t.Errorf("%s: labels %v annotations %v", n, cm.Labels, cm.Annotations)
		}
		if got := cm.Data["flink-agent.json"]; strings.TrimSpace(got) != strings.TrimSpace(string(want)) || !json.Valid([]byte(got)) {
			t.Errorf("%s: flink-agent.json is not the dashboard", n)
		}
	}
	if found != 1 {
		t.Errorf("%d dashboard ConfigMaps with the configured label", found)
	}
}

// readmeBlock returns the fenced code block between <!-- name:begin --> and
// <!-- name:end --> in README.md.
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- " + name + ":begin -->\\s*```yaml\\n(.*?)```\\s*<!-- " + name + ":end -->")
	m := re.FindSubmatch(raw)
	if m == nil {
		t.Fatalf("README.md has no %s block", name)
	}
	return string(m[1])
}

// TestParentChart renders the README's FlinkDeployment inside a parent chart
// that depends on this one, as a Flink app's chart would.
func TestParentChart(t *testing.T) {
	app := filepath.Join(t.TempDir(), "orders-app")
	sub := filepath.Join(app, "charts", "flink-agent")
	if err := copyChart(".", sub); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"Chart.yaml":                     "apiVersion: v2\nname: orders-app\nversion: 1.0.0\ndependencies:\n  - name: flink-agent\n    version: 0.1.0\n    repository: file://../flink-agent\n",
		"values.yaml":                    readmeBlock(t, "parent-chart-values"),
		"templates/flinkdeployment.yaml": readmeBlock(t, "parent-chart-template"),
	}
	for f, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(app, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(app, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := helm(t, app, "lint", "--strict", "--kube-version", kubeVersion, "."); err != nil {
		t.Errorf("helm lint --strict of the parent chart: %v\n%s", err, out)
	}
	r := render(t, app)
	if len(r.flinkDeployment) != 1 || len(r.podMonitors) != 1 {
		t.Fatalf("parent chart rendered %v", keys(r.raw))
	}
	fd := r.flinkDeployment[0]
	checkFlinkPod(t, r, fd.Spec.JobManager.PodTemplate, "jobmanager")
	checkFlinkPod(t, r, fd.Spec.TaskManager.PodTemplate, "taskmanager")
	cm := r.configMaps[release+"-flink-agent"]
	if cm == nil {
		t.Fatalf("no ConfigMap %s-flink-agent: %v", release, keys(r.raw))
	}
	checkConfig(t, cm)
	// The parent's values reached the sidecar's configuration.
	if !strings.Contains(cm.Data["taskmanager.yaml"], "url: http://loki-gateway.monitoring.svc") {
		t.Errorf("loki.url from the parent's values is not in the config:\n%s", cm.Data["taskmanager.yaml"])
	}
}

// copyChart copies the chart without the files .helmignore leaves out of a
// package (tests, fixtures).
func copyChart(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if rel == "testdata" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if strings.HasSuffix(p, ".go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}

// TestNotes renders NOTES.txt (helm template leaves it out) through a
// ConfigMap in a copy of the chart.
func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNotes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flink-agent")
	if err := copyChart(".", dir); err != nil {
		t.Fatal(err)
	}
	probe := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include \"flink-agent/templates/NOTES.txt\" . | toJson }}\n"
	if err := os.WriteFile(filepath.Join(dir, "templates", "zz-notes.yaml"), []byte(probe), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		values string
		want   []string
	}{
		{"", []string{"ConfigMap orders-flink-agent", `include "flink-agent.jobmanager.podTemplate" $`, "Logs to Loki: off", "Sidecar mode: native"}},
		{"ci/full-values.yaml", []string{"PodMonitor orders-flink-agent", "PrometheusRule orders-flink-agent (" + fmt.Sprint(strings.Count(readFile(t, rulesFile), "- alert: ")) + " alerts;", "grafana_dashboard=1",
			"FlinkDeployment orders (example)", "Logs to Loki: https://loki-gateway.monitoring.svc", "port-forward <flink-pod> 9250"}},
		{"ci/legacy-sidecar-values.yaml", []string{"ordinary container (sidecar.native=false)"}},
		{"ci/operator-values.yaml", []string{"ConfigMap orders-flink-agent-operator (the operator sidecar's configuration", "PodMonitor orders-flink-agent-operator"}},
	} {
		var r rendered
		if tc.values == "" {
			r = render(t, dir)
		} else {
			abs, _ := filepath.Abs(tc.values)
			r = render(t, dir, "-f", abs)
		}
		notes := r.configMaps["notes"].Data["notes"]
		for _, w := range tc.want {
			if !strings.Contains(notes, w) {
				t.Errorf("%s: NOTES.txt lacks %q:\n%s", name(tc.values), w, notes)
			}
		}
	}
}
