package chart

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/flink-agent/flink-agent/testbed"
	"github.com/flink-agent/flink-agent/webhook"
)

// webhookValues are the values the webhook tests render with.
var webhookValues = []string{"-f", "ci/webhook-values.yaml"}

// webhookConfig renders the webhook's --webhook.config-file and checks that
// the webhook accepts it.
func webhookConfig(t *testing.T, r rendered) []byte {
	t.Helper()
	cm := r.configMaps[release+"-flink-agent-webhook"]
	if cm == nil || cm.Data["sidecars.yaml"] == "" {
		t.Fatalf("no webhook ConfigMap with sidecars.yaml in %v", keys(r.raw))
	}
	raw := []byte(cm.Data["sidecars.yaml"])
	if _, err := webhook.ParseConfig(raw); err != nil {
		t.Fatalf("the webhook refuses the chart's sidecars.yaml: %v\n%s", err, raw)
	}
	return raw
}

// TestWebhookTemplates checks what webhook.enabled renders without a
// cluster: the sidecar description is the pod templates' own, the
// MutatingWebhookConfiguration never blocks a pod, and the webhook's pods
// are restricted.
func TestWebhookTemplates(t *testing.T) {
	r := render(t, ".", webhookValues...)
	raw := webhookConfig(t, r)
	var cfg struct {
		JobManager, TaskManager struct {
			Native      bool                 `json:"native"`
			Container   corev1.Container     `json:"container"`
			Volumes     []corev1.Volume      `json:"volumes"`
			MainMounts  []corev1.VolumeMount `json:"mainContainerVolumeMounts"`
			Labels      map[string]string    `json:"labels"`
			Annotations map[string]string    `json:"annotations"`
		}
	}
	if err := yaml.UnmarshalStrict(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	// The same container as the pod templates render; the configuration
	// from the pod's annotation instead of the release's ConfigMap.
	pods := render(t, ".", append(webhookValues, "--set", "exampleFlinkDeployment.enabled=true")...)
	fd := pods.flinkDeployment[0]
	agentCM := pods.configMaps[release+"-flink-agent"]
	for _, c := range []struct {
		component string
		pod       *corev1.Pod
		native    bool
		ctr       corev1.Container
		vols      []corev1.Volume
		mounts    []corev1.VolumeMount
		labels    map[string]string
		ann       map[string]string
	}{
		{"jobmanager", fd.Spec.JobManager.PodTemplate, cfg.JobManager.Native, cfg.JobManager.Container, cfg.JobManager.Volumes,
			cfg.JobManager.MainMounts, cfg.JobManager.Labels, cfg.JobManager.Annotations},
		{"taskmanager", fd.Spec.TaskManager.PodTemplate, cfg.TaskManager.Native, cfg.TaskManager.Container, cfg.TaskManager.Volumes,
			cfg.TaskManager.MainMounts, cfg.TaskManager.Labels, cfg.TaskManager.Annotations},
	} {
		want := partsOf(t, c.pod)
		if len(c.mounts) != 1 || !reflect.DeepEqual(generic(t, c.mounts[0]), want.mainMount) {
			t.Errorf("%s: flink-main-container mounts %+v, the pod template's %v", c.component, c.mounts, want.mainMount)
		}
		if !reflect.DeepEqual(c.labels, c.pod.Labels) {
			t.Errorf("%s: labels %v, the pod template's %v", c.component, c.labels, c.pod.Labels)
		}
		if len(c.vols) != len(want.volumes) {
			t.Errorf("%s: %d volumes, the pod template %d", c.component, len(c.vols), len(want.volumes))
		}
		if c.native != want.native {
			t.Errorf("%s: native %t, the pod template's %t", c.component, c.native, want.native)
		}
		if err := subset(c.component, want.container, generic(t, c.ctr)); err != nil {
			t.Errorf("the webhook's container differs from the pod template's: %v", err)
		}
		if err := subset(c.component, generic(t, c.ctr), want.container); err != nil {
			t.Errorf("the webhook's container differs from the pod template's: %v", err)
		}
		for _, v := range c.vols {
			if v.Name == "flink-agent-config" {
				if v.DownwardAPI == nil || v.DownwardAPI.Items[0].Path != c.component+".yaml" ||
					v.DownwardAPI.Items[0].FieldRef.FieldPath != "metadata.annotations['flink-agent/config']" {
					t.Errorf("%s: config volume %+v, want the pod's flink-agent/config annotation", c.component, v)
				}
				continue
			}
			if err := subset(c.component+" volume", want.volumes[v.Name], generic(t, v)); err != nil {
				t.Errorf("%v", err)
			}
		}
		if got, want := c.ann["flink-agent/config"], agentCM.Data[c.component+".yaml"]; strings.TrimSpace(got) != strings.TrimSpace(want) {
			t.Errorf("%s: the annotation's configuration differs from the ConfigMap's:\n%s\n---\n%s", c.component, got, want)
		}
	}

	if len(r.webhooks) != 1 || len(r.webhooks[0].Webhooks) != 1 {
		t.Fatalf("%d MutatingWebhookConfigurations", len(r.webhooks))
	}
	w := r.webhooks[0].Webhooks[0]
	if *w.FailurePolicy != admissionregistrationv1.Ignore || *w.TimeoutSeconds != 5 || *w.SideEffects != admissionregistrationv1.SideEffectClassNone ||
		w.NamespaceSelector.MatchLabels["flink-agent/inject"] != "enabled" || len(w.ObjectSelector.MatchExpressions) != 2 ||
		len(w.Rules) != 1 || w.Rules[0].Operations[0] != admissionregistrationv1.Create || len(w.Rules[0].Operations) != 1 ||
		w.ClientConfig.Service == nil || *w.ClientConfig.Service.Path != "/mutate" || len(w.ClientConfig.CABundle) == 0 {
		t.Errorf("webhook %s", toJSON(w))
	}
	if len(r.deployments) != 1 || *r.deployments[0].Spec.Replicas != 2 {
		t.Fatalf("webhook Deployments %v", len(r.deployments))
	}
	dep := r.deployments[0]
	pod := &corev1.Pod{ObjectMeta: dep.Spec.Template.ObjectMeta, Spec: dep.Spec.Template.Spec}
	if res := restricted(t, &pod.ObjectMeta, &pod.Spec); !res.Allowed {
		t.Errorf("the webhook's pod is not restricted: %v %v", res.ForbiddenReasons, res.ForbiddenDetails)
	}
	if args := dep.Spec.Template.Spec.Containers[0].Args; args[0] != "webhook" || !strings.Contains(strings.Join(args, " "), "--webhook.config-file=/etc/flink-agent/webhook/sidecars.yaml") {
		t.Errorf("args %v", args)
	}

	// cert-manager: a Certificate (self-signed Issuer unless one is named)
	// and the CA injected by its cainjector; no generated Secret.
	cm := render(t, ".", "-f", "ci/webhook-cert-manager-values.yaml", "--set", "webhook.certManager.issuerRef.name=corp-ca", "--set", "webhook.certManager.issuerRef.kind=ClusterIssuer")
	if cm.raw["Certificate/"+release+"-flink-agent-webhook"] == nil || cm.raw["Issuer/"+release+"-flink-agent-webhook"] != nil || len(cm.secrets) != 0 {
		t.Errorf("cert-manager with an issuerRef rendered %v", keys(cm.raw))
	}
	if !strings.Contains(string(cm.raw["Certificate/"+release+"-flink-agent-webhook"]), "name: corp-ca") ||
		cm.webhooks[0].Annotations["cert-manager.io/inject-ca-from"] != namespace+"/"+release+"-flink-agent-webhook" {
		t.Errorf("Certificate/annotations: %s %v", cm.raw["Certificate/"+release+"-flink-agent-webhook"], cm.webhooks[0].Annotations)
	}
}

// TestWebhookInjects runs `flink-agent webhook` as a local process over TLS
// and registers the chart's own MutatingWebhookConfiguration with the real
// kube-apiserver, pointed at it (clientConfig.url on loopback). Pods that
// Flink's own code builds are injected in a labelled namespace — directly
// and through Deployment → ReplicaSet → Pod after Flink's native deployer —
// and everything else is left as it was; with the webhook stopped, pods are
// still created.
func TestWebhookInjects(t *testing.T) {
	k := cluster(t)
	ctx := ctxFor(t, 8*time.Minute)
	bin := agentBinary(t)
	r := render(t, ".", webhookValues...)
	cfgRaw := webhookConfig(t, r)
	cfg, _ := webhook.ParseConfig(cfgRaw)

	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "sidecars.yaml")
	if err := os.WriteFile(cfgFile, cfgRaw, 0o644); err != nil {
		t.Fatal(err)
	}
	ca, err := testbed.NewCA("webhook-test-ca")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := ca.IssueFiles(dir, "webhook")
	if err != nil {
		t.Fatal(err)
	}
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	proc, err := testbed.StartProc("flink-agent-webhook", dir, nil, bin, "webhook",
		"--web.listen-address="+testbed.Addr(port), "--tls.cert-file="+certFile, "--tls.key-file="+keyFile,
		"--webhook.config-file="+cfgFile, "--log.level=debug")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = proc.Stop(5 * time.Second) }()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := "https://" + testbed.Addr(port)
	if err := testbed.WaitFor(ctx, proc, 100*time.Millisecond, func(ctx context.Context) error {
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("/healthz: %s", resp.Status)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The chart's MutatingWebhookConfiguration, pointed at the local process.
	mwc := r.webhooks[0].DeepCopy()
	mwc.Name = "flink-agent-webhook-test"
	url := base + "/mutate"
	mwc.Webhooks[0].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: ca.PEM}
	if _, err := k.Client().AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = k.Client().AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), mwc.Name, metav1.DeleteOptions{})
	}()

	inject := newNamespace(t, k, "webhook-inject", map[string]string{"flink-agent/inject": "enabled"})
	plain := newNamespace(t, k, "webhook-plain", map[string]string{})
	jmT, tmT := podTemplates(t, webhookValues...)
	jms, tms := flinkPods(t, inject, flinkCluster{"wh", "-", "-"}, flinkCluster{"wh-templated", jmT, tmT})
	jm, tm, jmWithAgent := jms[0], tms[0], jms[1]
	want := map[string]agentParts{"jobmanager": chartParts(t, jmT), "taskmanager": chartParts(t, tmT)}
	annotations := map[string]string{"jobmanager": cfg.JobManager.Annotations["flink-agent/config"], "taskmanager": cfg.TaskManager.Annotations["flink-agent/config"]}

	// The webhook's configuration volume differs from the template's on
	// purpose (annotation, not ConfigMap); everything else must be equal.
	injected := func(what, component string, pod *corev1.Pod) {
		t.Helper()
		w := want[component]
		vols := map[string]any{}
		for n, v := range w.volumes {
			if n != "flink-agent-config" {
				vols[n] = v
			}
		}
		w.volumes = vols
		checkCarries(t, what, w, pod.Spec)
		if pod.Annotations["flink-agent/config"] != annotations[component] || annotations[component] == "" {
			t.Errorf("%s: annotation flink-agent/config %q, want the %s configuration", what, pod.Annotations["flink-agent/config"], component)
		}
		if pod.Labels["flink-agent/sidecar"] != "true" {
			t.Errorf("%s: labels %v lack the PodMonitor's", what, pod.Labels)
		}
		for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
			for _, e := range c.Env {
				if c.Name == "flink-agent" && e.Name == "FLINK_COMPONENT" && e.Value != component {
					t.Errorf("%s: FLINK_COMPONENT %q", what, e.Value)
				}
			}
		}
	}
	agents := func(pod *corev1.Pod) int {
		n := 0
		for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
			if c.Name == "flink-agent" {
				n++
			}
		}
		return n
	}
	create := func(ns string, pod *corev1.Pod) *corev1.Pod {
		t.Helper()
		stored, err := createPod(ctx, k, ns, pod)
		if err != nil {
			t.Fatalf("create %s/%s: %v", ns, pod.Name, err)
		}
		return stored
	}

	// The API server reads webhook configurations through a watch: the
	// webhook is in effect once a dry run of the JobManager pod comes back
	// injected. What the dry runs counted is subtracted below.
	if err := testbed.WaitFor(ctx, proc, 100*time.Millisecond, func(ctx context.Context) error {
		p := jm.DeepCopy()
		p.Namespace, p.ResourceVersion = inject, ""
		out, err := k.Client().CoreV1().Pods(inject).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return err
		}
		if agents(out) == 0 {
			return fmt.Errorf("a dry-run JobManager pod came back without the agent")
		}
		return nil
	}); err != nil {
		t.Fatalf("the API server never called the webhook: %v", err)
	}
	before := webhookRequests(t, client, base)

	got := create(inject, jm)
	injected("JobManager pod", "jobmanager", got)
	got = create(inject, tm)
	injected("TaskManager pod", "taskmanager", got)

	unchanged := map[string]*corev1.Pod{}
	p := jm.DeepCopy()
	p.Name = "unlabelled-namespace"
	unchanged[plain+"/"+p.Name] = p
	p = jm.DeepCopy()
	p.Name, p.Annotations = "opted-out", map[string]string{"flink-agent/inject": "false"}
	unchanged[inject+"/"+p.Name] = p
	p = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "not-flink", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}
	unchanged[inject+"/"+p.Name] = p
	p = jmWithAgent.DeepCopy()
	p.Name = "already-injected"
	unchanged[inject+"/"+p.Name] = p
	p = jm.DeepCopy()
	p.Name = "volume-conflict"
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "flink-logs", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	unchanged[inject+"/"+p.Name] = p
	for key, pod := range unchanged {
		ns, _, _ := strings.Cut(key, "/")
		stored := create(ns, pod)
		if agents(stored) != agents(pod) || len(stored.Spec.Volumes) < len(pod.Spec.Volumes) ||
			stored.Annotations["flink-agent/config"] != "" || len(stored.Spec.InitContainers) != len(pod.Spec.InitContainers) ||
			len(stored.Spec.Containers) != len(pod.Spec.Containers) {
			t.Errorf("%s was changed: %d agents (sent %d), init containers %d (sent %d), annotations %v", key, agents(stored), agents(pod),
				len(stored.Spec.InitContainers), len(pod.Spec.InitContainers), stored.Annotations)
		}
	}

	// Flink's native deployer, no pod template: the pod the ReplicaSet
	// creates is injected.
	cmd := sessionCLI(t, k, inject, "wh-session", "", "")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("KubernetesSessionCli: %v\n%s", err, out)
	}
	rsPod := waitPods(t, k, inject, "app=wh-session,component=jobmanager", 1)[0]
	injected("JobManager pod of Flink's Deployment", "jobmanager", &rsPod)

	// What reached the webhook: the selectors kept the unlabelled
	// namespace and the non-Flink pod away from it.
	counts := webhookRequests(t, client, base)
	for result, n := range map[string]float64{"injected": 3, "skipped": 2, "error": 1} {
		if grew := counts[result] - before[result]; grew != n {
			t.Errorf("flink_agent_webhook_requests_total{result=%q} grew by %v, want %v (before: %v, after: %v)", result, grew, n, before, counts)
		}
	}

	// The webhook down: pods are created, without the sidecar.
	_ = proc.Stop(10 * time.Second)
	p = jm.DeepCopy()
	p.Name = "webhook-down"
	t0 := time.Now()
	stored := create(inject, p)
	if agents(stored) != 0 {
		t.Errorf("webhook down: the pod has %d agents", agents(stored))
	}
	t.Logf("with the webhook stopped a JobManager pod was created (without the sidecar) in %s", time.Since(t0).Round(time.Millisecond))
}

func webhookRequests(t *testing.T, client *http.Client, base string) map[string]float64 {
	t.Helper()
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	mf := mfs["flink_agent_webhook_requests_total"]
	if mf == nil {
		t.Fatal("no flink_agent_webhook_requests_total in /metrics")
	}
	for _, m := range mf.GetMetric() {
		out[testbed.LabelsOf(m)["result"]] = m.GetCounter().GetValue()
	}
	return out
}
