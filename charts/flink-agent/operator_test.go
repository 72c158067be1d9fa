package chart

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/flink-agent/flink-agent/internal/config"
)

// operatorValues is what templates/operator-values.yaml gives the Flink
// Kubernetes Operator's chart: exactly the keys that chart reads, decoded
// strictly into Kubernetes types.
type operatorValues struct {
	OperatorPod struct {
		Labels            map[string]string  `json:"labels"`
		Env               []corev1.EnvVar    `json:"env"`
		InitContainers    []corev1.Container `json:"initContainers,omitempty"`
		SidecarContainers []corev1.Container `json:"sidecarContainers,omitempty"`
	} `json:"operatorPod"`
	OperatorVolumes struct {
		Create bool            `json:"create"`
		Data   []corev1.Volume `json:"data"`
	} `json:"operatorVolumes"`
	OperatorVolumeMounts struct {
		Create bool                 `json:"create"`
		Data   []corev1.VolumeMount `json:"data"`
	} `json:"operatorVolumeMounts"`
	DefaultConfiguration struct {
		Log4j string `json:"log4j-operator.properties"`
	} `json:"defaultConfiguration"`
}

// The operator's console pattern without its colour codes (issue 17).
const operatorPattern = `%d %-30c{1.} [%-5level]%notEmpty{[%X{resource.namespace}/}%notEmpty{%X{resource.name}]} %msg%n%throwable`

func renderOperatorValues(t *testing.T, args ...string) operatorValues {
	t.Helper()
	out, err := helm(t, ".", append([]string{"template", release, ".", "--namespace", "flink-operator", "--kube-version", kubeVersion,
		"--set", "operator.printValues=true", "--show-only", "templates/operator-values.yaml"}, args...)...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	var v operatorValues
	if err := yaml.UnmarshalStrict([]byte(out), &v); err != nil {
		t.Fatalf("operator values do not decode strictly: %v\n%s", err, out)
	}
	return v
}

// operatorDeployment applies v to the operator chart's Deployment
// (testdata, release-1.15.0) as its templates/controller/deployment.yaml
// does; restricted also sets the security contexts a restricted namespace
// needs through that chart's values. (Checked once against the operator
// chart itself: the same Deployment, field for field.)
func operatorDeployment(t *testing.T, v operatorValues, restricted bool) *appsv1.Deployment {
	t.Helper()
	raw, err := os.ReadFile("testdata/flink-kubernetes-operator-1.15.0-deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := &appsv1.Deployment{}
	if err := yaml.UnmarshalStrict(raw, d); err != nil {
		t.Fatal(err)
	}
	pod := &d.Spec.Template
	for k, val := range v.OperatorPod.Labels { // operatorPod.labels, on the Deployment and its pods
		d.Labels[k], pod.Labels[k] = val, val
	}
	spec := &pod.Spec
	op := &spec.Containers[0]
	if op.Name != "flink-kubernetes-operator" || spec.Containers[1].Name != "flink-webhook" {
		t.Fatalf("unexpected operator containers %s, %s", op.Name, spec.Containers[1].Name)
	}
	// Deep copies: callers change one Deployment without touching v.
	op.Env = append(op.Env, v.OperatorPod.Env...) // operatorPod.env: the operator container only
	for _, c := range v.OperatorPod.InitContainers {
		spec.InitContainers = append(spec.InitContainers, *c.DeepCopy())
	}
	if v.OperatorVolumeMounts.Create { // replaces the flink-artifacts-volume mount
		op.VolumeMounts = append(op.VolumeMounts[:1], v.OperatorVolumeMounts.Data...)
	}
	for _, c := range v.OperatorPod.SidecarContainers {
		spec.Containers = append(spec.Containers, *c.DeepCopy())
	}
	if v.OperatorVolumes.Create { // replaces the flink-artifacts-volume emptyDir, before the keystore
		keystore := spec.Volumes[2]
		spec.Volumes = spec.Volumes[:1:1]
		for _, vol := range v.OperatorVolumes.Data {
			spec.Volumes = append(spec.Volumes, *vol.DeepCopy())
		}
		spec.Volumes = append(spec.Volumes, keystore)
	}
	if restricted {
		yes := true
		spec.SecurityContext.RunAsNonRoot = &yes
		spec.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
		for i := range spec.Containers[:2] { // operatorSecurityContext, webhookSecurityContext
			no := false
			spec.Containers[i].SecurityContext = &corev1.SecurityContext{
				AllowPrivilegeEscalation: &no,
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			}
		}
	}
	return d
}

// TestOperatorSidecar: the values for the operator's chart put the agent
// beside the operator with a shared emptyDir, the operator writes its file
// there in its own layout, the agent reads it with a configuration that
// passes check-config, and every mount has its volume.
func TestOperatorSidecar(t *testing.T) {
	for _, native := range []bool{true, false} {
		t.Run(fmt.Sprintf("native=%t", native), func(t *testing.T) {
			v := renderOperatorValues(t, "--set", fmt.Sprintf("sidecar.native=%t", native), "--set", "loki.secret.name=loki-creds")
			agents := v.OperatorPod.InitContainers
			if !native {
				agents = v.OperatorPod.SidecarContainers
			}
			if len(agents) != 1 || len(v.OperatorPod.InitContainers)+len(v.OperatorPod.SidecarContainers) != 1 {
				t.Fatalf("agent containers: init %d, sidecar %d", len(v.OperatorPod.InitContainers), len(v.OperatorPod.SidecarContainers))
			}
			agent := agents[0]
			if native != (agent.RestartPolicy != nil && *agent.RestartPolicy == corev1.ContainerRestartPolicyAlways) {
				t.Errorf("restartPolicy %v", agent.RestartPolicy)
			}
			env := map[string]string{}
			for _, e := range agent.Env {
				env[e.Name] = e.Value
			}
			if env["FLINK_COMPONENT"] != "operator" || !slices.Contains(agent.Args, "--config.file=/etc/flink-agent/config/operator.yaml") {
				t.Errorf("agent env %v args %v", env, agent.Args)
			}

			d := operatorDeployment(t, v, false)
			spec := d.Spec.Template.Spec
			vols := map[string]corev1.Volume{}
			for _, vol := range spec.Volumes {
				if _, dup := vols[vol.Name]; dup {
					t.Errorf("volume %s twice", vol.Name)
				}
				vols[vol.Name] = vol
			}
			for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
				for _, m := range c.VolumeMounts {
					if _, ok := vols[m.Name]; !ok {
						t.Errorf("%s mounts %s, which is not a volume of the pod", c.Name, m.Name)
					}
				}
			}
			if vols["flink-logs"].EmptyDir == nil || vols["flink-artifacts-volume"].EmptyDir == nil || vols["flink-agent-loki"].Secret == nil {
				t.Errorf("volumes %v", vols)
			}
			mount := func(c corev1.Container, vol string) string {
				for _, m := range c.VolumeMounts {
					if m.Name == vol {
						return m.MountPath
					}
				}
				return ""
			}
			op := spec.Containers[0]
			logDir := mount(op, "flink-logs")
			if logDir != "/opt/flink/operator-log" || mount(op, "flink-artifacts-volume") != "/opt/flink/artifacts" {
				t.Errorf("operator mounts %v", op.VolumeMounts)
			}
			// /opt/flink/log holds the operator image's logging jars
			// (docker-entrypoint.sh puts $FLINK_HOME/log/log4j/* on the classpath).
			for _, c := range spec.Containers[:2] {
				if mount(c, "flink-logs") == "/opt/flink/log" {
					t.Errorf("%s mounts the emptyDir over /opt/flink/log", c.Name)
				}
			}
			if got := mount(agent, "flink-logs"); got != "/opt/flink/log" {
				t.Errorf("the agent reads the operator's log at %q", got)
			}
			if mount(spec.Containers[1], "flink-logs") != "" {
				t.Error("the webhook mounts the log volume")
			}

			// The log4j snippet: the operator's file on the shared volume,
			// the console pattern without colours, written only where
			// FLINK_AGENT_OPERATOR_LOG is set: the operator container.
			props := map[string]string{}
			for _, l := range strings.Split(v.DefaultConfiguration.Log4j, "\n") {
				if k, val, ok := strings.Cut(l, " = "); ok && !strings.HasPrefix(l, "#") {
					props[k] = val
				}
			}
			if props["appender.flinkagent.layout.pattern"] != operatorPattern {
				t.Errorf("pattern %q\nwant    %q", props["appender.flinkagent.layout.pattern"], operatorPattern)
			}
			if f := props["appender.flinkagent.fileName"]; filepath.Dir(f) != logDir || !strings.HasSuffix(f, ".log") || props["appender.flinkagent.filePattern"] != f+".%i" {
				t.Errorf("file %q pattern %q, the operator's volume is at %s", f, props["appender.flinkagent.filePattern"], logDir)
			}
			if props["rootLogger.appenderRef.flinkagent.ref"] != props["appender.flinkagent.name"] ||
				props["rootLogger.appenderRef.flinkagent.level"] != "${env:FLINK_AGENT_OPERATOR_LOG:-OFF}" ||
				props["appender.flinkagent.createOnDemand"] != "true" {
				t.Errorf("appender wiring %v", props)
			}
			var opEnv, webhookEnv []string
			for _, e := range op.Env {
				opEnv = append(opEnv, e.Name)
			}
			for _, e := range spec.Containers[1].Env {
				webhookEnv = append(webhookEnv, e.Name)
			}
			if !slices.Contains(opEnv, "FLINK_AGENT_OPERATOR_LOG") || slices.Contains(webhookEnv, "FLINK_AGENT_OPERATOR_LOG") {
				t.Errorf("FLINK_AGENT_OPERATOR_LOG: operator %v, webhook %v", opEnv, webhookEnv)
			}
			// The agent's PodMonitor selects the operator pod.
			for k, val := range map[string]string{"flink-agent/sidecar": "true", "flink-agent/release": release} {
				if d.Spec.Template.Labels[k] != val {
					t.Errorf("pod label %s=%q", k, d.Spec.Template.Labels[k])
				}
			}
		})
	}
}

// TestOperatorConfigMap: the sidecar's configuration passes the agent's own
// check-config, scrapes no REST API, pages nobody, and reads the file the
// log4j snippet writes.
func TestOperatorConfigMap(t *testing.T) {
	r := render(t, ".", "--set", "operator.enabled=true", "--set", "operator.podMonitor.enabled=true",
		"--set", "loki.url=http://loki-gateway.monitoring", "--set", "pagerduty.secret.name=pd")
	cm := r.configMaps[release+"-flink-agent-operator"]
	if cm == nil || len(cm.Data) != 1 {
		t.Fatalf("operator ConfigMap: %v", keys(r.raw))
	}
	file := filepath.Join(t.TempDir(), "operator.yaml")
	if err := os.WriteFile(file, []byte(cm.Data["operator.yaml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(agentBinary(t), "check-config", "--config.file", file).CombinedOutput(); err != nil {
		t.Errorf("check-config: %v\n%s\n%s", err, out, cm.Data["operator.yaml"])
	}
	cfg := config.Default()
	if err := config.Decode([]byte(cm.Data["operator.yaml"]), &cfg, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	if cfg.Flink.RestURL != "" || cfg.PagerDuty.RoutingKeyFile != "" || cfg.Loki.URL != "http://loki-gateway.monitoring" ||
		cfg.Logs.Container != "flink-kubernetes-operator" || !slices.Equal(cfg.Logs.Paths, []string{"/opt/flink/log/*.log"}) {
		t.Errorf("operator config %+v", cfg)
	}
	if match, _ := filepath.Match(cfg.Logs.Paths[0], "/opt/flink/log/flink-kubernetes-operator.log"); !match {
		t.Errorf("logs.paths %v misses the operator's file", cfg.Logs.Paths)
	}
	var pm = r.podMonitors
	if len(pm) != 1 || pm[0].Name != release+"-flink-agent-operator" ||
		pm[0].Spec.Selector.MatchLabels["app.kubernetes.io/name"] != "flink-kubernetes-operator" ||
		pm[0].Spec.PodMetricsEndpoints[0].Port == nil || *pm[0].Spec.PodMetricsEndpoints[0].Port != "metrics" {
		t.Errorf("operator PodMonitor %s", toJSON(pm))
	}
	// Off by default.
	if r := render(t, "."); r.configMaps[release+"-flink-agent-operator"] != nil {
		t.Error("operator ConfigMap rendered by default")
	}
}

// TestOperatorPodSecurity: the operator pod with the sidecar passes the
// restricted Pod Security Standard when the operator chart's own security
// values are set for it; with that chart's defaults it does not, and the
// agent is never the reason. (The real API server's admission:
// TestOperatorPodAdmitted.)
func TestOperatorPodSecurity(t *testing.T) {
	for _, native := range []bool{true, false} {
		v := renderOperatorValues(t, "--set", fmt.Sprintf("sidecar.native=%t", native))
		for _, tc := range []struct {
			restricted, allow bool
		}{{true, true}, {false, false}} {
			d := operatorDeployment(t, v, tc.restricted)
			res := restricted(t, &d.Spec.Template.ObjectMeta, &d.Spec.Template.Spec)
			if res.Allowed != tc.allow {
				t.Errorf("native=%t restricted values=%t: allowed=%t: %v %v", native, tc.restricted, res.Allowed, res.ForbiddenReasons, res.ForbiddenDetails)
			}
			if strings.Contains(strings.Join(res.ForbiddenDetails, " "), `"flink-agent"`) {
				t.Errorf("native=%t: the agent itself is named in %v", native, res.ForbiddenDetails)
			}
		}
	}
}
