package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/flink-agent/flink-agent/testbed"
)

// The shape of what the chart renders (charts/flink-agent tests the real
// file end to end); small, so the cases below stay readable.
const testConfig = `
jobmanager:
  native: true
  container:
    name: flink-agent
    image: flink-agent:test
    restartPolicy: Always
    args: [--config.file=/etc/flink-agent/config/jobmanager.yaml]
    volumeMounts:
      - {name: flink-logs, mountPath: /opt/flink/log, readOnly: true}
      - {name: flink-agent-config, mountPath: /etc/flink-agent/config}
  volumes:
    - {name: flink-logs, emptyDir: {}}
    - name: flink-agent-config
      downwardAPI:
        items:
          - path: jobmanager.yaml
            fieldRef: {fieldPath: "metadata.annotations['flink-agent/config']"}
  mainContainerVolumeMounts:
    - {name: flink-logs, mountPath: /opt/flink/log}
  labels:
    flink-agent/sidecar: "true"
  annotations:
    flink-agent/config: "flink:\n  rest_url: http://localhost:8081\n"
taskmanager:
  native: false
  container:
    name: flink-agent
    image: flink-agent:test
    args: [--config.file=/etc/flink-agent/config/taskmanager.yaml]
  volumes:
    - {name: flink-logs, emptyDir: {}}
  mainContainerVolumeMounts:
    - {name: flink-logs, mountPath: /opt/flink/log}
  labels:
    flink-agent/sidecar: "true"
  annotations:
    flink-agent/config: "flink:\n  rest_url: \"\"\n"
`

func testCfg(t *testing.T) *Config {
	t.Helper()
	c, err := ParseConfig([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestBadConfigs(t *testing.T) {
	for name, tc := range map[string]struct{ edit, want string }{
		"unknown top key":   {"jobmanagr:\n  native: true\n", `unknown field "jobmanagr"`},
		"unknown container": {"    imagee: x\n", `jobmanager.container: error unmarshaling JSON: while decoding JSON: json: unknown field "imagee"`},
		"no container":      {"taskmanager: {native: false}\n", "taskmanager.container: missing"},
		"native mismatch":   {"    restartPolicy: OnFailure\n", "jobmanager.native is true but the container's restartPolicy"},
	} {
		t.Run(name, func(t *testing.T) {
			var cfg string
			switch name {
			case "unknown top key":
				cfg = testConfig + tc.edit
			case "no container":
				jm, _, _ := strings.Cut(testConfig, "taskmanager:")
				cfg = jm + tc.edit
			default: // edit the JobManager's container
				cfg = strings.Replace(testConfig, "    restartPolicy: Always\n", "    restartPolicy: Always\n"+tc.edit, 1)
				if name == "native mismatch" {
					cfg = strings.Replace(testConfig, "    restartPolicy: Always\n", tc.edit, 1)
				}
			}
			_, err := ParseConfig([]byte(cfg))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// flinkPod is a pod as Flink's native Kubernetes code creates it.
func flinkPod(component string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "orders-" + component + "-",
			Labels:       map[string]string{"app": "orders", "component": component, "type": "flink-native-kubernetes"},
		},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "fetch-artifacts", Image: "busybox"}},
			Containers: []corev1.Container{
				{Name: "flink-main-container", Image: "flink:1.20", VolumeMounts: []corev1.VolumeMount{{Name: "flink-config-volume", MountPath: "/opt/flink/conf"}}},
			},
			Volumes: []corev1.Volume{{Name: "flink-config-volume", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "flink-config-orders"}}}}},
		},
	}
}

func request(t *testing.T, op admissionv1.Operation, obj any) *admissionv1.AdmissionRequest {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return &admissionv1.AdmissionRequest{
		UID:       "uid-1",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: "flink",
		Operation: op,
		Object:    runtime.RawExtension{Raw: raw},
	}
}

// apply applies a decision's patch the way the API server does.
func apply(t *testing.T, pod *corev1.Pod, d Decision) *corev1.Pod {
	t.Helper()
	raw, _ := json.Marshal(pod)
	patch, err := jsonpatch.DecodePatch(d.Patch)
	if err != nil {
		t.Fatalf("not a JSON patch: %v\n%s", err, d.Patch)
	}
	out, err := patch.Apply(raw)
	if err != nil {
		t.Fatalf("patch does not apply: %v\n%s", err, d.Patch)
	}
	var got corev1.Pod
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	return &got
}

func names(cs []corev1.Container) []string {
	var n []string
	for _, c := range cs {
		n = append(n, c.Name)
	}
	return n
}

func TestInjectJobManager(t *testing.T) {
	cfg := testCfg(t)
	pod := flinkPod("jobmanager")
	d := cfg.Decide(request(t, admissionv1.Create, pod))
	if d.Result != ResultInjected {
		t.Fatalf("result %s (%s)", d.Result, d.Reason)
	}
	got := apply(t, pod, d)
	if n := names(got.Spec.InitContainers); strings.Join(n, ",") != "fetch-artifacts,flink-agent" {
		t.Errorf("init containers %v: the agent is appended after the pod's own", n)
	}
	agent := got.Spec.InitContainers[1]
	if agent.RestartPolicy == nil || *agent.RestartPolicy != corev1.ContainerRestartPolicyAlways || agent.Args[0] != "--config.file=/etc/flink-agent/config/jobmanager.yaml" {
		t.Errorf("agent %+v", agent)
	}
	if len(got.Spec.Containers) != 1 {
		t.Errorf("containers %v", names(got.Spec.Containers))
	}
	mounts := got.Spec.Containers[0].VolumeMounts
	if len(mounts) != 2 || mounts[0].Name != "flink-config-volume" || mounts[1].Name != "flink-logs" || mounts[1].MountPath != "/opt/flink/log" {
		t.Errorf("flink-main-container mounts %+v", mounts)
	}
	var vols []string
	for _, v := range got.Spec.Volumes {
		vols = append(vols, v.Name)
	}
	if strings.Join(vols, ",") != "flink-config-volume,flink-logs,flink-agent-config" {
		t.Errorf("volumes %v", vols)
	}
	if got.Labels["flink-agent/sidecar"] != "true" || got.Labels["app"] != "orders" {
		t.Errorf("labels %v", got.Labels)
	}
	if !strings.Contains(got.Annotations["flink-agent/config"], "http://localhost:8081") {
		t.Errorf("annotations %v", got.Annotations)
	}
	// A second pass over the injected pod changes nothing (idempotent).
	if d2 := cfg.Decide(request(t, admissionv1.Create, got)); d2.Result != ResultSkipped || d2.Patch != nil {
		t.Errorf("second pass: %s %s", d2.Result, d2.Patch)
	}
}

func TestInjectTaskManagerIntoBarePod(t *testing.T) {
	cfg := testCfg(t)
	pod := flinkPod("taskmanager")
	pod.Spec.InitContainers, pod.Spec.Volumes, pod.Spec.Containers[0].VolumeMounts = nil, nil, nil
	d := cfg.Decide(request(t, admissionv1.Create, pod))
	if d.Result != ResultInjected {
		t.Fatalf("result %s (%s)", d.Result, d.Reason)
	}
	got := apply(t, pod, d)
	// The TaskManager's sidecar here is an ordinary container (native: false).
	if n := names(got.Spec.Containers); strings.Join(n, ",") != "flink-main-container,flink-agent" || len(got.Spec.InitContainers) != 0 {
		t.Errorf("containers %v, init containers %v", n, names(got.Spec.InitContainers))
	}
	if got.Spec.Containers[1].Args[0] != "--config.file=/etc/flink-agent/config/taskmanager.yaml" {
		t.Errorf("TaskManager pod got %v", got.Spec.Containers[1].Args)
	}
	if len(got.Spec.Volumes) != 1 || len(got.Spec.Containers[0].VolumeMounts) != 1 {
		t.Errorf("volumes %+v mounts %+v", got.Spec.Volumes, got.Spec.Containers[0].VolumeMounts)
	}
	if !strings.Contains(got.Annotations["flink-agent/config"], `rest_url: ""`) {
		t.Errorf("annotations %v", got.Annotations)
	}
	if !bytes.Contains(d.Patch, []byte(`"path":"/metadata/labels/flink-agent~1sidecar"`)) {
		t.Errorf("label key not escaped as a JSON pointer token: %s", d.Patch)
	}
}

func TestLeftAlone(t *testing.T) {
	cfg := testCfg(t)
	withAgent := flinkPod("jobmanager")
	withAgent.Spec.InitContainers = append(withAgent.Spec.InitContainers, corev1.Container{Name: "flink-agent", Image: "x"})
	optedOut := flinkPod("jobmanager")
	optedOut.Annotations = map[string]string{"flink-agent/inject": "false"}
	notFlink := flinkPod("jobmanager")
	notFlink.Labels = map[string]string{"app": "web"}
	client := flinkPod("client")
	noMain := flinkPod("taskmanager")
	noMain.Spec.Containers[0].Name = "main"
	volClash := flinkPod("jobmanager")
	volClash.Spec.Volumes = append(volClash.Spec.Volumes, corev1.Volume{Name: "flink-logs"})
	mountClash := flinkPod("jobmanager")
	mountClash.Spec.Containers[0].VolumeMounts = append(mountClash.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "logs", MountPath: "/opt/flink/log"})
	notPod := request(t, admissionv1.Create, map[string]any{"kind": "ConfigMap"})
	notPod.Kind = metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	garbage := request(t, admissionv1.Create, nil)
	garbage.Object.Raw = []byte(`{"spec": 5}`)

	for name, tc := range map[string]struct {
		req    *admissionv1.AdmissionRequest
		result string
		reason string
	}{
		"update":             {request(t, admissionv1.Update, flinkPod("jobmanager")), ResultSkipped, "operation UPDATE"},
		"not a pod":          {notPod, ResultSkipped, "not a pod"},
		"has the agent":      {request(t, admissionv1.Create, withAgent), ResultSkipped, `has a container "flink-agent"`},
		"opted out":          {request(t, admissionv1.Create, optedOut), ResultSkipped, "opted out"},
		"not Flink":          {request(t, admissionv1.Create, notFlink), ResultSkipped, "not a Flink pod"},
		"other component":    {request(t, admissionv1.Create, client), ResultSkipped, "not a JobManager or TaskManager"},
		"no main container":  {request(t, admissionv1.Create, noMain), ResultSkipped, "no flink-main-container"},
		"volume name clash":  {request(t, admissionv1.Create, volClash), ResultError, `already has a volume "flink-logs"`},
		"log mount clash":    {request(t, admissionv1.Create, mountClash), ResultError, "already mounts /opt/flink/log"},
		"undecodable object": {garbage, ResultError, "decode pod"},
	} {
		t.Run(name, func(t *testing.T) {
			d := cfg.Decide(tc.req)
			if d.Result != tc.result || !strings.Contains(d.Reason, tc.reason) || d.Patch != nil {
				t.Errorf("got %s %q (patch %s), want %s %q", d.Result, d.Reason, d.Patch, tc.result, tc.reason)
			}
		})
	}
}

func gather(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	v, err := testbed.GatherValue(reg, "flink_agent_webhook_requests_total", "result", result)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logs testbed.SyncBuffer
	h := NewHandler(testCfg(t), slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), reg)
	srv := httptest.NewServer(h)
	defer srv.Close()

	post := func(body []byte) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/mutate", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	review := func(req *admissionv1.AdmissionRequest) []byte {
		b, _ := json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req})
		return b
	}

	resp, body := post(review(request(t, admissionv1.Create, flinkPod("jobmanager"))))
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s %v: %s", resp.Status, err, body)
	}
	r := out.Response
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || r == nil || r.UID != "uid-1" || !r.Allowed ||
		r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch || len(r.Patch) == 0 {
		t.Errorf("response %s", body)
	}

	clash := flinkPod("jobmanager")
	clash.Spec.Volumes = append(clash.Spec.Volumes, corev1.Volume{Name: "flink-logs"})
	_, body = post(review(request(t, admissionv1.Create, clash)))
	out = admissionv1.AdmissionReview{}
	if err := json.Unmarshal(body, &out); err != nil || !out.Response.Allowed || out.Response.Patch != nil || len(out.Response.Warnings) != 1 {
		t.Errorf("a conflict must admit the pod unchanged, with a warning: %s", body)
	}
	post(review(request(t, admissionv1.Create, clash))) // the same problem again: counted, not warned again
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings for one kind of problem, want 1:\n%s", n, logs.String())
	}
	post(review(request(t, admissionv1.Update, flinkPod("jobmanager"))))
	for _, bad := range [][]byte{[]byte("{"), []byte(`{"kind":"AdmissionReview"}`)} {
		if resp, body := post(bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %s %s", bad, resp.Status, body)
		}
	}
	for result, want := range map[string]float64{ResultInjected: 1, ResultSkipped: 1, ResultError: 4} {
		if got := gather(t, reg, result); got != want {
			t.Errorf("requests{result=%q} = %v, want %v", result, got, want)
		}
	}

	for path, want := range map[string]int{"/healthz": 200, "/metrics": 200} {
		resp, err := http.Get(srv.URL + path)
		if err != nil || resp.StatusCode != want {
			t.Errorf("GET %s: %v %v", path, resp, err)
		}
		if err == nil {
			resp.Body.Close()
		}
	}
	resp, err := http.Get(srv.URL + "/mutate")
	if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /mutate: %v %v", resp, err)
	}
}

// TestServeTLS serves over TLS, reloads a renewed certificate, and stops
// with its context; a bad address or certificate fails at once.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := testbed.NewCA("test-ca")
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
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, Options{ListenAddress: testbed.Addr(port), CertFile: certFile, KeyFile: keyFile,
			Config: testCfg(t), Logger: log, CertCheckInterval: 50 * time.Millisecond})
	}()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	serial := func() (string, error) {
		// A new connection each time: the certificate is chosen per handshake.
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
		resp, err := c.Get(fmt.Sprintf("https://%s/healthz", testbed.Addr(port)))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.String(), nil
	}
	var first string
	if err := testbed.WaitFor(ctx, nil, 50*time.Millisecond, func(context.Context) (err error) {
		first, err = serial()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Renewal: new files, as cert-manager writes them.
	certPEM, keyPEM, err := ca.Issue("webhook", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second)
	for f, b := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_ = os.Chtimes(f, later, later)
	}
	if err := testbed.WaitFor(ctx, nil, 50*time.Millisecond, func(context.Context) error {
		s, err := serial()
		if err == nil && s == first {
			err = fmt.Errorf("still serving serial %s", s)
		}
		return err
	}); err != nil {
		t.Error(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not stop")
	}

	// Fail fast: a port in use, a missing certificate.
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := Serve(context.Background(), Options{ListenAddress: l.Addr().String(), CertFile: certFile, KeyFile: keyFile, Config: testCfg(t), Logger: log}); err == nil {
		t.Error("Serve on a used port succeeded")
	}
	if err := Serve(context.Background(), Options{ListenAddress: "127.0.0.1:0", CertFile: filepath.Join(dir, "missing.crt"), KeyFile: keyFile, Config: testCfg(t), Logger: log}); err == nil {
		t.Error("Serve without a certificate succeeded")
	}
}
