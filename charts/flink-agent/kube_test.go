package chart

// Tests against a real Kubernetes control plane (testbed.StartKube: etcd,
// kube-apiserver, kube-controller-manager; no kubelet, so pods are admitted
// and stored, never run): helm install/upgrade/uninstall, restricted Pod
// Security admission of Flink pods built by Flink's own code, Flink's
// native-Kubernetes deployer, and the operator CRD pitfall.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/jsonpath"
	"sigs.k8s.io/yaml"

	"github.com/flink-agent/flink-agent/testbed"
)

var (
	kubeOnce sync.Once
	kube     *testbed.Kube
	kubeErr  error
	kubeDir  string
)

// cluster is the package's control plane, started by the first test that
// needs it, with the CRDs the chart renders installed: prometheus-operator's,
// cert-manager's, and the Flink Kubernetes Operator's FlinkDeployment.
func cluster(t *testing.T) *testbed.Kube {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no Kubernetes control plane")
	}
	kubeOnce.Do(func() {
		if kubeDir, kubeErr = os.MkdirTemp("", "flink-agent-kube"); kubeErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if kube, kubeErr = testbed.StartKube(ctx, kubeDir); kubeErr != nil {
			return
		}
		t.Logf("Kubernetes control plane %s (etcd, kube-apiserver, kube-controller-manager; no kubelet): %s; started in %s",
			kube.Version, testbed.KubeBuildTimes(), kube.Started.Round(time.Millisecond))
		t0 := time.Now()
		var crds [][]byte
		for _, f := range []func() ([]byte, error){
			testbed.PrometheusOperatorCRDs,
			testbed.CertManagerCRDs,
			func() ([]byte, error) { return testbed.FlinkDeploymentCRD(testbed.FlinkOperatorVersion) },
		} {
			b, err := f()
			if err != nil {
				kubeErr = err
				return
			}
			crds = append(crds, b)
		}
		for _, b := range crds {
			if _, kubeErr = kube.Apply(ctx, "", b); kubeErr != nil {
				return
			}
		}
		t.Logf("CRDs applied in %s: prometheus-operator %s (PodMonitor, PrometheusRule), cert-manager %s, Flink Kubernetes Operator %s (FlinkDeployment)",
			time.Since(t0).Round(time.Millisecond), testbed.PrometheusOperatorVersion, testbed.CertManagerVersion, testbed.FlinkOperatorVersion)
	})
	if kubeErr != nil {
		t.Fatalf("Kubernetes control plane: %v", kubeErr)
	}
	return kube
}

func stopCluster(failed bool) {
	if kube != nil {
		kube.Stop()
	}
	if kubeDir == "" {
		return
	}
	if failed {
		fmt.Fprintf(os.Stderr, "control plane state and logs kept in %s\n", kubeDir)
		return
	}
	os.RemoveAll(kubeDir)
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace creates a namespace for one test, labelled to enforce restricted
// Pod Security unless labels say otherwise, and returns its name: name, or
// name-2, name-3, … when a test runs again on the package's control plane
// (go test -count=N).
func newNamespace(t *testing.T, k *testbed.Kube, name string, labels map[string]string) string {
	t.Helper()
	if labels == nil {
		labels = restrictedNS
	}
	ctx := ctxFor(t, time.Minute)
	for i := 1; ; i++ {
		ns := name
		if i > 1 {
			ns = fmt.Sprintf("%s-%d", name, i)
		}
		err := k.CreateNamespace(ctx, ns, labels)
		if err == nil {
			return ns
		}
		if !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}

var restrictedNS = map[string]string{
	"pod-security.kubernetes.io/enforce":         "restricted",
	"pod-security.kubernetes.io/enforce-version": "latest",
}

func helmKube(t *testing.T, k *testbed.Kube, args ...string) (string, error) {
	t.Helper()
	return helm(t, ".", append([]string{"--kubeconfig", k.Kubeconfig()}, args...)...)
}

// subset reports where want (what the chart rendered) is not contained in got
// (what the API server stored): a field dropped, pruned or changed. The
// server may add fields (defaults, status) and list items; it may not lose
// or reorder any.
func subset(path string, want, got any) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %v", path, got)
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s.%s: missing (want %v)", path, k, wv)
			}
			if err := subset(path+"."+k, wv, gv); err != nil {
				return err
			}
		}
	case []any:
		// In order, with room for what the server adds (the ServiceAccount
		// admission plugin appends its token mount to every container).
		g, ok := got.([]any)
		if !ok {
			return fmt.Errorf("%s: want a list, got %v", path, got)
		}
		j := 0
		for i := range w {
			var last error
			for ; j < len(g); j++ {
				if last = subset(fmt.Sprintf("%s[%d]", path, i), w[i], g[j]); last == nil {
					break
				}
			}
			if j == len(g) {
				if last == nil {
					last = fmt.Errorf("%s[%d]: missing (want %v)", path, i, w[i])
				}
				return last
			}
			j++
		}
	default:
		if !reflect.DeepEqual(want, got) {
			return fmt.Errorf("%s: want %v, got %v", path, want, got)
		}
	}
	return nil
}

// generic turns a typed object or YAML/JSON into map/slice form.
func generic(t *testing.T, v any) any {
	t.Helper()
	var raw []byte
	switch b := v.(type) {
	case []byte:
		var err error
		if raw, err = yaml.YAMLToJSON(b); err != nil {
			t.Fatal(err)
		}
	default:
		var err error
		if raw, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// leftovers lists what is in namespace besides what Kubernetes itself puts
// in every namespace.
func leftovers(ctx context.Context, k *testbed.Kube, namespace string) ([]string, error) {
	lists, err := k.Client().Discovery().ServerPreferredNamespacedResources()
	if err != nil {
		return nil, err
	}
	var found []string
	for _, l := range lists {
		for _, r := range l.APIResources {
			if !slices.Contains(r.Verbs, "list") || r.Name == "events" {
				continue
			}
			ri, err := k.Resource(l.GroupVersion, r.Kind, namespace)
			if err != nil {
				return nil, err
			}
			items, err := ri.List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", r.Name, err)
			}
			for _, it := range items.Items {
				key := it.GetKind() + "/" + it.GetName()
				switch key {
				case "ServiceAccount/default", "ConfigMap/kube-root-ca.crt":
					continue
				}
				found = append(found, r.Kind+"/"+it.GetName())
			}
		}
	}
	slices.Sort(found)
	return found, nil
}

// TestHelmInstallUpgradeUninstall installs the chart for real with each
// ci/*-values.yaml into its own namespace (restricted Pod Security
// enforced): the API server validates every object, the CRDs' schemas the
// PodMonitor, PrometheusRule, FlinkDeployment, Certificate and Issuer, and
// keeps every field the chart rendered. An upgrade applies a change (and
// keeps the webhook's generated certificate); an uninstall leaves nothing.
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	k := cluster(t)
	for _, f := range valueSets(t) {
		t.Run(name(f), func(t *testing.T) {
			ctx := ctxFor(t, 5*time.Minute)
			ns := newNamespace(t, k, "helm-"+strings.TrimSuffix(strings.TrimSuffix(name(f), ".yaml"), "-values"), nil)
			rel := "orders"
			vals := valuesArgs(f)
			// Objects the values send to other namespaces (dashboards.namespace;
			// render uses the namespace "flink" for the release's).
			namespaces := []string{ns}
			for _, doc := range render(t, ".", vals...).raw {
				var m metav1.PartialObjectMetadata
				if err := yaml.Unmarshal(doc, &m); err != nil {
					t.Fatal(err)
				}
				if other := m.Namespace; other != "" && other != namespace && !slices.Contains(namespaces, other) {
					namespaces = append(namespaces, other)
					if _, err := k.Client().CoreV1().Namespaces().Get(ctx, other, metav1.GetOptions{}); apierrors.IsNotFound(err) {
						newNamespace(t, k, other, nil)
					}
				}
			}
			out, err := helmKube(t, k, append([]string{"install", rel, ".", "--namespace", ns}, vals...)...)
			if err != nil {
				t.Fatalf("helm install: %v\n%s", err, out)
			}
			if !strings.Contains(out, "STATUS: deployed") || !strings.Contains(out, "flink-agent 0.1.0 — orders-flink-agent in namespace "+ns) {
				t.Errorf("helm install printed no deployed status or NOTES:\n%s", out)
			}
			manifest := checkStored(t, k, ns, rel)

			webhook := false
			for _, m := range manifest {
				if m.GetKind() == "Deployment" {
					webhook = true
					want, _, _ := unstructured.NestedFloat64(m.Object, "spec", "replicas") // YAML numbers decode as float64
					// kube-controller-manager makes the pods; restricted
					// Pod Security admits them.
					waitPods(t, k, ns, "app.kubernetes.io/component=webhook", int(want))
				}
			}
			var caBefore []byte
			if webhook {
				caBefore = webhookCA(t, k, ns, rel)
			}

			out, err = helmKube(t, k, append(append([]string{"upgrade", rel, ".", "--namespace", ns}, vals...), "--set", "config.flink.scrape_interval=17s")...)
			if err != nil {
				t.Fatalf("helm upgrade: %v\n%s", err, out)
			}
			cm, err := k.Client().CoreV1().ConfigMaps(ns).Get(ctx, rel+"-flink-agent", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(cm.Data["jobmanager.yaml"], "scrape_interval: 17s") {
				t.Errorf("the upgrade's config.flink.scrape_interval=17s is not in the stored ConfigMap:\n%s", cm.Data["jobmanager.yaml"])
			}
			checkStored(t, k, ns, rel)
			if webhook {
				if caAfter := webhookCA(t, k, ns, rel); caBefore != nil && !bytes.Equal(caBefore, caAfter) {
					t.Errorf("helm upgrade replaced the webhook's generated CA")
				}
			}

			if out, err := helmKube(t, k, "uninstall", rel, "--namespace", ns, "--wait"); err != nil {
				t.Fatalf("helm uninstall: %v\n%s", err, out)
			}
			var left []string
			if err := testbed.WaitFor(ctx, nil, 500*time.Millisecond, func(ctx context.Context) error {
				for _, n := range namespaces {
					if left, err = leftovers(ctx, k, n); err != nil || len(left) > 0 {
						return fmt.Errorf("left behind in %s: %v %v", n, left, err)
					}
				}
				mwcs, err := k.Client().AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + rel})
				if err != nil || len(mwcs.Items) > 0 {
					return fmt.Errorf("MutatingWebhookConfigurations left behind: %d %v", len(mwcs.Items), err)
				}
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
}

// checkStored reads back every object of the release's manifest and checks
// the server kept every field the chart rendered.
func checkStored(t *testing.T, k *testbed.Kube, ns, rel string) []*unstructured.Unstructured {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	out, err := helmKube(t, k, "get", "manifest", rel, "--namespace", ns)
	if err != nil {
		t.Fatalf("helm get manifest: %v\n%s", err, out)
	}
	var objs []*unstructured.Unstructured
	for _, doc := range docSep.Split(out, -1) {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		objs = append(objs, u)
		objNS := ns
		if u.GetNamespace() != "" {
			objNS = u.GetNamespace()
		}
		ri, err := k.Resource(u.GetAPIVersion(), u.GetKind(), objNS)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Errorf("%s %s: %v", u.GetKind(), u.GetName(), err)
			continue
		}
		if err := subset(u.GetKind()+"/"+u.GetName(), generic(t, m), generic(t, stored.Object)); err != nil {
			t.Errorf("the API server did not keep what the chart rendered: %v", err)
		}
	}
	if len(objs) == 0 {
		t.Fatal("empty manifest")
	}
	return objs
}

// webhookCA checks that the webhook's caBundle is the CA of its serving
// certificate's Secret and returns it (nil with cert-manager, whose
// cainjector would fill it).
func webhookCA(t *testing.T, k *testbed.Kube, ns, rel string) []byte {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	name := rel + "-flink-agent-webhook"
	mwc, err := k.Client().AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name+"-"+ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := k.Client().CoreV1().Secrets(ns).Get(ctx, name+"-tls", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if mwc.Annotations["cert-manager.io/inject-ca-from"] != ns+"/"+name {
			t.Errorf("no generated Secret and no cert-manager CA injection: %v", mwc.Annotations)
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	ca := mwc.Webhooks[0].ClientConfig.CABundle
	if len(ca) == 0 || !bytes.Equal(ca, sec.Data["ca.crt"]) {
		t.Errorf("caBundle (%d bytes) is not the Secret's ca.crt (%d bytes)", len(ca), len(sec.Data["ca.crt"]))
	}
	return ca
}

func waitPods(t *testing.T, k *testbed.Kube, ns, selector string, n int) []corev1.Pod {
	t.Helper()
	ctx := ctxFor(t, 2*time.Minute)
	var pods []corev1.Pod
	if err := testbed.WaitFor(ctx, nil, 250*time.Millisecond, func(ctx context.Context) error {
		list, err := k.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		if pods = list.Items; len(pods) != n {
			return fmt.Errorf("%d pods %s, want %d", len(pods), selector, n)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v\nevents:\n%s", err, k.Events(ctxFor(t, 10*time.Second), ns))
	}
	return pods
}

// podTemplates renders the example FlinkDeployment's pod templates with the
// given values and writes them to files for Flink.
func podTemplates(t *testing.T, args ...string) (jm, tm string) {
	t.Helper()
	r := render(t, ".", append([]string{"--set", "exampleFlinkDeployment.enabled=true"}, args...)...)
	if len(r.flinkDeployment) != 1 {
		t.Fatalf("%d FlinkDeployments", len(r.flinkDeployment))
	}
	dir := t.TempDir()
	write := func(name string, pod *corev1.Pod) string {
		b, err := yaml.Marshal(pod)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	return write("jobmanager-pod-template.yaml", r.flinkDeployment[0].Spec.JobManager.PodTemplate),
		write("taskmanager-pod-template.yaml", r.flinkDeployment[0].Spec.TaskManager.PodTemplate)
}

// flinkClasspath is Flink's lib/ and flink-kubernetes.
func flinkClasspath(t *testing.T) string {
	t.Helper()
	cp, err := testbed.FlinkKubernetesClasspath()
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// flinkConfDir is an empty Flink configuration directory (the CLI needs one).
func flinkConfDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// flinkCluster names a cluster for flinkPods, with its pod templates ("-"
// for none).
type flinkCluster struct{ id, jmTemplate, tmTemplate string }

// flinkPods runs Flink's own pod builders (testdata/FlinkPods.java, one JVM
// for all clusters): each cluster's JobManager pod (from the Deployment Flink
// builds) and a TaskManager pod, as Flink would send them to namespace ns.
func flinkPods(t *testing.T, ns string, clusters ...flinkCluster) (jm, tm []*corev1.Pod) {
	t.Helper()
	args := []string{"-cp", flinkClasspath(t), "testdata/FlinkPods.java", flinkConfDir(t), ns}
	for _, c := range clusters {
		args = append(args, c.id, c.jmTemplate, c.tmTemplate)
	}
	cmd := exec.Command("java", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("FlinkPods.java: %v\n%s", err, stderr.String())
	}
	var out []struct {
		JobManager  appsv1.Deployment `json:"jobmanager"`
		TaskManager corev1.Pod        `json:"taskmanager"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out) != len(clusters) {
		t.Fatalf("FlinkPods.java printed %d clusters (%v): %.2000s", len(out), err, stdout.String())
	}
	for i, o := range out {
		tmpl := o.JobManager.Spec.Template
		p := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
		p.Name = clusters[i].id + "-jobmanager"
		jm, tm = append(jm, p), append(tm, &out[i].TaskManager)
	}
	return jm, tm
}

// agentParts is what the chart's templates add to a Flink pod: the agent
// container (and where it goes), the volumes, the main container's mount.
type agentParts struct {
	native    bool
	container any
	volumes   map[string]any
	mainMount any
}

// chartParts reads the parts from a rendered pod template.
func chartParts(t *testing.T, templateFile string) agentParts {
	t.Helper()
	raw, err := os.ReadFile(templateFile)
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(raw, &pod); err != nil {
		t.Fatal(err)
	}
	return partsOf(t, &pod)
}

func partsOf(t *testing.T, pod *corev1.Pod) agentParts {
	t.Helper()
	var p agentParts
	for i, c := range pod.Spec.InitContainers {
		if c.Name == "flink-agent" {
			p.native, p.container = true, generic(t, pod.Spec.InitContainers[i])
		}
	}
	for i, c := range pod.Spec.Containers {
		switch c.Name {
		case "flink-agent":
			if p.container != nil {
				t.Fatalf("two agents in %s", pod.Name)
			}
			p.container = generic(t, pod.Spec.Containers[i])
		case "flink-main-container":
			for _, m := range c.VolumeMounts {
				if m.MountPath == "/opt/flink/log" {
					p.mainMount = generic(t, m)
				}
			}
		}
	}
	p.volumes = map[string]any{}
	for _, v := range pod.Spec.Volumes {
		if v.Name == "flink-logs" || strings.HasPrefix(v.Name, "flink-agent-") {
			p.volumes[v.Name] = generic(t, v)
		}
	}
	return p
}

// checkCarries asserts that a stored pod spec still carries everything the
// chart's template added, field by field.
func checkCarries(t *testing.T, what string, want agentParts, spec corev1.PodSpec) {
	t.Helper()
	got := partsOf(t, &corev1.Pod{Spec: spec})
	if got.container == nil {
		t.Errorf("%s: no flink-agent container (init containers %d, containers %d)", what, len(spec.InitContainers), len(spec.Containers))
		return
	}
	if got.native != want.native {
		t.Errorf("%s: agent is a native sidecar: %t, want %t", what, got.native, want.native)
	}
	if err := subset(what+" flink-agent", want.container, got.container); err != nil {
		t.Errorf("%s: %v", what, err)
	}
	if want.native {
		if rp, _ := got.container.(map[string]any)["restartPolicy"].(string); rp != "Always" {
			t.Errorf("%s: the agent's restartPolicy is %q, want Always (a native sidecar)", what, rp)
		}
	}
	if err := subset(what+" volumes", want.volumes, got.volumes); err != nil {
		t.Errorf("%s: %v", what, err)
	}
	if want.mainMount == nil || got.mainMount == nil {
		t.Errorf("%s: flink-main-container does not mount the shared log volume at /opt/flink/log", what)
	} else if err := subset(what+" flink-main-container mount", want.mainMount, got.mainMount); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

func createPod(ctx context.Context, k *testbed.Kube, ns string, pod *corev1.Pod) (*corev1.Pod, error) {
	pod = pod.DeepCopy()
	pod.Namespace, pod.ResourceVersion = ns, ""
	return k.Client().CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
}

// TestPodSecurityRestricted: Flink's own pod builders merge the chart's pod
// templates (ci/restricted-values.yaml) into a JobManager and a TaskManager
// pod; the real Pod Security admission of a namespace enforcing restricted
// admits both, native sidecar and the sidecar.native=false fallback alike,
// and the stored pods carry the whole sidecar. The negative control — the
// same TaskManager pod with the agent lacking runAsNonRoot — is refused, for
// the agent.
func TestPodSecurityRestricted(t *testing.T) {
	k := cluster(t)
	ctx := ctxFor(t, 5*time.Minute)
	ns := newNamespace(t, k, "pss-restricted", nil)
	var clusters []flinkCluster
	for _, native := range []bool{true, false} {
		jmT, tmT := podTemplates(t, "-f", "ci/restricted-values.yaml", "--set", fmt.Sprintf("sidecar.native=%t", native))
		clusters = append(clusters, flinkCluster{fmt.Sprintf("pss-%t", native), jmT, tmT})
	}
	jms, tms := flinkPods(t, ns, clusters...)
	for i, native := range []bool{true, false} {
		t.Run(fmt.Sprintf("native=%t", native), func(t *testing.T) {
			c := clusters[i]
			for _, p := range []struct {
				component string
				pod       *corev1.Pod
				template  string
			}{{"jobmanager", jms[i], c.jmTemplate}, {"taskmanager", tms[i], c.tmTemplate}} {
				stored, err := createPod(ctx, k, ns, p.pod)
				if err != nil {
					t.Errorf("%s pod refused: %v", p.component, err)
					continue
				}
				checkCarries(t, p.component+" pod", chartParts(t, p.template), stored.Spec)
			}
			if !native {
				return
			}
			// Negative control: only the agent lacks runAsNonRoot (the pod
			// level moves to flink-main-container, which keeps it).
			bad := tms[i].DeepCopy()
			bad.Name += "-negative"
			bad.Spec.SecurityContext.RunAsNonRoot = nil
			for j := range bad.Spec.Containers {
				if sc := bad.Spec.Containers[j].SecurityContext; sc != nil {
					yes := true
					sc.RunAsNonRoot = &yes
				}
			}
			for j := range bad.Spec.InitContainers {
				if bad.Spec.InitContainers[j].Name == "flink-agent" {
					bad.Spec.InitContainers[j].SecurityContext.RunAsNonRoot = nil
				}
			}
			_, err := createPod(ctx, k, ns, bad)
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `"flink-agent"`) || !strings.Contains(err.Error(), "runAsNonRoot") ||
				strings.Contains(err.Error(), "flink-main-container") {
				t.Errorf("the agent without runAsNonRoot: want a Pod Security refusal naming only flink-agent, got %v", err)
			} else {
				t.Logf("negative control refused as expected: %v", err)
			}
		})
	}
}

// sessionCLI is Flink's KubernetesSessionCli creating session cluster id in
// ns, with pod templates when given: what `kubernetes-session.sh` runs.
func sessionCLI(t *testing.T, k *testbed.Kube, ns, id, jmTemplate, tmTemplate string) *exec.Cmd {
	t.Helper()
	args := []string{"-cp", flinkClasspath(t), "org.apache.flink.kubernetes.cli.KubernetesSessionCli",
		"-Dkubernetes.cluster-id=" + id,
		"-Dkubernetes.namespace=" + ns,
		"-Dkubernetes.config.file=" + k.Kubeconfig(),
		"-Dkubernetes.rest-service.exposed.type=ClusterIP",
		"-Djobmanager.memory.process.size=1024m",
		"-Dtaskmanager.memory.process.size=1024m",
		"-Dkubernetes.container.image.ref=flink:1.20",
	}
	if jmTemplate != "" {
		args = append(args, "-Dkubernetes.pod-template-file.jobmanager="+jmTemplate)
	}
	if tmTemplate != "" {
		args = append(args, "-Dkubernetes.pod-template-file.taskmanager="+tmTemplate)
	}
	cmd := exec.Command("java", args...)
	cmd.Env = append(os.Environ(), "FLINK_CONF_DIR="+flinkConfDir(t))
	return cmd
}

// TestFlinkNativeDeployer: Flink's own native-Kubernetes deployer (the
// code the Flink Kubernetes Operator creates JobManagers with) creates a
// session cluster from the chart's JobManager pod template; the Deployment
// it creates, the ReplicaSet kube-controller-manager derives and the Pod
// the ReplicaSet creates (admitted by restricted Pod Security) all still
// carry the agent — as a native sidecar, and as an ordinary container with
// sidecar.native=false.
func TestFlinkNativeDeployer(t *testing.T) {
	k := cluster(t)
	ns := newNamespace(t, k, "flink-native", nil)
	for _, native := range []bool{true, false} {
		t.Run(fmt.Sprintf("native=%t", native), func(t *testing.T) {
			ctx := ctxFor(t, 5*time.Minute)
			jmT, tmT := podTemplates(t, "-f", "ci/restricted-values.yaml", "--set", fmt.Sprintf("sidecar.native=%t", native))
			want := chartParts(t, jmT)
			id := fmt.Sprintf("session-%t", native)
			t0 := time.Now()
			cmd := sessionCLI(t, k, ns, id, jmT, tmT)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("KubernetesSessionCli: %v\n%s", err, out)
			}
			t.Logf("KubernetesSessionCli (flink-kubernetes %s) created session cluster %s in %s", testbed.FlinkKubernetesVersion, id, time.Since(t0).Round(time.Millisecond))

			dep, err := k.Client().AppsV1().Deployments(ns).Get(ctx, id, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("the JobManager Deployment: %v\n%s", err, out)
			}
			checkCarries(t, "Deployment", want, dep.Spec.Template.Spec)
			sel := "app=" + id + ",component=jobmanager,type=flink-native-kubernetes"
			var rs *appsv1.ReplicaSet
			if err := testbed.WaitFor(ctx, nil, 250*time.Millisecond, func(ctx context.Context) error {
				list, err := k.Client().AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
				if err != nil || len(list.Items) != 1 {
					return fmt.Errorf("ReplicaSets %s: %v", sel, err)
				}
				rs = &list.Items[0]
				return nil
			}); err != nil {
				t.Fatalf("kube-controller-manager made no ReplicaSet: %v\n%s", err, k.Events(ctxFor(t, 10*time.Second), ns))
			}
			checkCarries(t, "ReplicaSet", want, rs.Spec.Template.Spec)
			pod := waitPods(t, k, ns, sel, 1)[0]
			checkCarries(t, "Pod", want, pod.Spec)
			if len(pod.OwnerReferences) != 1 || pod.OwnerReferences[0].Name != rs.Name {
				t.Errorf("pod %s is not the ReplicaSet's: %+v", pod.Name, pod.OwnerReferences)
			}
		})
	}
}

// crdCheck is the jsonpath NOTES.txt and the READMEs give for checking an
// installed FlinkDeployment CRD (flink-agent.crdCheck in _helpers.tpl).
const crdCheck = `{.spec.versions[?(@.name=="v1beta1")].schema.openAPIV3Schema.properties.spec.properties.jobManager.properties.podTemplate.properties.spec.properties.initContainers.items.properties.restartPolicy.type}`

func TestCRDCheckDocumented(t *testing.T) {
	for _, f := range []string{"templates/_helpers.tpl", "README.md", "../../README.md"} {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), crdCheck) {
			t.Errorf("%s does not give the CRD check %s", f, crdCheck)
		}
	}
}

// servedCRD waits until the API server validates FlinkDeployments with the
// CRD of operatorVersion. Updating a CRD returns before the server's handler
// for its kind has swapped schemas (the update reaches it through a watch),
// and the CRD's Established condition stays true throughout, so the test
// probes the served schema with a dry-run create of flinkVersion v1_20: an
// enum value the CRD of FlinkOperatorVersion has and that of
// FlinkOperatorVersionBefore19 lacks — independent of the restartPolicy
// the test is about.
func servedCRD(ctx context.Context, k *testbed.Kube, ns, operatorVersion string) error {
	ri, err := k.Resource("flink.apache.org/v1beta1", "FlinkDeployment", ns)
	if err != nil {
		return err
	}
	probe := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
		"metadata": map[string]any{"name": "schema-probe"},
		"spec":     map[string]any{"flinkVersion": "v1_20"},
	}}
	wantRefused := operatorVersion == testbed.FlinkOperatorVersionBefore19
	return testbed.WaitFor(ctx, nil, 100*time.Millisecond, func(ctx context.Context) error {
		_, err := ri.Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		switch {
		case wantRefused && apierrors.IsInvalid(err), !wantRefused && err == nil:
			return nil
		case err != nil && !apierrors.IsInvalid(err):
			return err
		}
		return fmt.Errorf("the API server does not serve the operator %s CRD yet (flinkVersion v1_20: %v)", operatorVersion, err)
	})
}

// TestOperatorCRDBefore19PrunesSidecar shows the pitfall the chart
// documents: the FlinkDeployment CRD of an operator before 1.9.0 has no
// container-level restartPolicy, and the API server silently prunes it (the
// agent would become an init container that never exits); the CRD of
// operator >= 1.9.0 keeps it.
func TestOperatorCRDBefore19PrunesSidecar(t *testing.T) {
	k := cluster(t)
	ctx := ctxFor(t, 3*time.Minute)
	ns := newNamespace(t, k, "operator-crd", map[string]string{})
	r := render(t, ".", "--set", "exampleFlinkDeployment.enabled=true")
	doc := r.raw["FlinkDeployment/"+release+"-flink-agent-example"]
	if doc == nil {
		t.Fatalf("no example FlinkDeployment in %v", keys(r.raw))
	}
	restartPolicy := func(name string) (string, bool) {
		ri, err := k.Resource("flink.apache.org/v1beta1", "FlinkDeployment", ns)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := ri.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		inits, _, _ := unstructured.NestedSlice(fd.Object, "spec", "jobManager", "podTemplate", "spec", "initContainers")
		if len(inits) != 1 {
			t.Fatalf("%s: %d init containers stored", name, len(inits))
		}
		rp, ok := inits[0].(map[string]any)["restartPolicy"].(string)
		return rp, ok
	}
	apply := func(version, name string) {
		t.Helper()
		crd, err := testbed.FlinkDeploymentCRD(version)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := k.Apply(ctx, "", crd)
		if err != nil {
			t.Fatal(err)
		}
		if err := servedCRD(ctx, k, ns, version); err != nil {
			t.Fatal(err)
		}
		// The check NOTES.txt and the README give users, on the stored CRD.
		jp := jsonpath.New("crd-check").AllowMissingKeys(true)
		if err := jp.Parse(crdCheck); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := jp.Execute(&out, objs[0].Object); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{true: "string", false: ""}[version == testbed.FlinkOperatorVersion]; out.String() != want {
			t.Errorf("the documented CRD check prints %q for operator %s, want %q", out.String(), version, want)
		}
		// Created as the operator's users do (kubectl create/apply, helm):
		// a POST, which prunes unknown fields silently (a server-side apply
		// would refuse them).
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: obj}
		u.SetName(name)
		if version == testbed.FlinkOperatorVersionBefore19 {
			// Its CRD knows Flink versions up to v1_19.
			if err := unstructured.SetNestedField(u.Object, "v1_18", "spec", "flinkVersion"); err != nil {
				t.Fatal(err)
			}
		}
		ri, err := k.Resource("flink.apache.org/v1beta1", "FlinkDeployment", ns)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ri.Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The package's CRD is the current one again whatever happens here.
	t.Cleanup(func() {
		ctx := ctxFor(t, time.Minute)
		crd, err := testbed.FlinkDeploymentCRD(testbed.FlinkOperatorVersion)
		if err == nil {
			_, err = k.Apply(ctx, "", crd)
		}
		if err == nil {
			err = servedCRD(ctx, k, ns, testbed.FlinkOperatorVersion)
		}
		if err != nil {
			t.Errorf("restoring the operator %s CRD: %v", testbed.FlinkOperatorVersion, err)
		}
	})

	apply(testbed.FlinkOperatorVersionBefore19, "old-crd")
	if rp, ok := restartPolicy("old-crd"); ok {
		t.Errorf("operator %s CRD kept restartPolicy %q; the pitfall the chart documents is gone?", testbed.FlinkOperatorVersionBefore19, rp)
	} else {
		t.Logf("operator %s CRD: the API server pruned the agent's restartPolicy: Always, as documented", testbed.FlinkOperatorVersionBefore19)
	}
	apply(testbed.FlinkOperatorVersion, "new-crd")
	if rp, ok := restartPolicy("new-crd"); rp != "Always" {
		t.Errorf("operator %s CRD: restartPolicy %q (present %t), want Always", testbed.FlinkOperatorVersion, rp, ok)
	}
}
